"""TIFF and OME-TIFF (tifffile); axes from OME, ImageJ or tifffile's own metadata."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bioimageio_core.errors import SourceError
from bioimageio_core.io._deps import require
from bioimageio_core.io._format import FileFormat, RawArray
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


def _read(location: FileLocation, mmap: bool) -> RawArray:
    tifffile = _tifffile(f"reading {location}")
    try:
        with tifffile.TiffFile(location.path) as tif:
            series = tif.series[0]
            shape = tuple(series.shape)
            final_shape = _recorded_shape(tif) or shape
            dims = _recorded_axes(tif, series, len(final_shape))
            array = None
            if mmap and series.dataoffset is not None:
                try:
                    array = tifffile.memmap(location.path, mode="r")
                except ValueError:
                    array = None
            if array is None or tuple(array.shape) != shape:
                array = series.asarray()
            if final_shape != shape and int(np.prod(final_shape)) == array.size:
                array = array.reshape(final_shape)
    except (OSError, ValueError, tifffile.TiffFileError) as e:
        raise SourceError(f"cannot read {location} as TIFF: {e}") from e
    return RawArray(array, dims)


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


def _create(
    location: FileLocation, shape: tuple[int, ...], dtype: np.dtype[Any], dims: tuple[str, ...]
) -> RawArray:
    tifffile = _tifffile(f"writing {location}")
    ome = _is_ome(location)
    array = tifffile.memmap(
        location.path,
        shape=_at_least_2d(shape),
        dtype=dtype,
        metadata=_metadata(dims, shape, ome and len(shape) >= 2),
        ome=ome,
        photometric="minisblack",
    )
    preallocate(location.path)
    return RawArray(array.reshape(shape), dims)


TIFF = FileFormat(
    name="TIFF",
    suffixes=(".tif", ".tiff"),
    read=_read,
    write=_write,
    create=_create,
)
