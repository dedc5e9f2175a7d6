"""The tensorflow plugin's hook registers its format; importing it imports no tensorflow."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pluggy
import pytest
from bioimageio_run_tensorflow import create_adapter, plugin

from bioimageio_core import hookspecs
from bioimageio_core.hookspecs import WeightFormatSpec
from bioimageio_core.spec import TensorflowSavedModelBundleWeightsDescr


class Register:
    def __init__(self) -> None:
        self.specs: list[WeightFormatSpec] = []

    def add(self, spec: WeightFormatSpec) -> None:
        self.specs.append(spec)


def test_hook_registers_saved_model_bundle() -> None:
    register = Register()
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(plugin)
    manager.check_pending()  # the hookimpl matches a hook specification
    manager.hook.bioimageio_weight_formats(register=register)
    (spec,) = register.specs
    assert spec.name == "tensorflow_saved_model_bundle"
    assert spec.entry_class is TensorflowSavedModelBundleWeightsDescr
    assert spec.create_adapter is create_adapter
    assert spec.is_available() is None
    assert spec.install_hint == "pip install bioimageio-run-tensorflow"


def test_plugin_import_does_not_import_tensorflow() -> None:
    code = (
        "import sys, bioimageio_run_tensorflow.plugin as p; p.tensorflow_unavailable(); "
        "assert 'tensorflow' not in sys.modules, 'imported'"
    )
    path = os.pathsep.join([str(Path(__file__).resolve().parents[1]), *sys.path])
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": path})


def test_entry_point_when_installed() -> None:
    try:
        importlib.metadata.distribution("bioimageio-run-tensorflow")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(
            "bioimageio-run-tensorflow is not installed (run through `nox -s tests_tensorflow`)"
        )
    points = importlib.metadata.entry_points(group="bioimageio_core")
    assert {(p.name, p.value) for p in points} >= {
        ("tensorflow", "bioimageio_run_tensorflow.plugin")
    }
