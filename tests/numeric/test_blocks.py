from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import ConvCase, axis_split_cases, conv_cases, identity_cases, pad_modes

from bioimageio_core import shapes
from bioimageio_core.blocks import (
    AxisBlock,
    Block,
    BorderMode,
    allocate_outputs,
    batched,
    block_data,
    count_blocks,
    map_output_blocks,
    model_sample_blocks,
    padded_sample_block,
    sample_block_data,
    sample_grid,
    split_axis,
    split_sample_shape,
    write_block,
    write_blocks,
)
from bioimageio_core.tensor import Tensor


@settings(max_examples=200, deadline=None)
@given(case=axis_split_cases(), border=st.sampled_from(["inside", "pad"]))
def test_split_axis_tiles_the_axis_with_one_block_shape(
    case: tuple[int, int, int], border: BorderMode
) -> None:
    size, block, halo = case
    blocks = split_axis(size, block, halo, border=border)
    covered = [i for b in blocks for i in range(*b.inner)]
    assert covered == list(range(size))  # inner regions tile the axis, no overlap, in order
    for b in blocks:
        assert b.size == block
        lo, hi = b.local_inner
        if border == "pad" or size < block:
            # every inner pixel has at least `halo` pixels of context (sample or padding) each side
            assert lo >= halo and hi <= block - halo
        else:
            # inside the sample; less context only where the inner region touches the sample edge
            assert b.padding == (0, 0) and 0 <= b.origin <= size - block
            assert lo >= halo or b.inner[0] - lo == 0
            assert hi <= block - halo or b.inner[1] + (block - hi) == size
        # padding only beyond the sample edge
        assert (b.padding[0] == 0 or b.outer[0] == 0) and (b.padding[1] == 0 or b.outer[1] == size)
    if border == "pad" and size > block - 2 * halo:
        assert blocks[-1].origin + block == size + halo  # last block shifted back to the edge
    for b in blocks:  # padding is exactly the part of the block beyond the sample
        assert b.padding == (max(0, -b.origin), max(0, b.origin + block - size))


def test_split_axis_examples() -> None:
    assert split_axis(10, 6, 1, border="pad") == [
        AxisBlock((0, 4), (0, 5), (1, 0)),
        AxisBlock((4, 8), (3, 9), (0, 0)),
        AxisBlock((8, 10), (5, 10), (0, 1)),
    ]
    # blocks inside the sample: the border blocks see the sample edge instead of padding
    assert split_axis(10, 6, 1) == [
        AxisBlock((0, 4), (0, 6), (0, 0)),
        AxisBlock((4, 8), (3, 9), (0, 0)),
        AxisBlock((8, 10), (4, 10), (0, 0)),
    ]
    # smaller than a block: one block, padded up to the block shape
    assert split_axis(3, 8, 2) == [AxisBlock((0, 3), (0, 3), (2, 3))]
    with pytest.raises(shapes.ShapeError, match="no inner region"):
        split_axis(10, 4, 2)
    with pytest.raises(shapes.ShapeError, match="cannot be split"):
        split_axis(10, 4, 0, splittable=False)


@settings(max_examples=60, deadline=None)
@given(case=axis_split_cases(), extra=st.integers(1, 3), mode=pad_modes, seed=st.integers(0, 99))
def test_block_data_equals_padding_the_whole_sample(
    case: tuple[int, int, int], extra: int, mode: Any, seed: int
) -> None:
    size, block, halo = case
    data = np.random.default_rng(seed).normal(size=(extra, size))
    blocks = split_axis(size, block, halo)
    left = max(b.padding[0] for b in blocks)
    right = max(b.padding[1] for b in blocks)
    if mode == "constant":
        whole = np.pad(data, [(0, 0), (left, right)], mode="constant")
    else:
        whole = np.pad(data, [(0, 0), (left, right)], mode=mode)
    for b in blocks:
        got = block_data(Tensor(data, "cx"), Block(("c", "x"), (AxisBlock.whole(extra), b)), mode)
        np.testing.assert_array_equal(got, whole[:, b.origin + left : b.origin + left + block])


@settings(max_examples=60, deadline=None)
@given(case=identity_cases())
def test_identity_model_reproduces_the_input(
    case: tuple[shapes.ModelShape, dict[str, np.ndarray[Any, Any]], dict[tuple[str, str], int]],
) -> None:
    model, data, shape = case
    sample_shape = {
        t.id: dict(zip(t.axis_ids, data[t.id].shape, strict=True)) for t in model.inputs
    }
    sizes = {(t, a): s for t, axes in sample_shape.items() for a, s in axes.items()}
    out_sizes = shapes.output_sizes(model, sizes)
    outputs = allocate_outputs(out_sizes, model, np.float64, lambda s, d: np.full(s, np.nan, d))
    n = 0
    for block in model_sample_blocks(model, sample_shape, shape):
        n += 1
        out_blocks = map_output_blocks(model, block, out_sizes)
        inputs = sample_block_data(data, block)
        # the "model": identity
        results = {f"out{i}": inputs[t.id] for i, t in enumerate(model.inputs)}
        write_blocks(outputs, out_blocks, results)
    assert n == count_blocks(sample_shape, shape, shapes.block_halos(model))
    for i, t in enumerate(model.inputs):
        np.testing.assert_array_equal(outputs[f"out{i}"], data[t.id])


