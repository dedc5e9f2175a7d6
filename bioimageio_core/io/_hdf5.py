"""HDF5 files (h5py, extra ``hdf5``): ``file.h5:/group/dataset``; axes from dimension labels."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from bioimageio_core.errors import OutputError, SourceError
from bioimageio_core.io._deps import require
from bioimageio_core.io._format import Existing, FileFormat, OutputRequest, RawArray
from bioimageio_core.io._location import FileLocation
from bioimageio_core.io.axes import AXIS_LETTERS
from bioimageio_core.io.staging import (
    check_complete,
    incomplete_writer,
    mark_complete,
    mark_incomplete,
)
from bioimageio_core.tensor import Tensor

DEFAULT_DATASET = "data"
AXES_ATTRS = ("axes", "_ARRAY_DIMENSIONS", "DIMENSION_LABELS")
"""Dataset attributes read for axis ids when the dimensions carry no labels."""


def _h5py(purpose: str) -> Any:
    return require("h5py", "hdf5", purpose)


def _as_ids(value: Any, ndim: int) -> tuple[str, ...] | None:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        items: list[Any] = list(value) if all(c in AXIS_LETTERS for c in value) else [value]
    else:
        try:
            items = list(value)
        except TypeError:
            return None
    ids = tuple(
        AXIS_LETTERS.get(s, s)
        for s in (i.decode() if isinstance(i, bytes) else str(i) for i in items)
    )
    if len(ids) != ndim or len(set(ids)) != ndim or not all(ids):
        return None
    return ids


def _recorded_axes(dataset: Any) -> tuple[str, ...] | None:
    labels = _as_ids([d.label for d in dataset.dims], dataset.ndim)
    if labels is not None:
        return labels
    for key in AXES_ATTRS:
        if key in dataset.attrs:
            ids = _as_ids(dataset.attrs[key], dataset.ndim)
            if ids is not None:
                return ids
    return None


def _datasets(h5: Any) -> list[str]:
    h5py = _h5py("reading HDF5")
    names: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            names.append("/" + name)

    h5.visititems(visit)
    return names


def _read(location: FileLocation, mmap: bool) -> RawArray:
    h5py = _h5py(f"reading {location}")
    try:
        h5 = h5py.File(location.path, "r")
    except OSError as e:
        raise SourceError(f"cannot read {location} as HDF5: {e}") from e
    try:
        member = location.member
        if member is None:
            names = _datasets(h5)
            if len(names) != 1:
                raise SourceError(
                    f"{location.path} holds {len(names)} datasets "
                    f"({', '.join(names[:10]) or 'none'}); choose one",
                    hint=f"write '{location.path}:{names[0] if names else '/DATASET'}'",
                )
            member = names[0]
        obj = h5.get(member)
        if not isinstance(obj, h5py.Dataset):
            raise SourceError(
                f"{location.path} has no dataset {member!r}",
                hint=f"datasets in the file: {', '.join(_datasets(h5)[:10]) or 'none'}",
            )
        check_complete(obj.attrs, f"{location.path}:{member}")
        chunks = None if obj.chunks is None else tuple(int(c) for c in obj.chunks)
        return RawArray(obj, _recorded_axes(obj), h5.close, chunks=chunks)
    except BaseException:
        h5.close()
        raise


def _label(dataset: Any, dims: Sequence[str]) -> None:
    for dim, axis_id in zip(dataset.dims, dims, strict=True):
        dim.label = axis_id


def _close_after_failure(h5: Any) -> None:
    """Close ``h5`` (a temporary file about to be deleted) after a failed write.

    When HDF5 cannot flush (disk full, file size limit) a failed close leaves the file open and
    the library crashes the process at exit, so the file is closed with its unwritten changes
    sent to the null device.
    """
    if not h5.id.valid:
        return
    if os.name == "posix":
        try:
            fd = h5.id.get_vfd_handle()
            null = os.open(os.devnull, os.O_RDWR)
            try:
                os.dup2(null, fd)
            finally:
                os.close(null)
        except Exception:
            pass
    try:
        h5.close()
    except Exception:
        pass  # the data is removed or marked incomplete


def _open_for_writing(location: FileLocation) -> tuple[Any, str]:
    h5py = _h5py(f"writing {location}")
    # a new (staged, still empty) file is created; an existing one gets the dataset added
    exists = location.path.is_file() and location.path.stat().st_size > 0
    h5 = h5py.File(location.path, "a" if exists else "w")
    name = location.member or DEFAULT_DATASET
    try:
        if name in h5:
            del h5[name]
    except BaseException:
        h5.close()
        raise
    return h5, name


def _write(location: FileLocation, tensor: Tensor) -> None:
    raw = _create(location, tensor.shape, tensor.dtype, tensor.dims, chunked=False)
    try:
        raw.fill(tensor.data)
    finally:
        raw.close()


def _create(
    location: FileLocation,
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    dims: tuple[str, ...],
    chunked: bool = True,
    chunk_shape: tuple[int, ...] | None = None,
) -> RawArray:
    """A dataset marked incomplete until ``complete()`` (chunked: written block by block, in
    chunks of ``chunk_shape`` or as h5py chooses)."""
    h5, name = _open_for_writing(location)
    try:
        chunks: Any = None
        if chunked and shape and all(shape):
            chunks = True
            if chunk_shape is not None:
                chunks = tuple(
                    max(1, min(int(c), s)) for c, s in zip(chunk_shape, shape, strict=True)
                )
        dataset = h5.create_dataset(name, shape=shape, dtype=dtype, chunks=chunks)
        mark_incomplete(dataset.attrs)
        _label(dataset, dims)
        h5.flush()
    except BaseException:
        _close_after_failure(h5)
        raise

    def complete() -> None:
        h5.flush()
        mark_complete(dataset.attrs)
        h5.flush()

    def discard() -> None:
        _close_after_failure(h5)

    stored = None if dataset.chunks is None else tuple(int(c) for c in dataset.chunks)
    return RawArray(dataset, dims, h5.close, complete, discard, chunks=stored)


def _open_output(location: FileLocation, request: OutputRequest) -> RawArray:
    return _create(location, request.shape, request.dtype, request.dims, True, request.chunks)


def _probe(location: FileLocation) -> Existing:
    """A new file is written whole; a dataset added to an existing file is written into a copy
    of it (HDF5 files can be left unreadable by a write that fails half way)."""
    if not location.path.exists():
        return Existing(False)
    h5py = _h5py(f"writing {location}")
    try:
        h5 = h5py.File(location.path, "r")
    except OSError as e:
        raise OutputError(
            f"cannot write into {location.path}: it is not a readable HDF5 file ({e})",
            hint="choose another output path, or remove the file",
        ) from None
    with h5:
        obj = h5.get(location.member or DEFAULT_DATASET)
        if obj is None:
            return Existing(False, copy=True)
        writer = incomplete_writer(obj.attrs) if isinstance(obj, h5py.Dataset) else None
        return Existing(True, writer=writer, copy=True)


HDF5 = FileFormat(
    name="HDF5",
    suffixes=(".h5", ".hdf5", ".hdf"),
    read=_read,
    write=_write,
    create=_create,
    has_members=True,
    probe=_probe,
    open_output=_open_output,
)
