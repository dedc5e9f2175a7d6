"""The onnx plugin's hook registers the format; importing the plugin imports no onnxruntime."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from bioimageio_run_onnx import plugin
from bioimageio_run_onnx.adapter import create_adapter

from bioimageio_core.plugin_testing import (
    assert_import_is_light,
    check_weight_format_spec,
    registered_weight_formats,
)
from bioimageio_core.spec import OnnxWeightsDescr

PLUGIN_ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("onnxruntime", "onnx")


def test_hook_registers_onnx() -> None:
    (spec,) = registered_weight_formats(plugin)
    check_weight_format_spec(spec, framework_modules=FRAMEWORKS)
    assert spec.name == "onnx"
    assert spec.entry_class is OnnxWeightsDescr
    assert spec.create_adapter is create_adapter
    assert spec.is_available() is None
    assert spec.install_hint == "pip install bioimageio-run-onnx"


def test_plugin_import_does_not_import_onnxruntime() -> None:
    assert_import_is_light(
        "bioimageio_run_onnx.plugin", FRAMEWORKS, call="onnx_unavailable", path=[PLUGIN_ROOT]
    )


def test_entry_point_when_installed() -> None:
    try:
        importlib.metadata.distribution("bioimageio-run-onnx")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("bioimageio-run-onnx is not installed (run through `nox -s tests_onnx`)")
    points = importlib.metadata.entry_points(group="bioimageio_core")
    assert {(p.name, p.value) for p in points} >= {("onnx", "bioimageio_run_onnx.plugin")}
