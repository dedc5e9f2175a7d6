"""TIFF and OME-TIFF (tifffile); axes from OME, ImageJ or tifffile's own metadata.

Read lazily: uncompressed contiguous data through memory maps, tiled / striped / compressed
data tile by tile (tifffile's zarr view, with the ``zarr`` extra). Written block by block:
contiguous (memory-mappable) or, for large planes or when ``chunks`` ask for it, tiled
(uncompressed tiles written in place); BigTIFF beyond 4 GB.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bioimageio_core.errors import OutputError, SourceError
from bioimageio_core.io._blocks import BlockArray, MappedBlocks, TiledBlocks
from bioimageio_core.io._deps import require
from bioimageio_core.io._format import FileFormat, OutputRequest, RawArray
from bioimageio_core.io._location import FileLocation
from bioimageio_core.io.staging import preallocate
from bioimageio_core.tensor import Tensor

AXES_KEY = "bioimageio_axes"
"""Key under which our axis ids are stored in tifffile's JSON image description."""
SHAPE_KEY = "bioimageio_shape"
"""Key recording the shape of arrays with fewer than 2 dimensions (stored as 1 x N)."""

_FROM_TIFF: Mapping[str, str] = {
    "X": "x",
    "Y": "y",
    "Z": "z",
    "C": "channel",
    "S": "channel",
    "T": "time",
    "I": "index",
}
_TO_TIFF: Mapping[str, str] = {
    "x": "X",
    "y": "Y",
    "z": "Z",
    "channel": "C",
    "time": "T",
    "index": "I",
}
_OME_LETTERS = "TZCYXSQ"


def _tifffile(purpose: str) -> Any:
    return require("tifffile", "image", purpose)


def _is_ome(location: FileLocation) -> bool:
    return location.path.name.lower().endswith((".ome.tif", ".ome.tiff"))


def axes_from_tiff_letters(letters: str) -> tuple[str, ...] | None:
    """Map tifffile axis letters (``"TCZYX"``, ``"YXS"``) to axis ids; None if any is unknown."""
    ids = [_FROM_TIFF.get(letter) for letter in letters.upper()]
    if any(i is None for i in ids) or len(set(ids)) != len(ids):
        return None
    return tuple(i for i in ids if i is not None)


def _recorded_shape(tif: Any) -> tuple[int, ...] | None:
    shaped = tif.shaped_metadata if tif.is_shaped else None
    if shaped and isinstance(shaped[0].get(SHAPE_KEY), list):
        return tuple(int(s) for s in shaped[0][SHAPE_KEY])
    return None


def _recorded_axes(tif: Any, series: Any, ndim: int) -> tuple[str, ...] | None:
    shaped = tif.shaped_metadata if tif.is_shaped else None
    if shaped:
        ours = shaped[0].get(AXES_KEY)
        if isinstance(ours, list) and len(ours) == ndim:
            return tuple(str(a) for a in ours)
        if "axes" in shaped[0]:
            return axes_from_tiff_letters(str(series.axes))
    if tif.is_ome or tif.is_imagej:
        return axes_from_tiff_letters(str(series.axes))
    return None


def _lazy(series: Any) -> Any:
    """A zarr array over the tiles or strips of ``series`` (decoded one chunk at a time), or
    None without zarr >= 3."""
    try:
        zarr = require("zarr", "zarr", "reading TIFF block by block")
    except ImportError:
        return None
    if int(str(zarr.__version__).split(".")[0]) < 3:
        return None
    if not str(series.axes).endswith(("YX", "YXS")):
        return None  # planes tifffile squeezed or reordered: its zarr view mis-indexes them
    store = series.aszarr(level=0)
    try:
        array = zarr.open_array(store, mode="r")
        array[tuple(slice(0, 1) for _ in array.shape)]  # tifffile's view fails on some layouts
    except Exception:
        store.close()
        return None  # read whole instead
    return array, store


def _read(location: FileLocation, mmap: bool) -> RawArray:
    """Uncompressed contiguous data is memory-mapped (blocks through short-lived maps); tiled,
    striped or compressed data is read tile by tile (zarr); ``mmap=False`` reads it all."""
    tifffile = _tifffile(f"reading {location}")
    try:
        tif = tifffile.TiffFile(location.path)
    except (OSError, ValueError, tifffile.TiffFileError) as e:
        raise SourceError(f"cannot read {location} as TIFF: {e}") from e
    try:
        series = tif.series[0]
        shape = tuple(series.shape)
        final_shape = _recorded_shape(tif) or shape
        dims = _recorded_axes(tif, series, len(final_shape))
        if mmap and series.dataoffset is not None:
            try:
                mapped = tifffile.memmap(location.path, mode="r")
            except ValueError:
                mapped = None
            if mapped is not None and tuple(mapped.shape) == shape:
                blocks = MappedBlocks(location.path, series.dataoffset, final_shape, mapped.dtype)
                tif.close()
                return RawArray(mapped.reshape(final_shape), dims, blocks=blocks)
        if mmap and final_shape == shape:
            lazy = _lazy(series)
            if lazy is not None:
                array, store = lazy

                def close() -> None:
                    store.close()
                    tif.close()

                chunks = tuple(int(c) for c in array.chunks)
                return RawArray(array, dims, close=close, chunks=chunks)
        array = series.asarray()
        if final_shape != shape and int(np.prod(final_shape)) == array.size:
            array = array.reshape(final_shape)
        tif.close()
        return RawArray(array, dims)
    except (OSError, ValueError, tifffile.TiffFileError) as e:
        tif.close()
        raise SourceError(f"cannot read {location} as TIFF: {e}") from e
    except BaseException:
        tif.close()
        raise


