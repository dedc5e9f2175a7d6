"""Backend choice, device names and the plugin-defined keras_v3 weights entry."""

from __future__ import annotations

import keras
import pytest
from attrs import evolve
from bioimageio_run_keras.backend import (
    DEFAULT_BACKEND,
    activate_backend,
    keras_device,
    requested_backend,
)
from bioimageio_run_keras.weights import KerasV3WeightsDescr
from hypothesis import given
from hypothesis import strategies as st

from bioimageio_core.errors import PluginError
from bioimageio_core.settings import Settings

SHA = "ab" * 32


def test_requested_backend_is_explicit_when_set() -> None:
    default = Settings()
    assert requested_backend(default, {}) == (DEFAULT_BACKEND, False)
    assert requested_backend(default, {"KERAS_BACKEND": "torch"}) == ("torch", True)
    assert requested_backend(evolve(default, keras_backend=" JAX "), {}) == ("jax", True)


def test_backend_cannot_change_after_keras_was_imported() -> None:
    active = keras.backend.backend()
    other = "jax" if active != "jax" else "torch"
    assert activate_backend(active, explicit=True) is keras
    with pytest.raises(PluginError, match=f"KERAS_BACKEND={other}"):
        activate_backend(other, explicit=True)
    with pytest.warns(UserWarning, match=f"running the model with '{active}'"):
        assert activate_backend(other, explicit=False) is keras
    with pytest.raises(PluginError, match="unknown Keras backend 'mxnet'"):
        activate_backend("mxnet", explicit=True)


@given(st.integers(min_value=0, max_value=16))
def test_device_names(index: int) -> None:
    assert keras_device(None) is None
    assert keras_device(("cpu",)) == "cpu:0"
    assert keras_device(("cuda",)) == "gpu:0"
    assert keras_device((f"cuda:{index}",)) == f"gpu:{index}"


def test_unknown_and_extra_devices() -> None:
    with pytest.raises(PluginError, match="'mps'"):
        keras_device(("mps",))
    with pytest.warns(UserWarning, match="one device"):
        assert keras_device(("cpu", "cuda")) == "cpu:0"


def test_keras_v3_entry_validates_its_fields() -> None:
    entry = KerasV3WeightsDescr(
        source="m.keras", sha256=SHA, keras_version="3.5.0", parent="keras_hdf5"
    )
    assert (entry.source, entry.comment, entry.authors) == ("m.keras", "", None)
    with pytest.raises(ValueError, match=r"'\.keras' file"):
        KerasV3WeightsDescr(source="m.h5")
    with pytest.raises(ValueError, match="64 hexadecimal"):
        KerasV3WeightsDescr(source="m.keras", sha256="abc")
    with pytest.raises(ValueError, match="not keras_v3 itself"):
        KerasV3WeightsDescr(source="m.keras", parent="keras_v3")