def _predict_blockwise(
    case: ConvCase,
    target: Any,
    batch_size: int = 1,
    border: BorderMode = "inside",
    model_border: str = "mirror",
) -> None:
    model = case.model
    sample_shape = {"raw": dict(zip(case.input_dims, case.data.shape, strict=True))}
    sizes = {("raw", a): s for a, s in sample_shape["raw"].items()}
    shape = shapes.block_shape(model, sizes, case.ns, batch_size=case.block_batch)
    out_sizes = shapes.output_sizes(model, sizes)
    shapes_seen = set()
    blocks = model_sample_blocks(model, sample_shape, shape, border=border)
    for batch in batched(blocks, batch_size):
        inputs = np.concatenate([block_data(case.data, b.members["raw"]) for b in batch])
        shapes_seen.add(inputs.shape[1:])
        results = np.split(case.run(inputs, model_border), len(batch))
        for b, result in zip(batch, results, strict=True):
            write_block(target, map_output_blocks(model, b, out_sizes)["out"], result)
    assert len(shapes_seen) == 1  # one block shape for the whole sample


@settings(max_examples=60, deadline=None)
@given(case=st.one_of(conv_cases(), conv_cases(grow=True)), batch_size=st.integers(1, 3))
def test_blockwise_equals_whole_image_for_a_model_that_respects_its_halo(
    case: ConvCase, batch_size: int
) -> None:
    expected = case.run(case.data)
    sizes = {("raw", a): s for a, s in zip(case.input_dims, case.data.shape, strict=True)}
    out_sizes = shapes.output_sizes(case.model, sizes)
    assert expected.shape == tuple(out_sizes[("out", a)] for a in case.input_dims)
    target = np.full(expected.shape, np.nan)
    _predict_blockwise(case, target, batch_size)
    np.testing.assert_allclose(target, expected, rtol=1e-6, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(case=conv_cases(), batch_size=st.integers(1, 3), border=st.sampled_from(["inside", "pad"]))
def test_blocks_inside_the_sample_match_models_that_zero_pad(
    case: ConvCase, batch_size: int, border: BorderMode
) -> None:
    # most networks zero-pad their convolutions: only blocks that stay inside the sample see the
    # sample border where the whole-sample prediction sees it (a sample smaller than one block
    # must be padded, so it cannot)
    sizes = {("raw", a): s for a, s in zip(case.input_dims, case.data.shape, strict=True)}
    shape = shapes.block_shape(case.model, sizes, case.ns, batch_size=case.block_batch)
    assume(all(sizes[k] >= shape.get(k, sizes[k]) for k in sizes))
    expected = case.run(case.data, "constant")
    target = np.full(expected.shape, np.nan)
    _predict_blockwise(case, target, batch_size, border=border, model_border="constant")
    if border == "inside":
        np.testing.assert_allclose(target, expected, rtol=1e-6, atol=1e-6)
    else:  # reflect padding at the border: the same inside, different along the border
        assert not np.isnan(target).any()


@settings(max_examples=5, deadline=None)
@given(case=conv_cases())
def test_blockwise_writes_into_a_memmap_and_a_zarr_array(case: ConvCase) -> None:
    zarr = pytest.importorskip("zarr")
    with tempfile.TemporaryDirectory() as folder:
        _check_memmap_and_zarr(case, Path(folder), zarr)


def _check_memmap_and_zarr(case: ConvCase, tmp_path: Path, zarr: Any) -> None:
    expected = case.run(case.data)
    memmap = np.lib.format.open_memmap(
        tmp_path / "out.npy", mode="w+", dtype=np.float64, shape=expected.shape
    )
    _predict_blockwise(case, memmap)
    memmap.flush()
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=1e-6, atol=1e-6)
    z = zarr.zeros(shape=expected.shape, dtype="float64", store=str(tmp_path / "out.zarr"))
    _predict_blockwise(case, z)
    np.testing.assert_allclose(z[...], expected, rtol=1e-6, atol=1e-6)


def _valid_conv_model(radius: int) -> shapes.ModelShape:
    return shapes.ModelShape(
        inputs=[
            shapes.TensorShape(
                "raw", [shapes.AxisShape("x", "space", shapes.ParameterizedSize(8, 4))]
            )
        ],
        outputs=[
            shapes.TensorShape(
                "out",
                [shapes.AxisShape("x", "space", shapes.SizeReference("raw", "x", -2 * radius))],
            )
        ],
    )


