"""End to end: ``bioimageio-run test`` and ``predict`` on Keras models built here.

The models (fixed seeds, channels last) are saved as ``.h5`` (keras_hdf5) and ``.keras``
(keras_v3); their test outputs come from Keras run directly. Each is described in 0.5 and in 0.4.
Keras runs on the backend chosen in conftest.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from bioimageio_run_keras.backend import backend_entry

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

FORMATS = ("keras_hdf5", "keras_v3")
FILES = {"keras_hdf5": "weights.h5", "keras_v3": "weights.keras"}
VERSIONS: tuple[Version, ...] = ("0.5", "0.4")
RNG = np.random.default_rng(2026)
# keras' torch backend converts tensors with np.array(x), which numpy 2 warns about
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
LARGE = 512  # TF/Keras are slow on CPU: a smaller "large" input than for torch and onnx


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOIMAGEIO_CACHE_PATH", str(tmp_path / "cache"))


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
    descr = ModelDef(
        "tiled conv",
        (TensorDef("raw", "byxc", raw, Param(64, 16)),),
        (TensorDef("out", "byxc", out, Ref("raw"), halo=4),),
        _save(folder, model),
    )
    return descr, model


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
    descr = ModelDef(
        "multi tensor",
        (
            TensorDef("raw", "byxc", raw, Param(32, 16)),
            TensorDef("mask", "byxc", mask, Ref("raw")),
        ),
        (
            TensorDef("features", "byxc", features_out, Ref("raw"), halo=2),
            TensorDef("pooled", "byxc", pooled_out, Ref("raw", 0.5), halo=2),
        ),
        _save(folder, model),
    )
    return descr, model


def _scaled(folder: Path) -> tuple[ModelDef, keras.Model]:
    """3x3 conv then 2x2 max pool: outputs half the input's size (halo 2 output pixels)."""
    keras.utils.set_random_seed(3)
    x = keras.Input((None, None, 1), name="raw")
    conv = keras.layers.Conv2D(2, 3, padding="same", bias_initializer="random_normal")(x)
    model = keras.Model(x, keras.layers.MaxPooling2D(2)(conv))
    raw = RNG.standard_normal((1, 64, 48, 1)).astype(np.float32)
    (out,) = _predict(model, raw)
    assert out.shape == (1, 32, 24, 2)
    descr = ModelDef(
        "downsampling",
        (TensorDef("raw", "byxc", raw, Param(32, 16)),),
        (TensorDef("down", "byxc", out, Ref("raw", 0.5), halo=2),),
        _save(folder, model),
    )
    return descr, model


BUILDERS: dict[str, Callable[[Path], tuple[ModelDef, keras.Model]]] = {
    "tiled": _tiled,
    "multi": _multi,
    "scaled": _scaled,
}


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[Path, ModelDef, keras.Model]]:
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
    built: dict[str, tuple[Path, ModelDef, keras.Model]], name: str, version: Version
) -> None:
    folder, model, _ = built[name]
    exit_code, summary = run_test(description_path(folder, version))
    assert_passed(exit_code, summary, FORMATS, len(model.outputs))
    assert summary["format_version"] == ("0.5.4" if version == "0.5" else "0.4.10")
    assert warnings_of(summary) == []


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("weights_format", FORMATS)
def test_cli_test_fails_on_a_wrong_test_output(
    built: dict[str, tuple[Path, ModelDef, keras.Model]],
    tmp_path: Path,
    version: Version,
    weights_format: str,
) -> None:
    folder, model, _ = built["multi"]
    for w in model.weights:
        shutil.copy(folder / w.source, tmp_path / w.source)
    path = write_model(tmp_path, model, version, wrong_output="pooled")
    exit_code, summary = run_test(path, "--weights-format", weights_format)
    assert_failed_reproduction(exit_code, summary, weights_format, "pooled")


# ---- tiled prediction --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def large(
    built: dict[str, tuple[Path, ModelDef, keras.Model]],
    tmp_path_factory: pytest.TempPathFactory,
) -> LargePrediction:
    """A 512x512 input predicted whole and blockwise (batch sizes 1 and 4) by the CLI."""
    folder, _, module = built["tiled"]
    work = tmp_path_factory.mktemp("large")
    image = np.random.default_rng(7).standard_normal((1, LARGE, LARGE, 1)).astype(np.float32)
    # blocks of 64 + 4 * 16 = 128 pixels (halo included): 5 x 5 blocks
    whole, tiled = predict_whole_and_tiled(
        folder / "rdf.yaml", image, work, axes="byxc", blocksize=4, weights_format="keras_v3"
    )
    (direct,) = _predict(module, image)
    return LargePrediction(whole, direct, tiled)


def test_whole_image_prediction_is_the_keras_output(large: LargePrediction) -> None:
    assert large.whole.shape == (1, LARGE, LARGE, 2)
    np.testing.assert_allclose(large.whole, large.direct, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_blockwise_prediction_equals_whole_image(large: LargePrediction, batch_size: int) -> None:
    np.testing.assert_allclose(large.tiled[batch_size], large.whole, rtol=0, atol=1e-5)


def test_batch_size_4_equals_batch_size_1(large: LargePrediction) -> None:
    np.testing.assert_allclose(large.tiled[4], large.tiled[1], rtol=0, atol=1e-5)
