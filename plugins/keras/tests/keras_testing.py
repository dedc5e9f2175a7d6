"""Helpers for the keras plugin tests: tiny models, 0.5 descriptions and adapter requests."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
from attrs import evolve
from bioimageio_run_keras import KERAS_V3, KerasV3WeightsDescr
from bioimageio_run_keras.backend import backend_entry

from bioimageio_core.plugin import AdapterRequest, Settings, get_settings, spec
from bioimageio_core.plugin.testing import ModelDef, build_model, file_entry, model_description
from bioimageio_core.plugin.testing import make_request as core_make_request

EXTENSIONS = spec.SpecExtensions(weight_formats={KERAS_V3: KerasV3WeightsDescr})


def describe(
    root: Path,
    inputs: Mapping[str, np.ndarray[Any, Any]],
    outputs: Mapping[str, np.ndarray[Any, Any]],
    weights: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """A raw 0.5 description of test arrays by tensor id (axes batch, y, x, channel) with the raw
    weights entries ``weights``; test tensors are written to ``root``."""
    model = ModelDef.from_arrays("tiny keras test model", inputs, outputs, (), letters="byxc")
    return {**model_description(root, model), "weights": {k: dict(v) for k, v in weights.items()}}


def keras_entry(root: Path, file: str, fmt: str) -> dict[str, Any]:
    """A raw ``fmt`` weights entry for ``root / file`` (with its sha256)."""
    if fmt == "keras_hdf5":
        return file_entry(root, file, tensorflow_version="2.16")
    return file_entry(
        root, file, keras_version=keras.__version__, backend=list(backend_entry(keras))
    )


def make_request(
    root: Path,
    raw: dict[str, Any],
    fmt: str,
    *,
    devices: tuple[str, ...] | None = ("cpu",),
    settings: Settings | None = None,
) -> AdapterRequest[Any]:
    """A request for ``raw`` (files below ``root``), with the plugin's ``keras_v3`` format known."""
    model = build_model(raw, root, extensions=EXTENSIONS)
    settings = settings or evolve(get_settings(), cache_path=root / "cache")
    return core_make_request(model, fmt, devices, settings=settings)


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
