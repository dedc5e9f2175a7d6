"""The keras plugin's hook registers keras_hdf5 and keras_v3; Keras 2 is reported unusable.

Registration checks, the light import and the entry point are part of the conformance battery
(``TestKerasBackend`` in test_keras_e2e.py).
"""

from __future__ import annotations

import importlib.metadata

import pytest
from bioimageio_run_keras import KerasV3WeightsDescr, create_adapter, plugin

from bioimageio_core.plugin import KerasHdf5WeightsDescr
from bioimageio_core.plugin.testing import checked_weight_formats

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
