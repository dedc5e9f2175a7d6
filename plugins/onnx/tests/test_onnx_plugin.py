"""The onnx plugin's hook registers the format; importing the plugin imports no onnxruntime."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pluggy
import pytest
from bioimageio_run_onnx import plugin
from bioimageio_run_onnx.adapter import create_adapter

from bioimageio_core import hookspecs
from bioimageio_core.hookspecs import WeightFormatSpec
from bioimageio_core.spec import OnnxWeightsDescr


class Register:
    def __init__(self) -> None:
        self.specs: list[WeightFormatSpec] = []

    def add(self, spec: WeightFormatSpec) -> None:
        self.specs.append(spec)


def test_hook_registers_onnx() -> None:
    register = Register()
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(plugin)
    manager.check_pending()  # the hookimpl matches a hook specification
    manager.hook.bioimageio_weight_formats(register=register)
    (spec,) = register.specs
    assert spec.name == "onnx"
    assert spec.entry_class is OnnxWeightsDescr
    assert spec.create_adapter is create_adapter
    assert spec.is_available() is None
    assert spec.install_hint == "pip install bioimageio-run-onnx"


def test_plugin_import_does_not_import_onnxruntime() -> None:
    code = (
        "import sys, bioimageio_run_onnx.plugin as p; p.onnx_unavailable(); "
        "assert 'onnxruntime' not in sys.modules and 'onnx' not in sys.modules, 'imported'"
    )
    root = Path(__file__).resolve().parents[1]
    env_path = [str(root), *sys.path]
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(env_path)},
    )


def test_entry_point_when_installed() -> None:
    try:
        importlib.metadata.distribution("bioimageio-run-onnx")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("bioimageio-run-onnx is not installed (run through `nox -s tests_onnx`)")
    points = importlib.metadata.entry_points(group="bioimageio_core")
    assert {(p.name, p.value) for p in points} >= {("onnx", "bioimageio_run_onnx.plugin")}
