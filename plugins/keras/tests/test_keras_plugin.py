"""The keras plugin's hook registers keras_hdf5 and keras_v3; importing it imports no keras."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from bioimageio_run_keras import KerasV3WeightsDescr, create_adapter, plugin

from bioimageio_core.plugin_testing import (
    assert_import_is_light,
    check_entry_point,
    checked_weight_formats,
)
from bioimageio_core.spec import KerasHdf5WeightsDescr

PLUGIN_ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("keras", "torch", "tensorflow", "jax")


def test_hook_registers_both_formats() -> None:
    by_name = checked_weight_formats(plugin, framework_modules=FRAMEWORKS)
    assert set(by_name) == {"keras_hdf5", "keras_v3"}
    assert by_name["keras_hdf5"].entry_class is KerasHdf5WeightsDescr
    assert by_name["keras_v3"].entry_class is KerasV3WeightsDescr
    for spec in by_name.values():
        assert spec.create_adapter is create_adapter
        assert spec.is_available() is None
        assert "bioimageio-run-keras" in spec.install_hint


def test_keras_2_is_reported_unusable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "2.15.0")
    reason = plugin.keras_unavailable()
    assert reason is not None and "keras 2.15.0" in reason and "Keras 3" in reason


def test_plugin_import_does_not_import_keras() -> None:
    assert_import_is_light(
        "bioimageio_run_keras.plugin", FRAMEWORKS, call="keras_unavailable", path=[PLUGIN_ROOT]
    )


def test_entry_point_when_installed() -> None:
    loaded = check_entry_point("bioimageio-run-keras", "keras", "bioimageio_run_keras.plugin")
    assert loaded is plugin
