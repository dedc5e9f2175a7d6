"""Small ``numpy_conv`` models for the pipeline tests, and an independent numpy oracle."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import yaml
from descriptions import described

from bioimageio_core import plugins
from bioimageio_core.sources import FolderRoot
from bioimageio_core.spec import ModelDescr, build_description

Array = np.ndarray[Any, Any]


def kernel(radius: int, seed: int = 0) -> Array:
    """A fixed random (2r+1)x(2r+1) kernel, normalised to sum 1."""
    k = np.random.default_rng(seed).uniform(0.1, 1.0, size=(2 * radius + 1, 2 * radius + 1))
    return np.asarray(k / k.sum(), dtype=np.float32)


@attrs.frozen
class OutputDef:
    """Output ``k``: ``kernel`` on input ``input_index``, then ``downscale`` pooling, plus ``bias``."""

    id: str
    kernel: Array = attrs.field(eq=False)
    input_index: int = 0
    downscale: int = 1
    bias: float = 0.0
    halo: int | None = None
    """Output halo in output pixels (default: enough for the kernel radius)."""
    zeros: bool = False
    """The model pads with zeros at its input's border (most CNNs) instead of reflecting."""
    postprocessing: Sequence[Mapping[str, Any]] = ()


@attrs.frozen
class InputDef:
    id: str
    channels: int = 1
    y: Any = attrs.Factory(lambda: {"min": 64, "step": 16})
    x: Any = attrs.Factory(lambda: {"min": 64, "step": 16})
    batch: int | None = None
    preprocessing: Sequence[Mapping[str, Any]] = ()
    optional: bool = False
    pad: Mapping[str, Any] | None = None
    """``inputs[i].pad`` as written in the description (None: not given)."""
    output_of: str | None = None
    """``inputs[i].output_of``: the model whose output feeds this input."""


def raw_model(inputs: Sequence[InputDef], outputs: Sequence[OutputDef]) -> dict[str, Any]:
    """The raw 0.5 description (weights file ``weights.npz``)."""
    raw_inputs = []
    for i in inputs:
        entry: dict[str, Any] = {
            "id": i.id,
            "axes": [
                {"type": "batch", **({"size": i.batch} if i.batch is not None else {})},
                {"type": "channel", "channel_names": [f"c{c}" for c in range(i.channels)]},
                {"type": "space", "id": "y", "size": i.y},
                {"type": "space", "id": "x", "size": i.x},
            ],
        }
        if i.preprocessing:
            entry["preprocessing"] = [dict(p) for p in i.preprocessing]
        if i.optional:
            entry["optional"] = True
        if i.pad is not None:
            entry["pad"] = dict(i.pad)
        if i.output_of is not None:
            entry["output_of"] = i.output_of
        raw_inputs.append(entry)
    raw_outputs = []
    for o in outputs:
        source = inputs[o.input_index]
        radius = o.kernel.shape[0] // 2
        halo = o.halo if o.halo is not None else math.ceil(radius / o.downscale)
        spatial = [
            {
                "type": "space",
                "id": a,
                "size": {"tensor_id": source.id, "axis_id": a},
                "scale": float(o.downscale),
                **({"halo": halo} if halo else {}),
            }
            for a in ("y", "x")
        ]
        entry = {
            "id": o.id,
            "axes": [
                {"type": "batch"},
                {"type": "channel", "channel_names": [f"c{c}" for c in range(source.channels)]},
                *spatial,
            ],
        }
        if o.postprocessing:
            entry["postprocessing"] = [dict(p) for p in o.postprocessing]
        raw_outputs.append(entry)
    return {
        **described(
            "0.5.4",
            "numpy convolution test model",
            description="a fixed convolution for pipeline tests",
        ),
        "inputs": raw_inputs,
        "outputs": raw_outputs,
        "weights": {"numpy_conv": {"source": "weights.npz"}},
    }


def write_weights(folder: Path, inputs: Sequence[InputDef], outputs: Sequence[OutputDef]) -> None:
    arrays: dict[str, Any] = {}
    for k, o in enumerate(outputs):
        arrays[f"kernel_{k}"] = o.kernel
        arrays[f"input_{k}"] = np.int64(o.input_index)
        arrays[f"downscale_{k}"] = np.int64(o.downscale)
        arrays[f"bias_{k}"] = np.float64(o.bias)
        arrays[f"zeros_{k}"] = np.bool_(o.zeros)
    np.savez(folder / "weights.npz", **arrays)


def conv_model(
    folder: Path,
    inputs: Sequence[InputDef] = (InputDef("raw"),),
    outputs: Sequence[OutputDef] | None = None,
    raw_changes: Mapping[str, Any] | None = None,
) -> ModelDescr:
    """Write ``rdf.yaml`` + ``weights.npz`` into ``folder`` and return the built description."""
    if outputs is None:
        outputs = (OutputDef("out", kernel(2)),)
    write_weights(folder, inputs, outputs)
    raw = raw_model(inputs, outputs)
    raw.update(raw_changes or {})
    (folder / "rdf.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    result = build_description(raw, extensions=plugins.spec_extensions())
    assert result.descr is not None, result.issues
    descr = attrs.evolve(result.descr, root=FolderRoot(folder))
    assert isinstance(descr, ModelDescr)
    return descr


# --- oracle -------------------------------------------------------------------------------------


def reflect_index(positions: Array, n: int) -> Array:
    """numpy 'reflect' (edge not repeated) index mapping for positions outside [0, n)."""
    period = 2 * (n - 1) if n > 1 else 1
    p = np.mod(positions, period)
    return np.where(p < n, p, period - p)


def oracle_conv(
    x: Array, k: Array, downscale: int = 1, bias: float = 0.0, zeros: bool = False
) -> Array:
    """Reflect- (or zero-) padded 'same' correlation of the last two axes, via gathered windows."""
    r = k.shape[0] // 2
    h, w = x.shape[-2:]
    iy = reflect_index(np.arange(-r, h + r), h)
    ix = reflect_index(np.arange(-r, w + r), w)
    padded = x.astype(np.float64)[..., iy[:, None], ix[None, :]]
    if zeros and r:
        padded[..., :r, :] = padded[..., -r:, :] = 0.0
        padded[..., :, :r] = padded[..., :, -r:] = 0.0
    windows = np.lib.stride_tricks.sliding_window_view(padded, k.shape, axis=(-2, -1))
    out = np.einsum("...ij,ij->...", windows, k.astype(np.float64)) + bias
    if downscale > 1:
        out = out.reshape(*out.shape[:-2], h // downscale, downscale, w // downscale, downscale)
        out = out.mean(axis=(-3, -1))
    return np.asarray(out)
