"""Inputs stored in files, read region by region in the model's axes (never whole).

:func:`digest_stored` checks stored inputs as :func:`~bioimageio_core.digest.digest_inputs`
checks arrays (ids, axes, channel counts, dtypes, batch sizes) without reading any data: each
file is opened lazily (:func:`bioimageio_core.io.open_array`) and stands in for the check as a
zero-memory placeholder of its shape and dtype. A :class:`StoredInput` then maps a region in the
model's axes onto the file's axes (dropping the file's extra singleton axes, adding the model's
missing ones) and reads only that region. It is a small picklable value: any process that sees
the file can read it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from bioimageio_core.digest import AxesArg, digest_inputs
from bioimageio_core.io import OpenedArray, open_array
from bioimageio_core.io.axes import AxesLike
from bioimageio_core.shapes import ModelShape
from bioimageio_core.tensor import Tensor

Array = np.ndarray[Any, Any]
Region = tuple[slice, ...]
"""One slice per axis (start and stop inside the array)."""


@attrs.frozen
class StoredInput:
    """One input tensor stored in a file, in the model's axes ``dims`` and ``shape``.

    ``location`` is what :func:`~bioimageio_core.io.open_array` opens (a path, ``store.zarr:raw``,
    ``file.h5:/data``, a zarr URL) with ``file_axes`` (the file's axis ids as resolved when the
    input was digested).
    """

    location: str
    file_axes: tuple[str, ...]
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str

    @property
    def sizes(self) -> dict[str, int]:
        return dict(zip(self.dims, self.shape, strict=True))

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def open(self) -> OpenedArray:
        """The file, opened for reading (shared by the threads of this process; see
        :func:`opened`)."""
        return opened(self.location, self.file_axes)

    def read(self, region: Region) -> Array:
        """The data of ``region`` (one slice per model axis), in the model's axis order."""
        by_dim = dict(zip(self.dims, region, strict=True))
        file_region = tuple(by_dim.get(d, slice(0, 1)) for d in self.file_axes)
        data = self.open().read_block(file_region)
        extra = tuple(i for i, d in enumerate(self.file_axes) if d not in self.dims)
        if extra:
            data = data.squeeze(axis=extra)
        present = [d for d in self.file_axes if d in self.dims]
        missing = [d for d in self.dims if d not in present]
        if missing:
            data = data.reshape((1,) * len(missing) + data.shape)
        order = [*missing, *present]
        return data.transpose([order.index(d) for d in self.dims])

    def tensor(self, region: Region) -> Tensor:
        """:meth:`read` as a :class:`Tensor`."""
        return Tensor(self.read(region), self.dims)


@attrs.frozen
class StoredSample:
    """The stored inputs of one sample (by input id)."""

    members: Mapping[str, StoredInput]
    id: Hashable = None

    @property
    def shape(self) -> dict[str, dict[str, int]]:
        return {m: t.sizes for m, t in self.members.items()}


_OPENED: dict[tuple[str, tuple[str, ...]], OpenedArray] = {}
_LOCK = threading.Lock()
_MAX_OPEN = 32


def opened(location: str, axes: tuple[str, ...]) -> OpenedArray:
    """``location`` opened for reading, kept open for the next reads of this process (the
    ``_MAX_OPEN`` most recently opened stay open)."""
    key = (location, axes)
    with _LOCK:
        found = _OPENED.get(key)
        if found is not None:
            return found
    array = open_array(location, axes)
    with _LOCK:
        if key in _OPENED:  # another thread opened it meanwhile
            array.close()
            return _OPENED[key]
        while len(_OPENED) >= _MAX_OPEN:
            _OPENED.pop(next(iter(_OPENED))).close()
        _OPENED[key] = array
        return array


def close_stored() -> None:
    """Close every file :func:`opened` keeps open in this process."""
    with _LOCK:
        arrays = list(_OPENED.values())
        _OPENED.clear()
    for array in arrays:
        array.close()


def is_stored(value: object) -> bool:
    """Whether ``value`` names a file (a path or a location string) rather than holding data."""
    return isinstance(value, str | os.PathLike)


def digest_stored(
    model: ModelShape,
    inputs: Mapping[str, str | os.PathLike[str]],
    *,
    axes: AxesArg = None,
    sample_id: Hashable = "sample",
    optional: Sequence[str] = (),
) -> StoredSample:
    """``inputs`` (input id → file) as a checked :class:`StoredSample`; no data is read.

    Raises:
        InputError: as :func:`~bioimageio_core.digest.digest_inputs` for arrays; a file that
            cannot be read raises :class:`~bioimageio_core.errors.SourceError`.
    """
    ids = [t.id for t in model.inputs]
    placeholders: dict[str, Tensor] = {}
    files: dict[str, tuple[str, tuple[str, ...]]] = {}
    for tensor_id, value in inputs.items():
        if tensor_id not in ids:
            continue  # digest_inputs names it below
        location = os.fspath(value)
        given = _axes_of(axes, tensor_id)
        array = open_array(location, given, expected_axes=model.tensor(tensor_id).axis_ids)
        try:
            shape, dims, dtype = array.shape, array.dims, array.dtype
        finally:
            array.close()
        files[tensor_id] = (location, dims)
        # a zero-memory stand-in of the file's shape and dtype for every check
        placeholders[tensor_id] = Tensor(np.broadcast_to(np.zeros((), dtype), shape), dims)
    unknown = {k: v for k, v in inputs.items() if k not in ids}
    digested = digest_inputs(
        model, {**placeholders, **unknown}, sample_id=sample_id, optional=optional
    )
    members = {
        m: StoredInput(
            location=files[m][0],
            file_axes=files[m][1],
            dims=t.dims,
            shape=t.shape,
            dtype=t.dtype.str,
        )
        for m, t in digested.members.items()
    }
    return StoredSample(members, digested.id)


def _axes_of(axes: AxesArg, tensor_id: str) -> AxesLike | None:
    if axes is None:
        return None
    if isinstance(axes, Mapping):
        return axes.get(tensor_id)  # type: ignore[no-any-return]
    return axes  # type: ignore[return-value]


__all__ = [
    "StoredInput",
    "StoredSample",
    "close_stored",
    "digest_stored",
    "is_stored",
    "opened",
]
