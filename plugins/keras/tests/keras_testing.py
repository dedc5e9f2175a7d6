"""Helpers for the keras plugin tests: tiny models, 0.5 descriptions and adapter requests."""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from typing import Any

import keras
import numpy as np
from bioimageio_run_keras import KERAS_V3, KerasV3WeightsDescr

from bioimageio_core.adapters import AdapterRequest
from bioimageio_core.settings import Settings, get_settings
from bioimageio_core.spec import ModelDescr, SpecExtensions, build_description

EXTENSIONS = SpecExtensions(weight_formats={KERAS_V3: KerasV3WeightsDescr})


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def local_opener(root: Path) -> Any:
    """An ``open_file`` for files below ``root`` that checks sha256 like the core does."""

    def open_file(reference: str, sha256: str | None) -> Path:
        path = root.joinpath(*PurePosixPath(reference).parts)
        if sha256 is not None and sha256_of(path) != sha256:
            raise ValueError(f"sha256 mismatch for {reference}")
        return path

    return open_file


def describe(
    root: Path,
    inputs: dict[str, np.ndarray[Any, Any]],
    outputs: dict[str, np.ndarray[Any, Any]],
    weights: dict[str, Any],
) -> dict[str, Any]:
    """A raw 0.5 model description (axes batch, y, x, channel); test tensors written to ``root``."""

    def tensor(tid: str, array: np.ndarray[Any, Any], prefix: str) -> dict[str, Any]:
        name = f"{prefix}_{tid}.npy"
        np.save(root / name, array)
        _, h, w, c = array.shape
        return {
            "id": tid,
            "axes": [
                {"type": "batch"},
                {"type": "space", "id": "y", "size": h},
                {"type": "space", "id": "x", "size": w},
                {"type": "channel", "channel_names": [f"c{i}" for i in range(c)]},
            ],
            "data": {"type": str(array.dtype)},
            "test_tensor": {"source": name, "sha256": sha256_of(root / name)},
        }

    return {
        "format_version": "0.5.4",
        "type": "model",
        "name": "tiny keras test model",
        "description": "a tiny model built by the keras plugin tests",
        "authors": [{"name": "test"}],
        "cite": [{"text": "test", "doi": "10.1000/test"}],
        "license": "MIT",
        "inputs": [tensor(k, v, "in") for k, v in inputs.items()],
        "outputs": [tensor(k, v, "out") for k, v in outputs.items()],
        "weights": weights,
    }


def weights_entry(root: Path, file: str, fmt: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"source": file, "sha256": sha256_of(root / file)}
    if fmt == "keras_hdf5":
        entry["tensorflow_version"] = "2.16"
    else:
        entry["keras_version"] = keras.__version__
    return entry


def build_model(raw: dict[str, Any]) -> ModelDescr:
    """The ``ModelDescr`` for ``raw``, with the plugin's ``keras_v3`` format known."""
    result = build_description(raw, extensions=EXTENSIONS)
    if not isinstance(result.descr, ModelDescr):
        raise AssertionError(f"invalid test description: {[str(i) for i in result.issues]}")
    return result.descr


def make_request(
    root: Path,
    raw: dict[str, Any],
    fmt: str,
    *,
    devices: tuple[str, ...] | None = ("cpu",),
    settings: Settings | None = None,
) -> AdapterRequest:
    model = build_model(raw)
    return AdapterRequest(
        model=model,
        weights_format=fmt,
        weights=model.weights[fmt],
        devices=devices,
        open_file=local_opener(root),
        settings=settings or _settings(root),
    )


def _settings(root: Path) -> Settings:
    from attrs import evolve

    return evolve(get_settings(), cache_path=root / "cache")


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
