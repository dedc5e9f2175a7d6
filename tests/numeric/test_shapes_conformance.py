"""Size resolution on published descriptions (read through the descriptor layer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
import yaml

from bioimageio_core.blocks import (
    block_data,
    map_output_blocks,
    model_sample_blocks,
    write_block,
)
from bioimageio_core.shapes import (
    ModelShape,
    block_halos,
    block_shape,
    model_shape,
    output_sizes,
)

CONFORMANCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "conformance"
NUCLEI = CONFORMANCE / "models" / "unet2d_nuclei_broad" / "bioimageio.yaml"
SHARK = CONFORMANCE / "rdfs" / "bioimage-io__collection" / "affable-shark__v0.yaml"


def _spec(path: Path) -> ModelShape:
    if not path.exists():
        pytest.skip(f"conformance data not found at {path}")
    build = pytest.importorskip("bioimageio_core.spec").build_description
    result = build(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert result.descr is not None, result.issues
    return model_shape(result.descr)


def _identity_blockwise(
    model: ModelShape, data: np.ndarray[Any, Any], ns: int
) -> np.ndarray[Any, Any]:
    t_in, t_out = model.inputs[0], model.outputs[0]
    sizes = {(t_in.id, a): s for a, s in zip(t_in.axis_ids, data.shape, strict=True)}
    shape = block_shape(model, sizes, ns)
    out_sizes = output_sizes(model, sizes)
    target = np.full(tuple(out_sizes[(t_out.id, a)] or 0 for a in t_out.axis_ids), np.nan)
    sample_shape = {t_in.id: dict(zip(t_in.axis_ids, data.shape, strict=True))}
    for block in model_sample_blocks(model, sample_shape, shape):
        result = block_data(data, block.members[t_in.id])
        write_block(target, map_output_blocks(model, block, out_sizes)[t_out.id], result)
    return target


def test_nuclei_broad_tiles_with_its_fixed_size_and_halo() -> None:
    model = _spec(NUCLEI)
    assert block_halos(model) == {("raw", "y"): 32, ("raw", "x"): 32}
    sizes = {("raw", "batch"): 1, ("raw", "channel"): 1, ("raw", "y"): 700, ("raw", "x"): 300}
    assert block_shape(model, sizes) == {
        ("raw", "batch"): 1,
        ("raw", "channel"): 1,
        ("raw", "y"): 512,
        ("raw", "x"): 512,
    }
    data = np.random.default_rng(0).normal(size=(1, 1, 700, 300)).astype(np.float32)
    np.testing.assert_array_equal(_identity_blockwise(model, data, 10), data)


def test_affable_shark_parameterized_sizes() -> None:
    model = _spec(SHARK)
    assert block_halos(model) == {("input0", "y"): 16, ("input0", "x"): 16}
    sizes = {
        ("input0", "batch"): 2,
        ("input0", "channel"): 1,
        ("input0", "y"): 100,
        ("input0", "x"): 90,
    }
    shape = block_shape(model, sizes, ns=1)
    assert shape[("input0", "y")] == 80 and shape[("input0", "x")] == 80
    assert output_sizes(model, sizes)[("output0", "channel")] == 2
    data = np.random.default_rng(1).normal(size=(2, 1, 100, 90))
    # identity "model": the output's channel axis taken from the input
    out = model.outputs[0]
    one_channel = attrs.evolve(out, axes=(out.axes[0], model.inputs[0].axes[1], *out.axes[2:]))
    model_1ch = attrs.evolve(model, outputs=(one_channel,))
    np.testing.assert_array_equal(_identity_blockwise(model_1ch, data, 1), data)
