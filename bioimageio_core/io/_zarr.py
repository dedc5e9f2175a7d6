"""Zarr stores (extra ``zarr``; format v2 or v3 as the installed zarr supports), read lazily.

``folder.zarr`` (one array, or a group with exactly one array or an OME-Zarr image) or
``folder.zarr:path/to/array``. Axes come from v3 ``dimension_names``, the ``_ARRAY_DIMENSIONS``
attribute (v2, xarray's convention) or OME-Zarr ``multiscales`` axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bioimageio_core.errors import OutputError, SourceError
from bioimageio_core.io._deps import require
from bioimageio_core.io._format import Existing, FileFormat, RawArray
from bioimageio_core.io._location import FileLocation
from bioimageio_core.io.axes import AXIS_LETTERS
from bioimageio_core.io.staging import (
    check_complete,
    incomplete_writer,
    mark_complete,
    mark_incomplete,
    remove_tree,
)
from bioimageio_core.tensor import Tensor

DIMS_ATTR = "_ARRAY_DIMENSIONS"


def _zarr(purpose: str) -> Any:
    return require("zarr", "zarr", purpose)


def _major(zarr: Any) -> int:
    return int(str(zarr.__version__).split(".")[0])


def _ids(names: Sequence[Any] | None, ndim: int) -> tuple[str, ...] | None:
    if names is None:
        return None
    ids = tuple(AXIS_LETTERS.get(str(n), str(n)) for n in names if n is not None)
    if len(ids) != ndim or len(set(ids)) != ndim or not all(ids):
        return None
    return ids


def _array_axes(array: Any) -> tuple[str, ...] | None:
    metadata = getattr(array, "metadata", None)
    names = getattr(metadata, "dimension_names", None)
    return _ids(names, array.ndim) or _ids(array.attrs.get(DIMS_ATTR), array.ndim)


def _pick_from_group(group: Any, location: FileLocation) -> tuple[Any, tuple[str, ...] | None]:
    multiscales = group.attrs.get("multiscales")
    if isinstance(multiscales, list) and multiscales:
        image = multiscales[0]
        path = str(image["datasets"][0]["path"])
        array = group[path]
        names = [a["name"] if isinstance(a, dict) else a for a in image.get("axes", [])]
        return array, _ids(names, array.ndim) or _array_axes(array)
    arrays = sorted(name for name, _ in group.arrays())
    if len(arrays) != 1:
        raise SourceError(
            f"{location.path} holds {len(arrays)} arrays at its top "
            f"({', '.join(arrays[:10]) or 'none'}); choose one",
            hint=f"write '{location.path}:{arrays[0] if arrays else 'path/to/array'}'",
        )
    array = group[arrays[0]]
    return array, _array_axes(array)


def _read(location: FileLocation, mmap: bool) -> RawArray:
    zarr = _zarr(f"reading {location}")
    try:
        node = zarr.open(store=str(location.path), mode="r", path=location.member or "")
    except (OSError, KeyError, ValueError) as e:
        raise SourceError(f"cannot open {location} as zarr: {e}") from e
    if hasattr(node, "arrays"):
        array, dims = _pick_from_group(node, location)
    else:
        array, dims = node, _array_axes(node)
    check_complete(array.attrs, str(location))
    return RawArray(array, dims)


def _create(
    location: FileLocation, shape: tuple[int, ...], dtype: np.dtype[Any], dims: tuple[str, ...]
) -> RawArray:
    """An array marked incomplete until ``complete()``."""
    zarr = _zarr(f"writing {location}")
    kwargs: dict[str, Any] = {}
    if _major(zarr) >= 3:
        kwargs["dimension_names"] = list(dims)
    array = zarr.open_array(
        store=str(location.path),
        path=location.member or "",
        mode="w",
        shape=shape,
        dtype=dtype,
        **kwargs,
    )
    mark_incomplete(array.attrs)
    if "dimension_names" not in kwargs:
        array.attrs[DIMS_ATTR] = list(dims)

    def discard() -> None:
        if location.member:
            node = _member_folder(location.path, location.member)
            if node is not None:
                remove_tree(node)

    return RawArray(array, dims, complete=lambda: mark_complete(array.attrs), discard=discard)


def _member_folder(store: Path, member: str) -> Path | None:
    """The folder of ``member`` inside the local ``store`` (None if it would leave the store)."""
    folder = (store / member.strip("/")).resolve()
    return folder if folder.is_relative_to(store.resolve()) and folder != store.resolve() else None


def _write(location: FileLocation, tensor: Tensor) -> None:
    raw = _create(location, tensor.shape, tensor.dtype, tensor.dims)
    try:
        raw.array[...] = np.asarray(tensor.data)
        raw.complete()
    except BaseException:
        raw.discard()
        raise


def _probe(location: FileLocation) -> Existing:
    """A member of an existing store is written in place; anything else as a whole new store."""
    if not location.path.exists():
        return Existing(False)
    zarr = _zarr(f"writing {location}")
    try:
        node = zarr.open(store=str(location.path), mode="r", path=location.member or "")
    except (OSError, KeyError, ValueError) as e:
        if location.member is None:
            return Existing(True)  # not a readable store: replaced as a whole (with overwrite)
        if isinstance(e, FileNotFoundError) or "not found" in str(e).lower():
            return Existing(False, in_place=True)
        raise OutputError(
            f"cannot write into {location.path}: it is not a readable zarr store ({e})",
            hint="choose another output path, or remove it",
        ) from None
    writer = None if hasattr(node, "arrays") else incomplete_writer(node.attrs)
    return Existing(True, in_place=location.member is not None, writer=writer)


ZARR = FileFormat(
    name="zarr",
    suffixes=(".zarr",),
    read=_read,
    write=_write,
    create=_create,
    has_members=True,
    directory=True,
    probe=_probe,
)
