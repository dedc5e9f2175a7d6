"""End to end: the conformance battery on TensorFlow SavedModels built here.

The models are ``tf.Module`` s (weights from fixed seeds, channels last) saved with a
``serving_default`` signature whose inputs and outputs are named like the tensor ids, zipped;
their test outputs come from calling the modules directly.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tf_testing import FORMAT, zip_folder

import bioimageio_core.plugin.testing as kit
from bioimageio_core.plugin.testing import ModelDef, WeightsDef

WEIGHTS_FILE = "saved_model.zip"
RNG = np.random.default_rng(2027)


def _spec(channels: int) -> tf.TensorSpec:
    return tf.TensorSpec([None, None, None, channels], tf.float32)


def _variable(shape: tuple[int, ...], seed: int) -> tf.Variable:
    rng = np.random.default_rng(seed)
    return tf.Variable(rng.standard_normal(shape).astype(np.float32) * 0.5)


def _conv(x: Any, kernel: tf.Variable, bias: tf.Variable) -> Any:
    return tf.nn.conv2d(x, kernel, strides=1, padding="SAME") + bias


class TiledNet(tf.Module):
    """3x3 conv, relu, 3x3 conv: receptive field radius 2."""

    def __init__(self) -> None:
        super().__init__()
        self.k1, self.b1 = _variable((3, 3, 1, 4), 1), _variable((4,), 2)
        self.k2, self.b2 = _variable((3, 3, 4, 2), 3), _variable((2,), 4)

    @tf.function(input_signature=[_spec(1)])
    def __call__(self, raw: Any) -> Any:
        return {"out": _conv(tf.nn.relu(_conv(raw, self.k1, self.b1)), self.k2, self.b2)}


class MultiNet(tf.Module):
    """features = conv(raw) * sigmoid(mask); pooled = 2x2 average pool of features."""

    def __init__(self) -> None:
        super().__init__()
        self.k, self.b = _variable((3, 3, 2, 3), 5), _variable((3,), 6)

    @tf.function(input_signature=[_spec(2), _spec(1)])
    def __call__(self, raw: Any, mask: Any) -> Any:
        features = _conv(raw, self.k, self.b) * tf.sigmoid(mask)
        return {"features": features, "pooled": tf.nn.avg_pool2d(features, 2, 2, "VALID")}


class ScaledNet(tf.Module):
    """3x3 conv then 2x2 max pool: outputs half the input's size."""

    def __init__(self) -> None:
        super().__init__()
        self.k, self.b = _variable((3, 3, 1, 2), 7), _variable((2,), 8)

    @tf.function(input_signature=[_spec(1)])
    def __call__(self, raw: Any) -> Any:
        return {"down": tf.nn.max_pool2d(_conv(raw, self.k, self.b), 2, 2, "VALID")}


def _save(folder: Path, module: tf.Module) -> tuple[WeightsDef, ...]:
    export = folder / "saved_model"
    tf.saved_model.save(module, str(export), signatures=module.__call__)
    zip_folder(export, folder / WEIGHTS_FILE)
    shutil.rmtree(export)
    entry = {"tensorflow_version": tf.__version__.split("+")[0]}
    return (WeightsDef(FORMAT, WEIGHTS_FILE, entry, entry),)


def _run(module: tf.Module, **inputs: np.ndarray[Any, Any]) -> dict[str, np.ndarray[Any, Any]]:
    result = module(**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: np.asarray(v) for k, v in result.items()}


def _tiled(folder: Path) -> tuple[ModelDef, tf.Module]:
    """Input 64 + n*16, halo 4."""
    module = TiledNet()
    raw = RNG.standard_normal((1, 64, 80, 1)).astype(np.float32)
    out = _run(module, raw=raw)["out"]
    return kit.tiled_model("byxc", raw, out, _save(folder, module)), module


def _multi(folder: Path) -> tuple[ModelDef, tf.Module]:
    """Inputs raw (2 channels), mask (sized like raw); features (halo 2), pooled (half size)."""
    module = MultiNet()
    raw = RNG.standard_normal((1, 48, 32, 2)).astype(np.float32)
    mask = RNG.standard_normal((1, 48, 32, 1)).astype(np.float32)
    out = _run(module, raw=raw, mask=mask)
    assert out["pooled"].shape == (1, 24, 16, 3)
    weights = _save(folder, module)
    return kit.multi_model("byxc", raw, mask, out["features"], out["pooled"], weights), module


def _scaled(folder: Path) -> tuple[ModelDef, tf.Module]:
    """Outputs half the input's size (halo 2 output pixels)."""
    module = ScaledNet()
    raw = RNG.standard_normal((1, 64, 48, 1)).astype(np.float32)
    out = _run(module, raw=raw)["down"]
    assert out.shape == (1, 32, 24, 2)
    return kit.scaled_model("byxc", raw, out, _save(folder, module)), module


BUILDERS: dict[str, Callable[[Path], tuple[ModelDef, tf.Module]]] = {
    "tiled": _tiled,
    "multi": _multi,
    "scaled": _scaled,
}


class TestTensorflowBackend(kit.BackendConformance[tf.Module]):
    """The conformance battery (``bioimageio_core.plugin.testing``) for the tensorflow plugin."""

    distribution = "bioimageio-run-tensorflow"
    framework_modules = ("tensorflow",)
    weights_formats = (FORMAT,)
    large_size = 512  # TensorFlow is slow on CPU: a smaller "large" input than for torch and onnx
    large_blocksize = 4  # blocks of 64 + 4 * 16 = 128 pixels (halo included)

    def build(self, name: str, folder: Path) -> tuple[ModelDef, tf.Module]:
        return BUILDERS[name](folder)

    def run_directly(self, network: tf.Module, inputs: kit.Arrays) -> kit.Arrays:
        return _run(network, **inputs)
