"""End to end: the conformance battery on ONNX models built here, the bundled example model and
the published unet2d_nuclei_broad model.

The graphs (weights from fixed seeds) are built with ``onnx.helper``; their test outputs come from
onnxruntime run directly (and, for the tiled model, from a numpy convolution). Graph inputs are
named unlike the tensor ids, so the adapter matches them by position.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_testing import OPSET, conv_numpy

import bioimageio_core.plugin.testing as kit
from bioimageio_core.plugin.testing import ModelDef, WeightsDef

PROJECT_ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = PROJECT_ROOT / "examples" / "tiny-nuclei-unet" / "rdf.yaml"
WEIGHTS_FILE = "weights.onnx"
RNG = np.random.default_rng(2025)


@attrs.frozen
class Graph:
    """An ONNX file and the graph input and output names of the tensor ids."""

    path: Path
    inputs: Mapping[str, str]
    outputs: Mapping[str, str]


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
    return (WeightsDef("onnx", WEIGHTS_FILE, {"opset_version": OPSET}),)


def _tiled(folder: Path) -> tuple[ModelDef, Graph]:
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
    return kit.tiled_model("bcyx", raw, out, _weights()), Graph(path, {"raw": "input"}, {"out": "output"})


def _tiled_numpy(x: np.ndarray[Any, Any], folder: Path) -> np.ndarray[Any, Any]:
    """The tiled model's output computed with numpy from the graph's initializers."""
    inits = {
        i.name: numpy_helper.to_array(i) for i in onnx.load(folder / WEIGHTS_FILE).graph.initializer
    }
    hidden = np.maximum(conv_numpy(x, inits["W1"], inits["B1"]), 0)
    return conv_numpy(hidden, inits["W2"], inits["B2"])


def _multi(folder: Path) -> tuple[ModelDef, Graph]:
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
    model = kit.multi_model("bcyx", raw, mask, features, pooled, _weights())
    return model, Graph(
        path, {"raw": "raw_in", "mask": "mask_in"}, {"features": "features_out", "pooled": "pooled_out"}
    )


def _scaled(folder: Path) -> tuple[ModelDef, Graph]:
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
    return kit.scaled_model("bcyx", raw, out, _weights()), Graph(path, {"raw": "input"}, {"down": "output"})


BUILDERS: dict[str, Callable[[Path], tuple[ModelDef, Graph]]] = {
    "tiled": _tiled,
    "multi": _multi,
    "scaled": _scaled,
}


class TestOnnxBackend(kit.BackendConformance[Graph]):
    """The conformance battery (``bioimageio_core.plugin.testing``) for the onnx plugin."""

    distribution = "bioimageio-run-onnx"
    framework_modules = ("onnxruntime", "onnx")
    weights_formats = ("onnx",)

    def build(self, name: str, folder: Path) -> tuple[ModelDef, Graph]:
        return BUILDERS[name](folder)

    def run_directly(self, network: Graph, inputs: kit.Arrays) -> kit.Arrays:
        session = ort.InferenceSession(str(network.path), providers=["CPUExecutionProvider"])
        names = list(network.outputs.values())
        outputs = session.run(names, {network.inputs[k]: v for k, v in inputs.items()})
        return {tid: np.asarray(o) for tid, o in zip(network.outputs, outputs, strict=True)}

    def test_tiled_model_test_output_matches_numpy(self, built: dict[str, kit.Built[Graph]]) -> None:
        tiled = built["tiled"]
        (raw,), (out,) = tiled.model.inputs, tiled.model.outputs
        assert raw.test is not None and out.test is not None
        np.testing.assert_allclose(
            out.test, _tiled_numpy(raw.test, tiled.folder), rtol=1e-5, atol=1e-5
        )


# ---- each test has a cache of its own -----------------------------------------------------------


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOIMAGEIO_CACHE_PATH", str(tmp_path / "cache"))


# ---- the bundled example and a published model ------------------------------------------------


def test_bundled_example_model() -> None:
    exit_code, summary = kit.run_test(EXAMPLE, "--weights-format", "onnx")
    kit.assert_passed(exit_code, summary, ["onnx"], 1)


def test_unet2d_nuclei_broad_onnx(unet2d_nuclei_broad_description: Path) -> None:
    description = unet2d_nuclei_broad_description
    exit_code, summary = kit.run_test(description, "--weights-format", "onnx")
    kit.assert_passed(exit_code, summary, ["onnx"], 1)
