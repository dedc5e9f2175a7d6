"""Helpers for the onnx plugin tests: tiny ONNX graphs, 0.5 descriptions and adapter requests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from bioimageio_core.plugin import AdapterRequest, OnnxWeightsDescr, Settings
from bioimageio_core.plugin.testing import (
    ModelDef,
    WeightsDef,
    build_model,
    file_entry,
    model_description,
)
from bioimageio_core.plugin.testing import (
    make_request as core_make_request,
)

OPSET = 17


def describe(
    root: Path,
    inputs: Mapping[str, np.ndarray[Any, Any]],
    outputs: Mapping[str, np.ndarray[Any, Any]],
    weights: Mapping[str, WeightsDef],
) -> dict[str, Any]:
    """A raw 0.5 description of test arrays by tensor id (axes batch, channel, y, x); test
    tensors are written to ``root``."""
    model = ModelDef.from_arrays(
        "tiny test model", inputs, outputs, list(weights.values()), letters="bcyx"
    )
    return model_description(root, model)


def onnx_entry(root: Path, model_file: str, external_data: str | None = None) -> WeightsDef:
    fields: dict[str, Any] = {"opset_version": OPSET}
    if external_data is not None:
        fields["external_data"] = file_entry(root, external_data)
    return WeightsDef("onnx", model_file, fields)


def make_request(
    root: Path,
    raw: dict[str, Any],
    *,
    devices: Sequence[str] | None = ("cpu",),
    settings: Settings | None = None,
) -> AdapterRequest[OnnxWeightsDescr]:
    return core_make_request(
        build_model(raw, root),
        "onnx",
        devices,
        settings=settings or Settings(cache_path=root / "cache"),
    )


# --- graphs -------------------------------------------------------------------------------------


def _model(
    nodes: list[Any], inputs: list[Any], outputs: list[Any], inits: list[Any]
) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def conv_model(
    weight: np.ndarray[Any, Any],
    bias: np.ndarray[Any, Any],
    *,
    name_in: str = "input",
    name_out: str = "output",
) -> onnx.ModelProto:
    """3x3 'same' convolution; dynamic batch and spatial sizes."""
    cout, cin = weight.shape[:2]
    return _model(
        [helper.make_node("Conv", [name_in, "W", "B"], [name_out], pads=[1, 1, 1, 1])],
        [helper.make_tensor_value_info(name_in, TensorProto.FLOAT, ["n", cin, "h", "w"])],
        [helper.make_tensor_value_info(name_out, TensorProto.FLOAT, ["n", cout, "h", "w"])],
        [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "B")],
    )


def two_in_two_out_model(names_in: Sequence[str], names_out: Sequence[str]) -> onnx.ModelProto:
    """outputs[0] = a + b, outputs[1] = a * b - a (graph declares inputs a, b in this order)."""
    a, b = names_in
    s, p = names_out
    shape = ["n", 1, "h", "w"]
    return _model(
        [
            helper.make_node("Add", [a, b], [s]),
            helper.make_node("Mul", [a, b], ["ab"]),
            helper.make_node("Sub", ["ab", a], [p]),
        ],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in (a, b)],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in (s, p)],
        [],
    )


def pool_model() -> onnx.ModelProto:
    """2x2 max pooling with stride 2: the output is half the input's size."""
    return _model(
        [helper.make_node("MaxPool", ["input"], ["output"], kernel_shape=[2, 2], strides=[2, 2])],
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", 1, "h2", "w2"])],
        [],
    )


def uint8_scale_model(scale: float) -> onnx.ModelProto:
    """Cast a uint8 input to float and multiply by ``scale``."""
    return _model(
        [
            helper.make_node("Cast", ["input"], ["f"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["f", "scale"], ["output"]),
        ],
        [helper.make_tensor_value_info("input", TensorProto.UINT8, ["n", 1, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        [numpy_helper.from_array(np.array(scale, dtype=np.float32), "scale")],
    )


def conv_numpy(
    x: np.ndarray[Any, Any], weight: np.ndarray[Any, Any], bias: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """Reference 3x3 'same' cross-correlation (what ONNX Conv computes), in float64."""
    n, _, h, w = x.shape
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, weight.shape[0], h, w))
    for dy in range(3):
        for dx in range(3):
            window = padded[:, :, dy : dy + h, dx : dx + w]
            out += np.einsum("nchw,oc->nohw", window, weight[:, :, dy, dx].astype(np.float64))
    return out + bias.astype(np.float64)[None, :, None, None]
