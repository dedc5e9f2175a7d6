"""Helpers for the keras plugin tests: tiny models, 0.5 descriptions and adapter requests."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import keras
import numpy as np
from attrs import evolve
from bioimageio_run_keras import KERAS_V3, KerasV3WeightsDescr
from bioimageio_run_keras.backend import backend_entry

from bioimageio_core import plugin_testing as pt
from bioimageio_core.adapters import AdapterRequest
from bioimageio_core.settings import Settings, get_settings
from bioimageio_core.spec import SpecExtensions

EXTENSIONS = SpecExtensions(weight_formats={KERAS_V3: KerasV3WeightsDescr})


describe = functools.partial(
    pt.describe_arrays,
    letters="byxc",
    name="tiny keras test model",
    description="a tiny model built by the keras plugin tests",
)
"""``describe(root, inputs, outputs, weights)``: a raw 0.5 description of test arrays by tensor id
(axes batch, y, x, channel); test tensors are written to ``root``."""


def weights_entry(root: Path, file: str, fmt: str) -> dict[str, Any]:
    if fmt == "keras_hdf5":
        return pt.weights_entry(root, file, tensorflow_version="2.16")
    return pt.weights_entry(
        root, file, keras_version=keras.__version__, backend=list(backend_entry(keras))
    )


def make_request(
    root: Path,
    raw: dict[str, Any],
    fmt: str,
    *,
    devices: tuple[str, ...] | None = ("cpu",),
    settings: Settings | None = None,
) -> AdapterRequest:
    """A request for ``raw`` (files below ``root``), with the plugin's ``keras_v3`` format known."""
    model = pt.build_model(raw, root, extensions=EXTENSIONS)
    settings = settings or evolve(get_settings(), cache_path=root / "cache")
    return pt.make_request(model, fmt, devices, settings=settings)


# --- models -------------------------------------------------------------------------------------


def conv_model() -> keras.Model:
    """3x3 'same' convolution 1 -> 2 channels, seeded."""
    keras.utils.set_random_seed(11)
    x = keras.Input((None, None, 1), name="image")
    y = keras.layers.Conv2D(2, 3, padding="same", bias_initializer="random_normal", name="conv")(x)
    return keras.Model(x, y)


def two_in_two_out_model(
    names_in: tuple[str, str], names_out: tuple[str, str], *, pooled_first: bool = False
) -> keras.Model:
    """Outputs ``names_out[0]`` = a * b - a (same size), ``names_out[1]`` = 2x2 max pool of b.

    With ``pooled_first`` the model declares the pooled output first.
    """
    a = keras.Input((None, None, 1), name=names_in[0])
    b = keras.Input((None, None, 1), name=names_in[1])
    ab = keras.layers.Multiply()([a, b])
    combined = keras.layers.Subtract(name=names_out[0])([ab, a])
    pooled = keras.layers.MaxPooling2D(2, name=names_out[1])(b)
    return keras.Model([a, b], [pooled, combined] if pooled_first else [combined, pooled])


def conv_numpy(
    x: np.ndarray[Any, Any], kernel: np.ndarray[Any, Any], bias: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """Channels-last 'same' cross-correlation with a (3, 3, cin, cout) kernel, in float64."""
    n, h, w, _ = x.shape
    padded = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((n, h, w, kernel.shape[-1]))
    for dy in range(3):
        for dx in range(3):
            out += np.einsum("nhwc,co->nhwo", padded[:, dy : dy + h, dx : dx + w], kernel[dy, dx])
    return out + bias


def max_pool_numpy(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    n, h, w, c = x.shape
    return x[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
