"""ChunkGrid: which chunks a block touches, covers or cuts (properties against brute force)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bioimageio_core.errors import OutputError
from bioimageio_core.io import ChunkGrid, normalize_region
from bioimageio_core.io._chunks import chunk_key, default_chunks, parse_chunk_key


@st.composite
def grids_and_regions(draw: st.DrawFn) -> tuple[ChunkGrid, tuple[slice, ...]]:
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 13)) for _ in range(ndim))
    chunks = tuple(draw(st.integers(1, 6)) for _ in range(ndim))
    region = []
    for s in shape:
        start = draw(st.integers(0, s))
        stop = draw(st.integers(start, s))
        region.append(slice(start, stop))
    return ChunkGrid(shape, chunks), tuple(region)


def _owner(grid: ChunkGrid) -> np.ndarray:
    """Per element: the flat index of its chunk."""
    owner = np.empty(grid.shape, dtype=np.int64)
    for flat, index in enumerate(grid.indices()):
        owner[grid.chunk_region(index)] = flat
    return owner


@settings(max_examples=150, deadline=None)
@given(grids_and_regions())
def test_touched_covered_and_aligned_agree_with_brute_force(
    case: tuple[ChunkGrid, tuple[slice, ...]],
) -> None:
    grid, region = case
    owner = _owner(grid)
    indices = list(grid.indices())
    inside = np.zeros(grid.shape, dtype=bool)
    inside[region] = True
    touched = {indices[f] for f in np.unique(owner[inside])}
    covered = {i for i in indices if inside[grid.chunk_region(i)].all()} if inside.any() else set()
    assert set(grid.touched(region)) == touched
    assert set(grid.covered(region)) == covered
    assert grid.is_aligned(region) == (touched == covered)


@settings(max_examples=100, deadline=None)
@given(grids_and_regions())
def test_chunks_partition_the_array(case: tuple[ChunkGrid, tuple[slice, ...]]) -> None:
    grid, _ = case
    count = np.zeros(grid.shape, dtype=np.int64)
    for index in grid.indices():
        count[grid.chunk_region(index)] += 1
    assert (count == 1).all()
    assert grid.n_chunks == math.prod(grid.grid_shape) == len(list(grid.indices()))


def test_check_aligned_says_what_to_do() -> None:
    grid = ChunkGrid((10, 10), (4, 4))
    grid.check_aligned((slice(4, 8), slice(8, 10)))  # the last chunk is clipped: aligned
    with pytest.raises(OutputError, match=r"block \[2:6, 0:4\] .* cuts chunks of shape \(4, 4\)"):
        grid.check_aligned((slice(2, 6), slice(0, 4)))


@given(st.lists(st.integers(0, 50), min_size=0, max_size=4))
def test_chunk_keys_round_trip(index: list[int]) -> None:
    assert parse_chunk_key(chunk_key(index), len(index)) == tuple(index)


def test_foreign_names_are_no_chunk_keys() -> None:
    assert parse_chunk_key("1.x", 2) is None
    assert parse_chunk_key("1.2.3", 2) is None
    assert parse_chunk_key(".tmp", 1) is None


@pytest.mark.parametrize(
    "key, expected",
    [
        (..., (slice(0, 4), slice(0, 5))),
        (1, (slice(1, 2), slice(0, 5))),
        ((slice(None), -1), (slice(0, 4), slice(4, 5))),
        ((..., slice(1, 3)), (slice(0, 4), slice(1, 3))),
        ((slice(2, 99),), (slice(2, 4), slice(0, 5))),
    ],
)
def test_normalize_region(key: object, expected: tuple[slice, ...]) -> None:
    assert normalize_region(key, (4, 5)) == expected


@pytest.mark.parametrize("key", [(slice(0, 4, 2),), (5,), (0, 0, 0), (..., ...)])
def test_normalize_region_refuses(key: object) -> None:
    with pytest.raises(IndexError):
        normalize_region(key, (4, 5))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 3000), min_size=2, max_size=5), st.sampled_from([1, 2, 4, 8]))
def test_default_chunks_stay_small_and_keep_channels(shape: list[int], itemsize: int) -> None:
    dims = ["batch", "channel", "z", "y", "x"][-len(shape) :]
    chunks = default_chunks(shape, itemsize, dims, target_bytes=2**20)
    assert len(chunks) == len(shape)
    assert all(1 <= c <= max(s, 1) for c, s in zip(chunks, shape, strict=True))
    if "batch" in dims:
        assert chunks[dims.index("batch")] == 1
    spatial = [c for c, d in zip(chunks, dims, strict=True) if d in "zyx"]
    if math.prod(chunks) * itemsize > 2**20:
        assert all(c == 1 for c in spatial)  # only an (unsplit) channel axis is left too big
    elif "channel" in dims:
        assert chunks[dims.index("channel")] == shape[dims.index("channel")]


def test_grid_of_nothing() -> None:
    grid = ChunkGrid((0, 3), (0, 2))
    assert grid.n_chunks == 0
    assert list(grid.touched((slice(0, 0), slice(0, 3)))) == []
    assert list(itertools.islice(grid.indices(), 1)) == []