def test_valid_convolution_with_negative_offset_tiles_exactly() -> None:
    radius, kernel = 2, np.arange(1.0, 6.0)
    model = _valid_conv_model(radius)
    assert shapes.block_halos(model) == {("raw", "x"): radius}
    data = np.random.default_rng(0).normal(size=37)
    expected = np.correlate(data, kernel, "valid")
    out_sizes = shapes.output_sizes(model, {("raw", "x"): 37})
    assert out_sizes == {("out", "x"): expected.size}
    target = np.full(expected.shape, np.nan)
    shape = shapes.block_shape(model, {("raw", "x"): 37}, ns=1)
    assert shape == {("raw", "x"): 12}
    blocks = list(model_sample_blocks(model, {"raw": {"x": 37}}, shape))
    assert len(blocks) > 1
    for b in blocks:
        result = np.correlate(block_data(data, b.members["raw"]), kernel, "valid")
        write_block(target, map_output_blocks(model, b, out_sizes)["out"], result)
    np.testing.assert_allclose(target, expected, rtol=1e-12)


def test_padded_sample_block_pads_to_a_valid_size_and_crops_back() -> None:
    model = _valid_conv_model(0)
    data = np.arange(10.0)
    block = padded_sample_block(model, {"raw": {"x": 10}})
    padded = block_data(data, block.members["raw"])
    assert padded.shape == (12,)  # 8 + n*4 >= 10
    np.testing.assert_array_equal(padded, np.pad(data, (0, 2), mode="reflect"))
    out_sizes = shapes.output_sizes(model, {("raw", "x"): 10})
    target = np.zeros(10)
    write_block(target, map_output_blocks(model, block, out_sizes)["out"], padded * 2)
    np.testing.assert_array_equal(target, data * 2)


def test_write_block_rejects_output_of_the_wrong_shape() -> None:
    model = _valid_conv_model(0)
    block = next(model_sample_blocks(model, {"raw": {"x": 30}}, {("raw", "x"): 8}))
    out = map_output_blocks(model, block, {("out", "x"): 30})["out"]
    with pytest.raises(shapes.ShapeError, match=r"x: 7 \(expected 8\)"):
        write_block(np.zeros(30), out, np.zeros(7))


def test_non_integral_output_positions_are_a_clear_error() -> None:
    model = shapes.ModelShape(
        inputs=[
            shapes.TensorShape(
                "raw", [shapes.AxisShape("x", "space", shapes.ParameterizedSize(2, 2))]
            )
        ],
        outputs=[
            shapes.TensorShape(
                "out", [shapes.AxisShape("x", "space", shapes.SizeReference("raw", "x"), scale=2.0)]
            )
        ],
    )
    blocks = model_sample_blocks(model, {"raw": {"x": 9}}, {("raw", "x"): 4})
    out_sizes = shapes.output_sizes(model, {("raw", "x"): 9})
    with pytest.raises(shapes.ShapeError, match="not a whole pixel"):
        for b in blocks:
            map_output_blocks(model, b, out_sizes)


def test_unsplittable_and_unreferenced_axes_are_whole() -> None:
    model = shapes.ModelShape(
        inputs=[
            shapes.TensorShape(
                "raw",
                [
                    shapes.AxisShape("channel", "channel", shapes.FixedSize(3)),
                    shapes.AxisShape("x", "space", shapes.FixedSize(4)),
                ],
            )
        ],
        outputs=[
            shapes.TensorShape(
                "out",
                [
                    shapes.AxisShape(
                        "channel", "channel", shapes.SizeReference("raw", "channel", 2)
                    ),
                    shapes.AxisShape("index", "index", None),
                    shapes.AxisShape("x", "space", shapes.SizeReference("raw", "x")),
                ],
            )
        ],
    )
    blocks = list(model_sample_blocks(model, {"raw": {"channel": 3, "x": 10}}, {("raw", "x"): 4}))
    assert len(blocks) == 3
    for b in blocks:
        assert b.members["raw"]["channel"] == AxisBlock.whole(3)
        out = map_output_blocks(
            model, b, {("out", "channel"): 5, ("out", "index"): 7, ("out", "x"): 10}
        )
        assert out["out"]["channel"] == AxisBlock.whole(5)
        assert out["out"]["index"] == AxisBlock.whole(7)
    # checked when called, before any block is made, naming the tensor and axis
    with pytest.raises(shapes.ShapeError, match="'raw' axis 'channel'.*cannot be split"):
        model_sample_blocks(model, {"raw": {"channel": 3, "x": 10}}, {("raw", "channel"): 1})


