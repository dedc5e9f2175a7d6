"""HDF5 files (h5py, extra ``hdf5``): ``file.h5:/group/dataset``; axes from dimension labels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bioimageio_core.errors import SourceError
from bioimageio_core.io._deps import require
from bioimageio_core.io._format import FileFormat, RawArray
from bioimageio_core.io._location import FileLocation
from bioimageio_core.io.axes import AXIS_LETTERS
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
        return RawArray(obj, _recorded_axes(obj), h5.close)
    except BaseException:
        h5.close()
        raise


def _label(dataset: Any, dims: Sequence[str]) -> None:
    for dim, axis_id in zip(dataset.dims, dims, strict=True):
        dim.label = axis_id


def _open_for_writing(location: FileLocation) -> tuple[Any, str]:
    h5py = _h5py(f"writing {location}")
    h5 = h5py.File(location.path, "a")
    name = location.member or DEFAULT_DATASET
    if name in h5:
        del h5[name]
    return h5, name


def _write(location: FileLocation, tensor: Tensor) -> None:
    h5, name = _open_for_writing(location)
    with h5:
        dataset = h5.create_dataset(name, data=np.asarray(tensor.data))
        _label(dataset, tensor.dims)


def _create(
    location: FileLocation, shape: tuple[int, ...], dtype: np.dtype[Any], dims: tuple[str, ...]
) -> RawArray:
    h5, name = _open_for_writing(location)
    try:
        dataset = h5.create_dataset(name, shape=shape, dtype=dtype, chunks=True if shape else None)
        _label(dataset, dims)
    except BaseException:
        h5.close()
        raise
    return RawArray(dataset, dims, h5.close)


HDF5 = FileFormat(
    name="HDF5",
    suffixes=(".h5", ".hdf5", ".hdf"),
    read=_read,
    write=_write,
    create=_create,
    has_members=True,
)
