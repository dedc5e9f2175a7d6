"""The onnx plugin's hook registers the format; importing the plugin imports no onnxruntime."""

from __future__ import annotations

from pathlib import Path

from bioimageio_run_onnx import plugin
from bioimageio_run_onnx.adapter import create_adapter

from bioimageio_core import plugins
from bioimageio_core.plugin_testing import (
    assert_import_is_light,
    check_entry_point,
    checked_weight_formats,
)
from bioimageio_core.spec import OnnxWeightsDescr

PLUGIN_ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("onnxruntime", "onnx")


def test_hook_registers_onnx() -> None:
    (spec,) = checked_weight_formats(plugin, framework_modules=FRAMEWORKS).values()
    assert spec.name == "onnx"
    assert spec.entry_class is OnnxWeightsDescr
    assert spec.create_adapter is create_adapter
    assert spec.is_available() is None
    assert spec.install_hint == ""  # the registry fills it in from the distribution


def test_plugin_import_does_not_import_onnxruntime() -> None:
    assert_import_is_light(
        "bioimageio_run_onnx.plugin", FRAMEWORKS, call="onnx_unavailable", path=[PLUGIN_ROOT]
    )


def test_entry_point_when_installed() -> None:
    loaded = check_entry_point("bioimageio-run-onnx", "onnx", "bioimageio_run_onnx.plugin")
    assert loaded is plugin
    # the install hint a user reads comes from the entry point's distribution
    assert plugins.weight_formats()["onnx"].install_hint == "pip install bioimageio-run-onnx"
