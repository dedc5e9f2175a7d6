"""End to end: ``bioimageio-run test`` and ``predict`` on ONNX models built here, the bundled
example model and the published unet2d_nuclei_broad model.

The graphs (weights from fixed seeds) are built with ``onnx.helper``; their test outputs come from
onnxruntime run directly (and, for the tiled model, from a numpy convolution). Each model is
described in 0.5 and in 0.4.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_testing import OPSET, conv_numpy

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
    run_cli,
    run_test,
    warnings_of,
    write_model,
)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = PROJECT_ROOT / "examples" / "tiny-nuclei-unet" / "rdf.yaml"
UNET_DIR = PROJECT_ROOT / ".." / "shared" / "conformance" / "models" / "unet2d_nuclei_broad"
VERSIONS: tuple[Version, ...] = ("0.5", "0.4")
WEIGHTS_FILE = "weights.onnx"
RNG = np.random.default_rng(2025)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOIMAGEIO_CACHE_PATH", str(tmp_path / "cache"))


# ---- graphs ------------------------------------------------------------------------------------


def _image(name: str, channels: int, h: str = "h", w: str = "w") -> Any:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n", channels, h, w])


def _save(
    folder: Path, nodes: list[Any], inputs: list[Any], outputs: list[Any], inits: list[Any]
) -> Path:
    graph = helper.make_graph(nodes, "e2e", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = folder / WEIGHTS_FILE
    onnx.save_model(model, path)
    return path


def _param(name: str, shape: tuple[int, ...], seed: int) -> Any:
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.5, name)


def _run(path: Path, feed: dict[str, np.ndarray[Any, Any]]) -> list[np.ndarray[Any, Any]]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in session.run(None, feed)]


def _weights() -> tuple[WeightsDef, ...]:
    entry = {"opset_version": OPSET}
    return (WeightsDef("onnx", WEIGHTS_FILE, entry, entry),)


def _tiled(folder: Path) -> ModelDef:
    """3x3 conv, relu, 3x3 conv (receptive field radius 2), input 64 + n*16, halo 4."""
    path = _save(
        folder,
        [
            helper.make_node("Conv", ["input", "W1", "B1"], ["h1"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["h1"], ["r1"]),
            helper.make_node("Conv", ["r1", "W2", "B2"], ["output"], pads=[1, 1, 1, 1]),
        ],
        [_image("input", 1)],
        [_image("output", 2)],
        [_param("W1", (4, 1, 3, 3), 1), _param("B1", (4,), 2)]
        + [_param("W2", (2, 4, 3, 3), 3), _param("B2", (2,), 4)],
    )
    raw = RNG.standard_normal((1, 1, 64, 80)).astype(np.float32)
    (out,) = _run(path, {"input": raw})
    return ModelDef(
        "tiled conv",
        (TensorDef("raw", "bcyx", raw, Param(64, 16)),),
        (TensorDef("out", "bcyx", out, Ref("raw"), halo=4),),
        _weights(),
    )


def _tiled_numpy(x: np.ndarray[Any, Any], folder: Path) -> np.ndarray[Any, Any]:
    """The tiled model's output computed with numpy from the graph's initializers."""
    inits = {
        i.name: numpy_helper.to_array(i) for i in onnx.load(folder / WEIGHTS_FILE).graph.initializer
    }
    hidden = np.maximum(conv_numpy(x, inits["W1"], inits["B1"]), 0)
    return conv_numpy(hidden, inits["W2"], inits["B2"])


def _multi(folder: Path) -> ModelDef:
    """Inputs raw (2 channels), mask (sized like raw); outputs features = conv(raw) * mask
    (halo 2) and pooled = 2x2 average pool of features (half the size)."""
    path = _save(
        folder,
        [
            helper.make_node("Conv", ["raw_in", "W", "B"], ["conv"], pads=[1, 1, 1, 1]),
            helper.make_node("Mul", ["conv", "mask_in"], ["features_out"]),
            helper.make_node(
                "AveragePool", ["features_out"], ["pooled_out"], kernel_shape=[2, 2], strides=[2, 2]
            ),
        ],
        [_image("raw_in", 2), _image("mask_in", 1)],
        [_image("features_out", 3), _image("pooled_out", 3, "h2", "w2")],
        [_param("W", (3, 2, 3, 3), 5), _param("B", (3,), 6)],
    )
    raw = RNG.standard_normal((1, 2, 48, 32)).astype(np.float32)
    mask = RNG.uniform(size=(1, 1, 48, 32)).astype(np.float32)
    features, pooled = _run(path, {"raw_in": raw, "mask_in": mask})
    assert pooled.shape == (1, 3, 24, 16)
    return ModelDef(
        "multi tensor",
        (
            TensorDef("raw", "bcyx", raw, Param(32, 16)),
            TensorDef("mask", "bcyx", mask, Ref("raw")),
        ),
        (
            TensorDef("features", "bcyx", features, Ref("raw"), halo=2),
            TensorDef("pooled", "bcyx", pooled, Ref("raw", 0.5), halo=2),
        ),
        _weights(),
    )


def _scaled(folder: Path) -> ModelDef:
    """3x3 conv then 2x2 max pool: outputs half the input's size (halo 2 output pixels)."""
    path = _save(
        folder,
        [
            helper.make_node("Conv", ["input", "W", "B"], ["conv"], pads=[1, 1, 1, 1]),
            helper.make_node("MaxPool", ["conv"], ["output"], kernel_shape=[2, 2], strides=[2, 2]),
        ],
        [_image("input", 1)],
        [_image("output", 2, "h2", "w2")],
        [_param("W", (2, 1, 3, 3), 7), _param("B", (2,), 8)],
    )
    raw = RNG.standard_normal((1, 1, 64, 48)).astype(np.float32)
    (out,) = _run(path, {"input": raw})
    assert out.shape == (1, 2, 32, 24)
    return ModelDef(
        "downsampling",
        (TensorDef("raw", "bcyx", raw, Param(32, 16)),),
        (TensorDef("down", "bcyx", out, Ref("raw", 0.5), halo=2),),
        _weights(),
    )