def _metadata(dims: Sequence[str], shape: tuple[int, ...], ome: bool) -> dict[str, Any]:
    letters = "".join(_TO_TIFF.get(d, "Q") for d in dims)
    if ome:
        if len(set(letters)) != len(letters) or not set(letters) <= set(_OME_LETTERS):
            return {}
        return {"axes": letters}
    if len(shape) < 2:
        return {AXES_KEY: list(dims), SHAPE_KEY: list(shape)}
    return {"axes": letters, AXES_KEY: list(dims)}


def _at_least_2d(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1,) * (2 - len(shape)) + shape


def _write(location: FileLocation, tensor: Tensor) -> None:
    tifffile = _tifffile(f"writing {location}")
    ome = _is_ome(location)
    data = np.asarray(tensor.data)
    tifffile.imwrite(
        location.path,
        data.reshape(_at_least_2d(data.shape)),
        metadata=_metadata(tensor.dims, data.shape, ome and data.ndim >= 2),
        ome=ome,
        photometric=_photometric(tensor),
    )


def _photometric(tensor: Tensor) -> str:
    """``rgb`` for channel-last 8/16-bit colour images (so viewers show colour)."""
    if (
        tensor.dims[-3:] == ("y", "x", "channel")
        and tensor.shape[-1] in (3, 4)
        and tensor.dtype in (np.dtype("uint8"), np.dtype("uint16"))
    ):
        return "rgb"
    return "minisblack"


TILED_PLANE_PIXELS = 2**24
"""Planes with more pixels than this (4096 x 4096) are written tiled unless ``chunks`` say
otherwise; smaller ones contiguously (memory-mappable, read by every TIFF reader)."""
TILE = 256
BIGTIFF_BYTES = 2**32 - 2**25
"""Files larger than this are written as BigTIFF (64-bit offsets), as tifffile does."""


def _round16(n: int) -> int:
    return max(16, -(-n // 16) * 16)


def _tile_for(shape: tuple[int, ...], chunks: tuple[int, ...] | None) -> tuple[int, int] | None:
    """The tile (height, width) of a TIFF output, None for contiguous data: tiles as ``chunks``
    ask (rounded up to multiples of 16, as TIFF needs), else 256 x 256 for large planes."""
    height, width = shape[-2:]
    if height < 16 or width < 16:
        return None
    if chunks is not None and (chunks[-2] < height or chunks[-1] < width):
        return _round16(min(chunks[-2], height)), _round16(min(chunks[-1], width))
    if chunks is None and height * width > TILED_PLANE_PIXELS:
        return TILE, TILE
    return None


def _page_offsets(tifffile: Any, path: Any, tile_bytes: int) -> list[int]:
    """Where the first tile of each page starts (the tiles of a page follow one another)."""
    offsets = []
    with tifffile.TiffFile(path) as tif:
        for page in tif.pages:
            first = int(page.dataoffsets[0])
            expected = [first + i * tile_bytes for i in range(len(page.dataoffsets))]
            if list(page.dataoffsets) != expected or set(page.databytecounts) != {tile_bytes}:
                raise OutputError(f"unexpected tile layout written to {path}")
            offsets.append(first)
    return offsets


def _open_output(location: FileLocation, request: OutputRequest) -> RawArray:
    """A TIFF of ``request.shape`` written block by block: tiled (uncompressed tiles written in
    place) or contiguous (through memory maps); BigTIFF when it needs to be."""
    tifffile = _tifffile(f"writing {location}")
    ome = _is_ome(location)
    shape, dtype = request.shape, request.dtype
    stored = _at_least_2d(shape)
    chunks = None if request.chunks is None else _at_least_2d(request.chunks)
    tile = _tile_for(stored, chunks) if len(shape) >= 2 else None
    kwargs: dict[str, Any] = {
        "shape": stored,
        "dtype": dtype,
        "metadata": _metadata(request.dims, shape, ome and len(shape) >= 2),
        "ome": ome,
        "photometric": "minisblack",
    }
    if tile is None:
        kwargs["bigtiff"] = _nbytes(stored, dtype) > BIGTIFF_BYTES
        mapped = tifffile.memmap(location.path, **kwargs)
        preallocate(location.path)
        blocks = MappedBlocks(location.path, mapped.offset, shape, dtype, writable=True)
        return RawArray(mapped.reshape(shape), request.dims, blocks=blocks)
    padded = (*stored[:-2], -(-stored[-2] // tile[0]) * tile[0], -(-stored[-1] // tile[1]) * tile[1])
    kwargs["bigtiff"] = _nbytes(padded, dtype) > BIGTIFF_BYTES
    tifffile.imwrite(location.path, tile=tile, **kwargs)
    preallocate(location.path)
    tile_bytes = tile[0] * tile[1] * dtype.itemsize
    tiles = TiledBlocks(
        location.path,
        _page_offsets(tifffile, location.path, tile_bytes),
        stored,
        tile,
        dtype,
        writable=True,
    )
    chunk_shape = (1,) * (len(stored) - 2) + tile
    return RawArray(
        BlockArray(tiles, stored, dtype),
        request.dims,
        close=tiles.close,
        blocks=tiles,
        chunks=tuple(min(c, max(s, 1)) for c, s in zip(chunk_shape, stored, strict=True)),
    )


def _nbytes(shape: tuple[int, ...], dtype: np.dtype[Any]) -> int:
    return int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def _create(
    location: FileLocation, shape: tuple[int, ...], dtype: np.dtype[Any], dims: tuple[str, ...]
) -> RawArray:
    return _open_output(location, OutputRequest(shape, dtype, dims))


TIFF = FileFormat(
    name="TIFF",
    suffixes=(".tif", ".tiff"),
    read=_read,
    write=_write,
    create=_create,
    open_output=_open_output,
)