def test_split_is_lazy_and_members_share_one_grid() -> None:
    huge = {"a": {"y": 10**6, "x": 10**6}, "b": {"x": 10**6, "c": 2}}
    shape = {("a", "y"): 10, ("a", "x"): 10, ("b", "x"): 10}
    first = list(itertools.islice(split_sample_shape(huge, shape), 3))
    assert [b.index for b in first] == [0, 1, 2]
    assert [b.members["a"]["x"].inner for b in first] == [(0, 10), (10, 20), (20, 30)]
    assert [b.members["b"]["x"].inner for b in first] == [(0, 10), (10, 20), (20, 30)]
    assert count_blocks(huge, shape) == 10**10
    with pytest.raises(shapes.ShapeError, match="cut into"):
        list(split_sample_shape({"a": {"x": 20}, "b": {"x": 30}}, {("a", "x"): 10, ("b", "x"): 10}))


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.tuples(st.integers(1, 40), st.integers(1, 40), st.integers(1, 3)),
    blocks=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    halo=st.integers(0, 2),
    border=st.sampled_from(["inside", "pad"]),
)
def test_sample_grid_indexes_the_blocks_it_iterates(
    sizes: tuple[int, int, int], blocks: tuple[int, int], halo: int, border: BorderMode
) -> None:
    y, x, c = sizes
    shape = {"a": {"y": y, "x": x}, "b": {"x": x, "c": c}}
    bs = {("a", "y"): blocks[0] + 2 * halo, ("a", "x"): blocks[1] + 2 * halo}
    bs[("b", "x")] = bs[("a", "x")]
    halos = {("a", "y"): halo, ("a", "x"): halo, ("b", "x"): halo}
    grid = sample_grid(shape, bs, halos, border=border)
    iterated = list(grid)
    assert len(grid) == len(iterated) == count_blocks(shape, bs, halos)
    assert [b.index for b in iterated] == list(range(len(grid)))
    for i, block in enumerate(iterated):  # random access gives the block iteration gives
        assert grid[i].members == block.members
        at = grid.position(i)
        assert all(0 <= at[a] < n for a, n in grid.grid.items())
    with pytest.raises(IndexError):
        grid[len(grid)]
    # inner regions of one member tile it exactly once
    covered = np.zeros((y, x), dtype=int)
    for block in iterated:
        covered[block.members["a"].inner_slices] += 1
    assert (covered == 1).all()


def test_batched_groups_consecutive_equal_shapes() -> None:
    items = [np.zeros(s) for s in (2, 2, 2, 3, 3, 2, 2, 2, 2)]
    groups = list(batched(items, 2))
    assert [[i.shape for i in g] for g in groups] == [
        [(2,), (2,)],
        [(2,)],
        [(3,), (3,)],
        [(2,), (2,)],
        [(2,), (2,)],
    ]
    endless = (np.zeros(1) for _ in itertools.count())
    assert len(next(batched(endless, 4))) == 4
    with pytest.raises(ValueError, match="batch_size"):
        next(batched(items, 0))


def test_an_input_referencing_another_is_cut_on_the_same_grid() -> None:
    from scipy import ndimage

    model = shapes.ModelShape(
        inputs=[
            shapes.TensorShape(
                "raw", [shapes.AxisShape("x", "space", shapes.ParameterizedSize(8, 2))]
            ),
            shapes.TensorShape(
                "mask", [shapes.AxisShape("x", "space", shapes.SizeReference("raw", "x"))]
            ),
        ],
        outputs=[
            shapes.TensorShape(
                "out", [shapes.AxisShape("x", "space", shapes.SizeReference("raw", "x"), halo=2)]
            )
        ],
    )
    kernel = np.array([1.0, -2.0, 3.0, 0.5, 1.5])
    rng = np.random.default_rng(1)
    raw, mask = rng.normal(size=41), rng.normal(size=41)

    def run(r: np.ndarray[Any, Any], m: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return ndimage.correlate1d(r * m, kernel, mode="mirror")  # type: ignore[no-any-return]

    assert shapes.block_halos(model) == {("raw", "x"): 2, ("mask", "x"): 2}
    shape = shapes.block_shape(model, {("raw", "x"): 41, ("mask", "x"): 41}, ns=1)
    assert shape == {("raw", "x"): 10, ("mask", "x"): 10}
    out_sizes = shapes.output_sizes(model, {("raw", "x"): 41})
    target = np.full(41, np.nan)
    sample = {"raw": {"x": 41}, "mask": {"x": 41}}
    for b in model_sample_blocks(model, sample, shape):
        assert b.members["raw"] == b.members["mask"]
        result = run(block_data(raw, b.members["raw"]), block_data(mask, b.members["mask"]))
        write_block(target, map_output_blocks(model, b, out_sizes)["out"], result)
    np.testing.assert_allclose(target, run(raw, mask), rtol=1e-12)