GRAPH_INPUTS = {  # graph input name by tensor id
    "tiled": {"raw": "input"},
    "multi": {"raw": "raw_in", "mask": "mask_in"},
    "scaled": {"raw": "input"},
}
BUILDERS: dict[str, Callable[[Path], ModelDef]] = {
    "tiled": _tiled,
    "multi": _multi,
    "scaled": _scaled,
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, ModelDef]]:
    """Every model, with its weights and both descriptions in a folder of its own."""
    models = {}
    for name, build in BUILDERS.items():
        folder = tmp_path_factory.mktemp(name)
        model = build(folder)
        for version in VERSIONS:
            write_model(folder, model, version)
        models[name] = (folder, model)
    return models


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_cli_test_passes(
    built: dict[str, tuple[Path, ModelDef]], name: str, version: Version
) -> None:
    folder, model = built[name]
    exit_code, summary = run_test(description_path(folder, version))
    assert_passed(exit_code, summary, ["onnx"], len(model.outputs))
    assert summary["format_version"] == ("0.5.4" if version == "0.5" else "0.4.10")
    assert warnings_of(summary) == []


def test_tiled_model_test_output_matches_numpy(built: dict[str, tuple[Path, ModelDef]]) -> None:
    folder, model = built["tiled"]
    (raw,), (out,) = model.inputs, model.outputs
    np.testing.assert_allclose(out.test, _tiled_numpy(raw.test, folder), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("wrong", ["features", "pooled"])
def test_cli_test_fails_on_a_wrong_test_output(
    built: dict[str, tuple[Path, ModelDef]], tmp_path: Path, version: Version, wrong: str
) -> None:
    folder, model = built["multi"]
    shutil.copy(folder / WEIGHTS_FILE, tmp_path / WEIGHTS_FILE)
    path = write_model(tmp_path, model, version, wrong_output=wrong)
    exit_code, summary = run_test(path)
    assert_failed_reproduction(exit_code, summary, "onnx", wrong)


# ---- tiled prediction --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def large(
    built: dict[str, tuple[Path, ModelDef]], tmp_path_factory: pytest.TempPathFactory
) -> LargePrediction:
    """A 2048x2048 input predicted whole and blockwise (batch sizes 1 and 4) by the CLI."""
    folder, _ = built["tiled"]
    work = tmp_path_factory.mktemp("large")
    image = np.random.default_rng(7).standard_normal((1, 1, 2048, 2048)).astype(np.float32)
    # blocks of 64 + 28 * 16 = 512 pixels (halo included): 5 x 5 blocks
    whole, tiled = predict_whole_and_tiled(
        folder / "rdf.yaml", image, work, axes="bcyx", blocksize=28
    )
    (direct,) = _run(folder / WEIGHTS_FILE, {"input": image})
    return LargePrediction(whole, direct, tiled)


