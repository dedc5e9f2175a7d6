"""The decoded-chunk cache of stored inputs: the data of any region, bounded memory, and each
chunk decoded once when blocks are read in order."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from concurrently import run_concurrently
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bioimageio_core.execution.stored import ChunkCache
from bioimageio_core.io import open_array, open_output_array

pytest.importorskip("zarr", reason="the 'zarr' extra is not installed")

Array = np.ndarray[Any, Any]
SHAPE = (13, 40, 37)
CHUNKS = (5, 16, 10)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Array]:
    data = np.arange(math.prod(SHAPE), dtype="float32").reshape(SHAPE)
    path = tmp_path_factory.mktemp("cache") / "x.zarr"
    with open_output_array(path, SHAPE, "float32", "zyx", chunks=CHUNKS) as out:
        out.write_block((slice(None),) * 3, data)
    return path, data


@st.composite
def regions(draw: st.DrawFn) -> tuple[slice, ...]:
    out = []
    for size in SHAPE:
        start = draw(st.integers(0, size - 1))
        out.append(slice(start, draw(st.integers(start + 1, size))))
    return tuple(out)


def blocks_in_order(inner: int, halo: int) -> list[tuple[slice, ...]]:
    """Outer regions of blocks of ``inner`` (plus ``halo`` on each side, cut at the edges) in
    grid order, the last axis fastest."""
    per_axis = [
        [slice(max(0, i - halo), min(size, i + inner + halo)) for i in range(0, size, inner)]
        for size in SHAPE
    ]
    return list(itertools.product(*per_axis))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), chunks_kept=st.integers(1, 12))
def test_any_region_equals_numpy_slicing_and_memory_stays_bounded(
    stored: tuple[Path, Array], data: st.DataObject, chunks_kept: int
) -> None:
    path, expected = stored
    chunk_bytes = math.prod(CHUNKS) * 4
    cache = ChunkCache(open_array(str(path)), max_bytes=chunks_kept * chunk_bytes)
    try:
        for _ in range(data.draw(st.integers(1, 6))):
            region = data.draw(regions())
            np.testing.assert_array_equal(cache.read(region), expected[region])
            assert cache.nbytes <= max(cache.max_bytes, chunk_bytes)  # one chunk at least
    finally:
        cache.close()


def test_blocks_read_in_order_decode_each_chunk_once(stored: tuple[Path, Array]) -> None:
    path, expected = stored
    # blocks of 7 with a halo of 2 cut chunks of 5, 16 and 10; a cache of one z-row of chunks
    # (and the next) is enough for a traversal in grid order
    row = math.prod(math.ceil(s / c) for s, c in zip(SHAPE[1:], CHUNKS[1:], strict=True))
    cache = ChunkCache(open_array(str(path)), max_bytes=2 * row * math.prod(CHUNKS) * 4)
    grid = math.prod(math.ceil(s / c) for s, c in zip(SHAPE, CHUNKS, strict=True))
    try:
        for region in blocks_in_order(7, 2):
            np.testing.assert_array_equal(cache.read(region), expected[region])
        assert cache.decoded == grid
    finally:
        cache.close()


def test_threads_sharing_the_cache_get_the_right_data(stored: tuple[Path, Array]) -> None:
    path, expected = stored
    cache = ChunkCache(open_array(str(path)), max_bytes=3 * math.prod(CHUNKS) * 4)
    regions = [(slice(z, z + 4), slice(0, 40), slice(3, 30)) for z in range(0, 10)]
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for region in regions:
                np.testing.assert_array_equal(cache.read(region), expected[region])
        except BaseException as e:  # reported in the test's thread
            errors.append(e)

    run_concurrently(read, [()] * 3)
    cache.close()
    assert not errors
    assert cache.nbytes == 0
