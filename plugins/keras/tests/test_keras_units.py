"""Backend choice, device names and the keras_v3 weights entry."""

from __future__ import annotations

import re
from typing import Any

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
from keras_testing import EXTENSIONS

from bioimageio_core import dump_description
from bioimageio_core.plugin import ModelDescr, PluginError, Settings, spec

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


def _raw(weights: dict[str, Any]) -> dict[str, Any]:
    axes = [{"type": "batch"}, {"type": "channel", "channel_names": ["c"]}]
    return {
        "format_version": "0.5.4",
        "type": "model",
        "name": "keras v3 model",
        "license": "MIT",
        "inputs": [{"id": "a", "axes": axes, "test_tensor": {"source": "a.npy"}}],
        "outputs": [{"id": "b", "axes": axes, "test_tensor": {"source": "b.npy"}}],
        "weights": weights,
    }


def test_keras_v3_entry_is_the_formats_own() -> None:
    entry = {
        "source": "m.keras",
        "sha256": SHA,
        "keras_version": "3.5.0",
        "backend": ["torch", "2.13.0"],
        "authors": [{"name": "Ada"}],
    }
    raw = _raw({"keras_v3": entry})
    for extensions in (EXTENSIONS, None):  # known with and without the plugin
        result = spec.build_description(raw, extensions=extensions)
        assert result.errors == ()
        assert isinstance(result.descr, ModelDescr)
        parsed = result.descr.weights["keras_v3"]
        assert isinstance(parsed, KerasV3WeightsDescr)
        assert (parsed.source, parsed.sha256, parsed.keras_version) == ("m.keras", SHA, "3.5.0")
        assert parsed.backend == ("torch", "2.13.0")
        assert parsed.authors is not None and parsed.authors[0].name == "Ada"
        dumped = dump_description(result.descr)["weights"]["keras_v3"]
        assert (dumped["keras_version"], dumped["backend"]) == ("3.5.0", ["torch", "2.13.0"])


_OK = {"source": "m.keras", "keras_version": "3.5.0", "backend": ["jax", "0.4.30"]}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({**_OK, "source": "m.h5"}, r"'\.keras' file"),
        ({**_OK, "sha256": "abc"}, "SHA-256"),
        ({**_OK, "parent": "keras_v3"}, "own parent"),
        ({**_OK, "keras_version": "2.15"}, ">= 3"),
        ({**_OK, "backend": ["mxnet", "1.9"]}, "must be one of"),
        ({**_OK, "backend": "torch"}, r"\[name, version\]"),
        ({"source": "m.keras", "keras_version": "3.1"}, "'backend' is required"),
    ],
)
def test_keras_v3_entry_errors(entry: dict[str, Any], message: str) -> None:
    result = spec.build_description(_raw({"keras_v3": entry}), extensions=EXTENSIONS)
    assert result.descr is None
    assert any(
        re.search(message, i.msg) and i.loc[:2] == ("weights", "keras_v3") for i in result.errors
    ), result.errors


def test_keras_version_written_as_number_is_a_warning() -> None:
    result = spec.build_description(
        _raw({"keras_v3": {**_OK, "keras_version": 3.1}}), extensions=EXTENSIONS
    )
    assert isinstance(result.descr, ModelDescr)
    assert result.descr.weights["keras_v3"].keras_version == "3.1"
    assert any(i.loc[-1] == "keras_version" for i in result.warnings)