def test_whole_image_prediction_is_the_onnxruntime_output(large: LargePrediction) -> None:
    assert large.whole.shape == (1, 2, 2048, 2048)
    np.testing.assert_allclose(large.whole, large.direct, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_blockwise_prediction_equals_whole_image(large: LargePrediction, batch_size: int) -> None:
    np.testing.assert_allclose(large.tiled[batch_size], large.whole, rtol=0, atol=1e-5)


def test_batch_size_4_equals_batch_size_1(large: LargePrediction) -> None:
    np.testing.assert_allclose(large.tiled[4], large.tiled[1], rtol=0, atol=1e-5)


# ---- blockwise prediction of the multi-tensor and the downsampling model ------------------------

@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("scaled", "0.5"),
        ("scaled", "0.4"),
        ("multi", "0.5"),
        ("multi", "0.4"),
    ],
)
def test_blockwise_prediction_of_other_models_equals_whole_image(
    built: dict[str, tuple[Path, ModelDef]], tmp_path: Path, name: str, version: Version
) -> None:
    folder, model = built[name]
    rng = np.random.default_rng(11)
    feed = {}
    for t in model.inputs:
        feed[t.id] = rng.uniform(size=(1, t.channels(), 400, 336)).astype(np.float32)
        (tmp_path / t.id).mkdir()
        np.save(tmp_path / t.id / "image.npy", feed[t.id])
    direct = _run(folder / WEIGHTS_FILE, {GRAPH_INPUTS[name][k]: v for k, v in feed.items()})

    def predict(label: str, *args: str) -> dict[str, np.ndarray[Any, Any]]:
        result = run_cli(
            "predict", description_path(folder, version),
            "--inputs", tmp_path / "{tensor_id}" / "image.npy",
            "--outputs", tmp_path / label / "{tensor_id}.npy", "--device", "cpu", "--quiet", *args,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        return {t.id: np.load(tmp_path / label / f"{t.id}.npy") for t in model.outputs}

    whole = predict("whole")
    for t, expected in zip(model.outputs, direct, strict=True):
        np.testing.assert_allclose(whole[t.id], expected, rtol=1e-5, atol=1e-5)
    # blocks of 32 + 2 * 16 = 64 pixels, halo included
    tiled = predict("tiled", "--blocksize", "2", "--batch-size", "4")
    for t in model.outputs:
        np.testing.assert_allclose(tiled[t.id], whole[t.id], rtol=0, atol=1e-5)


@pytest.mark.parametrize("version", VERSIONS)
def test_blockwise_prediction_of_a_batch_of_three(
    built: dict[str, tuple[Path, ModelDef]], tmp_path: Path, version: Version
) -> None:
    """Three images in one sample, predicted in blocks of 64 pixels four blocks at a time."""
    folder, _ = built["tiled"]
    image = np.random.default_rng(12).standard_normal((3, 1, 272, 208)).astype(np.float32)
    np.save(tmp_path / "image.npy", image)
    result = run_cli(
        "predict", description_path(folder, version), "--inputs", tmp_path / "image.npy",
        "--outputs", tmp_path / "out.npy", "--device", "cpu", "--quiet",
        "--blocksize", "0", "--batch-size", "4",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (expected,) = _run(folder / WEIGHTS_FILE, {"input": image})
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("halo", [4, 0])
def test_block_artifacts_show_a_too_small_halo(
    built: dict[str, tuple[Path, ModelDef]], tmp_path: Path, halo: int
) -> None:
    """The tiled model needs a halo of 2 (two 3x3 convolutions); described without, blockwise
    prediction differs from whole-image prediction and block-artifacts says so."""
    folder, model = built["tiled"]
    shutil.copy(folder / WEIGHTS_FILE, tmp_path / WEIGHTS_FILE)
    (out,) = model.outputs
    rdf = write_model(tmp_path, attrs.evolve(model, outputs=(attrs.evolve(out, halo=halo),)), "0.5")
    image = np.random.default_rng(13).standard_normal((1, 1, 256, 192)).astype(np.float32)
    np.save(tmp_path / "image.npy", image)
    result = run_cli(
        "block-artifacts", rdf, "--inputs", tmp_path / "image.npy", "--outputs", tmp_path / "diff",
        "--blocksize", "0", "--fail-above", "1e-5", "--device", "cpu", "--quiet",
    )  # fmt: skip
    (diff_file,) = (tmp_path / "diff").iterdir()
    diff = np.load(diff_file)
    assert diff.shape == (1, 2, 256, 192)
    if halo:
        assert result.exit_code == 0, result.output
        assert diff.max() <= 1e-5
    else:
        assert result.exit_code == 1, result.output
        # blocks of 64 pixels: the artifacts lie within the receptive field radius (2) of block
        # borders (y or x at 64, 128, ...)
        _, _, ys, xs = np.nonzero(diff > 1e-5)
        assert ys.size > 0
        near = np.isin(ys % 64, [0, 1, 62, 63]) | np.isin(xs % 64, [0, 1, 62, 63])
        assert near.all()


@pytest.mark.parametrize("per_input", [False, True])
def test_predict_axes_option_with_several_inputs(
    built: dict[str, tuple[Path, ModelDef]], tmp_path: Path, per_input: bool
) -> None:
    folder, model = built["multi"]
    axes = ",".join(f"{t.id}=cyx" for t in model.inputs) if per_input else "cyx"
    for t in model.inputs:  # channel-first arrays without batch axis: the axes must be given
        (tmp_path / t.id).mkdir()
        np.save(tmp_path / t.id / "image.npy", t.test[0])
    result = run_cli(
        "predict", folder / "rdf.yaml", "--inputs", tmp_path / "{tensor_id}" / "image.npy",
        "--outputs", tmp_path / "out" / "{tensor_id}.npy", "--axes", axes, "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for t in model.outputs:
        np.testing.assert_allclose(np.load(tmp_path / "out" / f"{t.id}.npy"), t.test, atol=1e-5)


# ---- published and bundled models -------------------------------------------------------------


def test_bundled_example_model() -> None:
    exit_code, summary = run_test(EXAMPLE, "--weights-format", "onnx")
    assert_passed(exit_code, summary, ["onnx"], 1)


@pytest.mark.skipif(
    not (UNET_DIR / "bioimageio.yaml").is_file(),
    reason=f"conformance data not found at {UNET_DIR} (../shared next to the project root)",
)
@pytest.mark.parametrize(
    "description", ["bioimageio.yaml", "v0_4_0.bioimageio.yaml", "v0_4_9.bioimageio.yaml"]
)
def test_unet2d_nuclei_broad_onnx(description: str) -> None:
    exit_code, summary = run_test(UNET_DIR / description, "--weights-format", "onnx")
    assert_passed(exit_code, summary, ["onnx"], 1)
