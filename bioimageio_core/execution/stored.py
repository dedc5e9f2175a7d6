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
from collections import OrderedDict
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

    def open(self) -> ChunkCache:
        """The file, opened for reading (shared by the threads of this process; see
        :func:`opened`)."""
        return opened(self.location, self.file_axes)

    def read(self, region: Region) -> Array:
        """The data of ``region`` (one slice per model axis), in the model's axis order."""
        by_dim = dict(zip(self.dims, region, strict=True))
        file_region = tuple(by_dim.get(d, slice(0, 1)) for d in self.file_axes)
        data = self.open().read(file_region)
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


CHUNK_CACHE_BYTES = 128 * 2**20
"""Decoded chunks a stored input keeps for the next blocks (per opened file)."""


class ChunkCache:
    """Reads regions of a stored array chunk by chunk, keeping the most recently decoded chunks
    (at most ``max_bytes``): blocks overlap by their halo and cut chunks, so consecutive blocks
    decode each chunk once instead of once per block. Thread-safe; files that are not chunked
    (memory maps) are read directly."""

    def __init__(self, array: OpenedArray, max_bytes: int = CHUNK_CACHE_BYTES) -> None:
        self.array = array
        self.max_bytes = max_bytes
        self._chunks: OrderedDict[tuple[int, ...], Array] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.decoded = 0
        """Chunks decoded so far (a chunk decoded again after it left the cache counts again)."""

    @property
    def nbytes(self) -> int:
        """Bytes of the decoded chunks held now (at most ``max_bytes``, or one chunk)."""
        return self._bytes

    def read(self, region: Region) -> Array:
        """The data of ``region`` (one slice per axis of the file) as a new array."""
        if self.array.chunks is None:
            return self.array.read_block(region)
        grid = self.array.chunk_grid
        region = self.array.region(region)
        out = np.empty(tuple(r.stop - r.start for r in region), self.array.dtype)
        for index in grid.touched(region):
            chunk_region = grid.chunk_region(index)
            data = self._chunk(index, chunk_region)
            common = [
                slice(max(r.start, c.start), min(r.stop, c.stop))
                for r, c in zip(region, chunk_region, strict=True)
            ]
            out[tuple(slice(s.start - r.start, s.stop - r.start) for s, r in zip(common, region, strict=True))] = data[
                tuple(slice(s.start - c.start, s.stop - c.start) for s, c in zip(common, chunk_region, strict=True))
            ]  # fmt: skip
        return out

    def _chunk(self, index: tuple[int, ...], region: Region) -> Array:
        with self._lock:
            found = self._chunks.get(index)
            if found is not None:
                self._chunks.move_to_end(index)
                return found
        data = self.array.read_block(region)
        with self._lock:
            self.decoded += 1
            if index in self._chunks:  # another thread decoded it meanwhile
                return self._chunks[index]
            self._chunks[index] = data
            self._bytes += data.nbytes
            while self._bytes > self.max_bytes and len(self._chunks) > 1:
                _, dropped = self._chunks.popitem(last=False)
                self._bytes -= dropped.nbytes
        return data

    def close(self) -> None:
        with self._lock:
            self._chunks.clear()
            self._bytes = 0
        self.array.close()


_OPENED: OrderedDict[tuple[str, tuple[str, ...]], ChunkCache] = OrderedDict()
_LOCK = threading.Lock()
_MAX_OPEN = 8


def opened(location: str, axes: tuple[str, ...]) -> ChunkCache:
    """``location`` opened for reading, kept open (with its decoded chunks) for the next reads
    of this process (the ``_MAX_OPEN`` most recently used stay open)."""
    key = (location, axes)
    with _LOCK:
        found = _OPENED.get(key)
        if found is not None:
            _OPENED.move_to_end(key)
            return found
    cache = ChunkCache(open_array(location, axes))
    with _LOCK:
        if key in _OPENED:  # another thread opened it meanwhile
            cache.close()
            return _OPENED[key]
        while len(_OPENED) >= _MAX_OPEN:
            _OPENED.popitem(last=False)[1].close()
        _OPENED[key] = cache
        return cache


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
    "CHUNK_CACHE_BYTES",
    "ChunkCache",
    "StoredInput",
    "StoredSample",
    "close_stored",
    "digest_stored",
    "is_stored",
    "opened",
]
