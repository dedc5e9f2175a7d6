"""End to end: ``bioimageio-run test`` and ``predict`` on TensorFlow SavedModels built here.

The models are ``tf.Module`` s (weights from fixed seeds, channels last) saved with a
``serving_default`` signature whose inputs and outputs are named like the tensor ids, zipped;
their test outputs come from calling the modules directly. Each is described in 0.5 and in 0.4.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from tf_testing import FORMAT, zip_folder

from bioimageio_core.plugin_e2e import (
    LargePrediction,
    ModelDef,
    Param,
    Ref,
    TensorDef,
    Version,
    WeightsDef,
    assert_failed_reproduction,
    assert_passed,
    description_path,
    predict_whole_and_tiled,
    run_test,
    warnings_of,
    write_model,
)

VERSIONS: tuple[Version, ...] = ("0.5", "0.4")
WEIGHTS_FILE = "saved_model.zip"
RNG = np.random.default_rng(2027)
LARGE = 512  # TensorFlow is slow on CPU: a smaller "large" input than for torch and onnx


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOIMAGEIO_CACHE_PATH", str(tmp_path / "cache"))


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
    descr = ModelDef(
        "tiled conv",
        (TensorDef("raw", "byxc", raw, Param(64, 16)),),
        (TensorDef("out", "byxc", out, Ref("raw"), halo=4),),
        _save(folder, module),
    )
    return descr, module


def _multi(folder: Path) -> tuple[ModelDef, tf.Module]:
    """Inputs raw (2 channels), mask (sized like raw); features (halo 2), pooled (half size)."""
    module = MultiNet()
    raw = RNG.standard_normal((1, 48, 32, 2)).astype(np.float32)
    mask = RNG.standard_normal((1, 48, 32, 1)).astype(np.float32)
    out = _run(module, raw=raw, mask=mask)
    assert out["pooled"].shape == (1, 24, 16, 3)
    descr = ModelDef(
        "multi tensor",
        (
            TensorDef("raw", "byxc", raw, Param(32, 16)),
            TensorDef("mask", "byxc", mask, Ref("raw")),
        ),
        (
            TensorDef("features", "byxc", out["features"], Ref("raw"), halo=2),
            TensorDef("pooled", "byxc", out["pooled"], Ref("raw", 0.5), halo=2),
        ),
        _save(folder, module),
    )
    return descr, module


def _scaled(folder: Path) -> tuple[ModelDef, tf.Module]:
    """Outputs half the input's size (halo 2 output pixels)."""
    module = ScaledNet()
    raw = RNG.standard_normal((1, 64, 48, 1)).astype(np.float32)
    out = _run(module, raw=raw)["down"]
    assert out.shape == (1, 32, 24, 2)
    descr = ModelDef(
        "downsampling",
        (TensorDef("raw", "byxc", raw, Param(32, 16)),),
        (TensorDef("down", "byxc", out, Ref("raw", 0.5), halo=2),),
        _save(folder, module),
    )
    return descr, module


BUILDERS: dict[str, Callable[[Path], tuple[ModelDef, tf.Module]]] = {
    "tiled": _tiled,
    "multi": _multi,
    "scaled": _scaled,
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, ModelDef, tf.Module]]:
    """Every model, with its weights and both descriptions in a folder of its own."""
    models = {}
    for name, build in BUILDERS.items():
        folder = tmp_path_factory.mktemp(name)
        model, module = build(folder)
        for version in VERSIONS:
            write_model(folder, model, version)
        models[name] = (folder, model, module)
    return models


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_cli_test_passes(
    built: dict[str, tuple[Path, ModelDef, tf.Module]], name: str, version: Version
) -> None:
    folder, model, _ = built[name]
    exit_code, summary = run_test(description_path(folder, version))
    assert_passed(exit_code, summary, [FORMAT], len(model.outputs))
    assert summary["format_version"] == ("0.5.4" if version == "0.5" else "0.4.10")
    assert warnings_of(summary) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_cli_test_fails_on_a_wrong_test_output(
    built: dict[str, tuple[Path, ModelDef, tf.Module]], tmp_path: Path, version: Version
) -> None:
    folder, model, _ = built["multi"]
    shutil.copy(folder / WEIGHTS_FILE, tmp_path / WEIGHTS_FILE)
    path = write_model(tmp_path, model, version, wrong_output="features")
    exit_code, summary = run_test(path)
    assert_failed_reproduction(exit_code, summary, FORMAT, "features")


# ---- tiled prediction --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def large(
    built: dict[str, tuple[Path, ModelDef, tf.Module]], tmp_path_factory: pytest.TempPathFactory
) -> LargePrediction:
    """A 512x512 input predicted whole and blockwise (batch sizes 1 and 4) by the CLI."""
    folder, _, module = built["tiled"]
    work = tmp_path_factory.mktemp("large")
    image = np.random.default_rng(7).standard_normal((1, LARGE, LARGE, 1)).astype(np.float32)
    # blocks of 64 + 4 * 16 = 128 pixels (halo included): 5 x 5 blocks
    whole, tiled = predict_whole_and_tiled(
        folder / "rdf.yaml", image, work, axes="byxc", blocksize=4
    )
    return LargePrediction(whole, _run(module, raw=image)["out"], tiled)


def test_whole_image_prediction_is_the_module_output(large: LargePrediction) -> None:
    assert large.whole.shape == (1, LARGE, LARGE, 2)
    np.testing.assert_allclose(large.whole, large.direct, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_blockwise_prediction_equals_whole_image(large: LargePrediction, batch_size: int) -> None:
    np.testing.assert_allclose(large.tiled[batch_size], large.whole, rtol=0, atol=1e-5)


def test_batch_size_4_equals_batch_size_1(large: LargePrediction) -> None:
    np.testing.assert_allclose(large.tiled[4], large.tiled[1], rtol=0, atol=1e-5)
