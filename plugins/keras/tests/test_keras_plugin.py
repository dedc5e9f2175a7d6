"""The keras plugin's hook registers keras_hdf5 and keras_v3; importing it imports no keras."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pluggy
import pytest
from bioimageio_run_keras import KerasV3WeightsDescr, create_adapter, plugin

from bioimageio_core import hookspecs
from bioimageio_core.hookspecs import WeightFormatSpec
from bioimageio_core.spec import KerasHdf5WeightsDescr


class Register:
    def __init__(self) -> None:
        self.specs: list[WeightFormatSpec] = []

    def add(self, spec: WeightFormatSpec) -> None:
        self.specs.append(spec)


def test_hook_registers_both_formats() -> None:
    register = Register()
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(plugin)
    manager.check_pending()  # the hookimpl matches a hook specification
    manager.hook.bioimageio_weight_formats(register=register)
    by_name = {s.name: s for s in register.specs}
    assert set(by_name) == {"keras_hdf5", "keras_v3"}
    assert by_name["keras_hdf5"].entry_class is KerasHdf5WeightsDescr
    assert by_name["keras_v3"].entry_class is KerasV3WeightsDescr
    for spec in register.specs:
        assert spec.create_adapter is create_adapter
        assert spec.is_available() is None
        assert "bioimageio-run-keras" in spec.install_hint


def test_keras_2_is_reported_unusable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "2.15.0")
    reason = plugin.keras_unavailable()
    assert reason is not None and "keras 2.15.0" in reason and "Keras 3" in reason


def test_plugin_import_does_not_import_keras() -> None:
    code = (
        "import sys, bioimageio_run_keras.plugin as p; p.keras_unavailable(); "
        "heavy = {'keras', 'torch', 'tensorflow', 'jax'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    path = os.pathsep.join([str(Path(__file__).resolve().parents[1]), *sys.path])
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": path})


def test_entry_point_when_installed() -> None:
    try:
        importlib.metadata.distribution("bioimageio-run-keras")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("bioimageio-run-keras is not installed (run through `nox -s tests_keras`)")
    points = importlib.metadata.entry_points(group="bioimageio_core")
    assert {(p.name, p.value) for p in points} >= {("keras", "bioimageio_run_keras.plugin")}
