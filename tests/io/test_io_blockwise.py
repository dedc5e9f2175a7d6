"""Block by block, in every format: a block read equals the in-memory slice; blocks written in
any order give the same data (and for npy and zarr the same bytes) as writing the whole."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bioimageio_core.io import load_tensor, open_array, open_output_array, save_tensor
from bioimageio_core.io._blocks import BlockArray, MappedBlocks
from bioimageio_core.tensor import Tensor

zarr = pytest.importorskip("zarr", reason="the 'zarr' extra is not installed")

DIMS = ("batch", "channel", "y", "x")
Writer = Callable[[Path, np.ndarray[Any, Any]], str]


def _npy(folder: Path, data: np.ndarray[Any, Any]) -> str:
    np.save(folder / "a.npy", data)
    return str(folder / "a.npy")


def _npy_fortran(folder: Path, data: np.ndarray[Any, Any]) -> str:
    np.save(folder / "f.npy", np.asfortranarray(data))
    return str(folder / "f.npy")


def _tif(folder: Path, data: np.ndarray[Any, Any]) -> str:
    save_tensor(folder / "a.tif", Tensor(data, DIMS))
    return str(folder / "a.tif")


def _tif_tiled(folder: Path, data: np.ndarray[Any, Any]) -> str:
    with open_output_array(folder / "t.tif", data.shape, data.dtype, DIMS, chunks=(1, 1, 16, 16)) as out:
        out.write_block(..., data)
    return str(folder / "t.tif")


def _tif_compressed_tiles(folder: Path, data: np.ndarray[Any, Any]) -> str:
    tifffile.imwrite(
        folder / "z.tif", data, tile=(16, 16), compression="zlib", photometric="minisblack"
    )
    return str(folder / "z.tif")


def _tif_compressed_strips(folder: Path, data: np.ndarray[Any, Any]) -> str:
    tifffile.imwrite(
        folder / "s.tif", data, rowsperstrip=3, compression="zlib", photometric="minisblack"
    )
    return str(folder / "s.tif")


def _h5(folder: Path, data: np.ndarray[Any, Any]) -> str:
    with h5py.File(folder / "a.h5", "w") as f:
        f.create_dataset("raw", data=data)  # contiguous
    return f"{folder}/a.h5:/raw"


def _h5_chunked(folder: Path, data: np.ndarray[Any, Any]) -> str:
    with h5py.File(folder / "c.h5", "w") as f:
        chunks = tuple(min(c, s) for c, s in zip((1, 1, 3, 5), data.shape, strict=True))
        f.create_dataset("raw", data=data, chunks=chunks, compression="gzip")
    return f"{folder}/c.h5:/raw"


def _zarr(fmt: int) -> Writer:
    def write(folder: Path, data: np.ndarray[Any, Any]) -> str:
        array = zarr.create_array(
            store=str(folder / f"v{fmt}.zarr"),
            shape=data.shape,
            chunks=(1, 1, 4, 3),
            dtype=data.dtype,
            zarr_format=fmt,
        )
        array[...] = data
        return str(folder / f"v{fmt}.zarr")

    return write


def _ome_zarr(folder: Path, data: np.ndarray[Any, Any]) -> str:
    save_tensor(folder / "o.ome.zarr", Tensor(data[0], DIMS[1:]))
    return f"{folder}/o.ome.zarr:0"


READERS: dict[str, Writer] = {
    "npy": _npy,
    "npy-fortran": _npy_fortran,
    "tif": _tif,
    "tif-tiled": _tif_tiled,
    "tif-zlib-tiles": _tif_compressed_tiles,
    "tif-zlib-strips": _tif_compressed_strips,
    "h5": _h5,
    "h5-chunked": _h5_chunked,
    "zarr-v2": _zarr(2),
    "zarr-v3": _zarr(3),
    "ome-zarr": _ome_zarr,
}


@st.composite
def arrays_and_blocks(draw: st.DrawFn) -> tuple[np.ndarray[Any, Any], list[tuple[slice, ...]]]:
    shape = (1, draw(st.integers(1, 3)), draw(st.integers(1, 40)), draw(st.integers(1, 40)))
    dtype = draw(st.sampled_from(["uint8", "int16", "float32", "float64"]))
    data = (np.random.default_rng(draw(st.integers(0, 2**16))).random(shape) * 100).astype(dtype)
    blocks = []
    for _ in range(4):
        block = []
        for s in shape:
            start = draw(st.integers(0, s - 1))
            block.append(slice(start, draw(st.integers(start + 1, s))))
        blocks.append(tuple(block))
    return data, blocks


@pytest.mark.parametrize("fmt", list(READERS))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=arrays_and_blocks())
def test_block_reads_equal_the_slices_of_the_array(
    tmp_path_factory: pytest.TempPathFactory, fmt: str, case: tuple[np.ndarray[Any, Any], list[Any]]
) -> None:
    data, blocks = case
    folder = tmp_path_factory.mktemp(fmt)
    source = READERS[fmt](folder, data)
    expected = data[0] if fmt == "ome-zarr" else data
    with open_array(source) as opened:
        assert opened.shape == expected.shape
        for block in blocks:
            key = block[1:] if fmt == "ome-zarr" else block
            got = opened.read_block(key)
            assert got.dtype == expected.dtype
            np.testing.assert_array_equal(got, expected[key])
            got[...] = 0  # a copy, never a view of the file
        np.testing.assert_array_equal(opened.read_block(...), expected)


OUTPUTS: dict[str, dict[str, Any]] = {
    "o.npy": {},
    "o.tif": {},
    "t.tif": {"chunks": (1, 1, 16, 32)},
    "o.h5": {"chunks": (1, 2, 5, 7)},
    "o.zarr": {"chunks": (1, 2, 5, 7)},
    "s.zarr:pred/a": {"chunks": (1, 1, 8, 8)},
    "o.ome.zarr": {"chunks": (1, 2, 5, 7)},
}


@st.composite
def partitions(draw: st.DrawFn) -> tuple[np.ndarray[Any, Any], list[tuple[slice, ...]]]:
    """An array and its blocks (a regular grid of a random block shape) in a random order."""
    shape = (1, 2, draw(st.integers(1, 45)), draw(st.integers(1, 45)))
    data = np.random.default_rng(draw(st.integers(0, 2**16))).standard_normal(shape)
    data = data.astype(draw(st.sampled_from(["float32", "int16"])))
    block = (1, draw(st.integers(1, 2)), draw(st.integers(1, 20)), draw(st.integers(1, 20)))
    grid = [range(0, s, b) for s, b in zip(shape, block, strict=True)]
    blocks = [
        tuple(slice(o, min(o + b, s)) for o, b, s in zip(origin, block, shape, strict=True))
        for origin in itertools.product(*grid)
    ]
    return data, draw(st.permutations(blocks))


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "zarr.json" and ".zarray" not in p.name
    }


@pytest.mark.parametrize("name", list(OUTPUTS))
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=partitions())
def test_blocks_in_any_order_write_the_same_as_the_whole(
    tmp_path_factory: pytest.TempPathFactory, name: str, case: tuple[np.ndarray[Any, Any], list[Any]]
) -> None:
    data, blocks = case
    options = OUTPUTS[name]
    blockwise, whole = tmp_path_factory.mktemp("blocks"), tmp_path_factory.mktemp("whole")
    for folder in (blockwise, whole):
        if name.startswith("s.zarr"):
            save_tensor(folder / "s.zarr:raw", Tensor(np.ones((3, 3)), ("y", "x")))
    with open_output_array(f"{blockwise}/{name}", data.shape, data.dtype, DIMS, **options) as out:
        for block in blocks:
            out.write_block(block, data[block])
    with open_output_array(f"{whole}/{name}", data.shape, data.dtype, DIMS, **options) as out:
        out.write_block(..., data)
    loaded = load_tensor(f"{blockwise}/{name}", expected_axes=DIMS)
    np.testing.assert_array_equal(loaded.data.reshape(data.shape), data)
    if name.endswith((".npy", ".zarr", ".zarr:pred/a")):
        assert _files(blockwise) == _files(whole)  # the same bytes, chunk by chunk


def test_block_arrays_index_like_numpy(tmp_path: Path) -> None:
    data = np.arange(60, dtype="int32").reshape(3, 4, 5)
    np.save(tmp_path / "a.npy", data)
    with open_array(tmp_path / "a.npy") as opened:
        blocks = MappedBlocks(tmp_path / "a.npy", opened.array.offset, data.shape, data.dtype)
    array = BlockArray(blocks, data.shape, data.dtype)
    for key in [(1,), (..., 2), (slice(0, 2), 3, slice(1, 4)), (slice(None), -1)]:
        np.testing.assert_array_equal(array[key], data[key])


def test_tiled_tiff_is_tiled_and_readable_by_tifffile(tmp_path: Path) -> None:
    data = np.random.default_rng(0).integers(0, 2**16, (1, 2, 70, 90), dtype="uint16")
    target = tmp_path / "t.tif"
    with open_output_array(target, data.shape, data.dtype, DIMS, chunks=(1, 1, 32, 32)) as out:
        assert out.chunk_grid.chunks == (1, 1, 32, 32)
        for y in range(0, 70, 32):  # rows of whole tiles
            out.write_block((0, slice(None), slice(y, y + 32)), data[:, :, y : y + 32])
    with tifffile.TiffFile(target) as tif:
        assert tif.pages[0].is_tiled and (tif.pages[0].tilelength, tif.pages[0].tilewidth) == (32, 32)
        np.testing.assert_array_equal(tif.asarray().reshape(data.shape), data)
    loaded = load_tensor(target)
    assert loaded.dims == DIMS


def test_bigtiff_when_the_file_would_pass_4_gb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bioimageio_core.io import _tiff

    monkeypatch.setattr(_tiff, "BIGTIFF_BYTES", 1000)  # as if 1000 bytes were 4 GB
    data = np.arange(2 * 40 * 40, dtype="uint16").reshape(1, 2, 40, 40)
    for name, chunks in (("contiguous.tif", None), ("tiled.tif", (1, 1, 16, 16))):
        with open_output_array(tmp_path / name, data.shape, data.dtype, DIMS, chunks=chunks) as out:
            out.write_block(..., data)
        with tifffile.TiffFile(tmp_path / name) as tif:
            assert tif.is_bigtiff
        np.testing.assert_array_equal(load_tensor(tmp_path / name).data, data)
    small = tmp_path / "small.tif"
    monkeypatch.setattr(_tiff, "BIGTIFF_BYTES", math.inf)
    with open_output_array(small, data.shape, data.dtype, DIMS) as out:
        out.write_block(..., data)
    with tifffile.TiffFile(small) as tif:
        assert not tif.is_bigtiff
