"""End to end: the conformance battery on Keras models built here.

The models (fixed seeds, channels last) are saved as ``.h5`` (keras_hdf5) and ``.keras``
(keras_v3); their test outputs come from Keras run directly. Keras runs on the backend chosen in
conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import keras
import numpy as np
import pytest
from bioimageio_run_keras.backend import backend_entry

import bioimageio_core.plugin.testing as kit
from bioimageio_core.plugin.testing import ModelDef, WeightsDef

FORMATS = ("keras_hdf5", "keras_v3")
FILES = {"keras_hdf5": "weights.h5", "keras_v3": "weights.keras"}
RNG = np.random.default_rng(2026)
# keras' torch backend converts tensors with np.array(x), which numpy 2 warns about
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@attrs.frozen
class Net:
    """A Keras model and the tensor ids of its inputs and outputs, in the model's order."""

    model: keras.Model
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def _save(folder: Path, model: keras.Model) -> tuple[WeightsDef, ...]:
    for path in FILES.values():
        model.save(folder / path)
    hdf5 = {"tensorflow_version": "2.16"}
    v3 = {
        "keras_version": keras.__version__,
        "backend": list(backend_entry(keras)),
        "parent": "keras_hdf5",
    }
    return (
        WeightsDef("keras_hdf5", FILES["keras_hdf5"], hdf5, hdf5),
        WeightsDef("keras_v3", FILES["keras_v3"], v3, v3),
    )


def _predict(model: keras.Model, *arrays: np.ndarray[Any, Any]) -> list[np.ndarray[Any, Any]]:
    out = model.predict_on_batch(list(arrays) if len(arrays) > 1 else arrays[0])
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def _tiled(folder: Path) -> tuple[ModelDef, keras.Model]:
    """3x3 conv, relu, 3x3 conv (receptive field radius 2), input 64 + n*16, halo 4."""
    keras.utils.set_random_seed(1)
    x = keras.Input((None, None, 1), name="raw")
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    y = keras.layers.Conv2D(2, 3, padding="same", bias_initializer="random_normal")(h)
    model = keras.Model(x, y)
    raw = RNG.standard_normal((1, 64, 80, 1)).astype(np.float32)
    (out,) = _predict(model, raw)
    return kit.tiled_model("byxc", raw, out, _save(folder, model)), model


def _multi(folder: Path) -> tuple[ModelDef, keras.Model]:
    """Inputs raw (2 channels), mask (sized like raw); outputs features = conv(raw) * conv(mask)
    (halo 2) and pooled = 2x2 average pool of features (half the size)."""
    keras.utils.set_random_seed(2)
    raw_in = keras.Input((None, None, 2), name="raw")
    mask_in = keras.Input((None, None, 1), name="mask")
    conv = keras.layers.Conv2D(3, 3, padding="same", bias_initializer="random_normal")(raw_in)
    gate = keras.layers.Conv2D(3, 1, activation="sigmoid")(mask_in)
    features = keras.layers.Multiply(name="features")([conv, gate])
    pooled = keras.layers.AveragePooling2D(2, name="pooled")(features)
    model = keras.Model([raw_in, mask_in], [features, pooled])
    raw = RNG.standard_normal((1, 48, 32, 2)).astype(np.float32)
    mask = RNG.uniform(size=(1, 48, 32, 1)).astype(np.float32)
    features_out, pooled_out = _predict(model, raw, mask)
    assert pooled_out.shape == (1, 24, 16, 3)
    weights = _save(folder, model)
    return kit.multi_model("byxc", raw, mask, features_out, pooled_out, weights), model


def _scaled(folder: Path) -> tuple[ModelDef, keras.Model]:
    """3x3 conv then 2x2 max pool: outputs half the input's size (halo 2 output pixels)."""
    keras.utils.set_random_seed(3)
    x = keras.Input((None, None, 1), name="raw")
    conv = keras.layers.Conv2D(2, 3, padding="same", bias_initializer="random_normal")(x)
    model = keras.Model(x, keras.layers.MaxPooling2D(2)(conv))
    raw = RNG.standard_normal((1, 64, 48, 1)).astype(np.float32)
    (out,) = _predict(model, raw)
    assert out.shape == (1, 32, 24, 2)
    return kit.scaled_model("byxc", raw, out, _save(folder, model)), model


BUILDERS: dict[str, Callable[[Path], tuple[ModelDef, keras.Model]]] = {
    "tiled": _tiled,
    "multi": _multi,
    "scaled": _scaled,
}


class TestKerasBackend(kit.BackendConformance[Net]):
    """The conformance battery (``bioimageio_core.plugin.testing``) for both Keras formats."""

    distribution = "bioimageio-run-keras"
    framework_modules = ("keras", "torch", "tensorflow", "jax")
    weights_formats = FORMATS
    large_size = 512  # TF/Keras are slow on CPU: a smaller "large" input than for torch and onnx
    large_blocksize = 4  # blocks of 64 + 4 * 16 = 128 pixels (halo included)
    large_weights_format = "keras_v3"

    def build(self, name: str, folder: Path) -> tuple[ModelDef, Net]:
        model, network = BUILDERS[name](folder)
        inputs = tuple(t.id for t in model.inputs)
        return model, Net(network, inputs, tuple(t.id for t in model.outputs))

    def run_directly(self, network: Net, inputs: kit.Arrays) -> kit.Arrays:
        arrays = _predict(network.model, *(inputs[tid] for tid in network.inputs))
        return dict(zip(network.outputs, arrays, strict=True))
