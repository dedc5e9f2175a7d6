"""An array seen with other axes: the stored axes reordered, and singleton axes added.

OME-Zarr fixes the order of axes (time, channel, space) and has no batch axis, while a model's
output has the axes its description declares. :class:`AxesView` lets a writer index the output
in the model's axes while the store keeps the OME-Zarr layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bioimageio_core.io._chunks import Region, normalize_region


class AxesView:
    """``array`` (axes ``stored``) indexed with axes ``dims``.

    ``stored`` is ``dims`` reordered, without some axes of size 1 (those are added back here).
    Indexing takes and returns numpy arrays in ``dims`` order; reads and writes go to ``array``.
    """

    def __init__(self, array: Any, dims: Sequence[str], stored: Sequence[str]) -> None:
        self.base = array
        self.dims = tuple(dims)
        self.stored = tuple(stored)
        missing = [d for d in self.stored if d not in self.dims]
        if missing or len(set(self.stored)) != len(self.stored):
            raise ValueError(f"stored axes {self.stored} are not a subset of {self.dims}")
        self.added = tuple(d for d in self.dims if d not in self.stored)
        base_sizes = dict(zip(self.stored, (int(s) for s in array.shape), strict=True))
        self.shape = tuple(base_sizes.get(d, 1) for d in self.dims)
        self.dtype = np.dtype(array.dtype)
        self._kept = [d for d in self.dims if d in self.stored]  # dims order, stored axes only
        self._to_stored = [self._kept.index(d) for d in self.stored]
        self._from_stored = [self.stored.index(d) for d in self._kept]

    @property
    def ndim(self) -> int:
        return len(self.dims)

    def stored_chunks(self, chunks: Sequence[int]) -> tuple[int, ...]:
        """Chunk shape of the stored array for a chunk shape in ``dims`` order."""
        by_dim = dict(zip(self.dims, chunks, strict=True))
        return tuple(int(by_dim[d]) for d in self.stored)

    def view_chunks(self, stored_chunks: Sequence[int]) -> tuple[int, ...]:
        """Chunk shape in ``dims`` order for the stored array's chunk shape."""
        by_dim = dict(zip(self.stored, stored_chunks, strict=True))
        return tuple(int(by_dim.get(d, 1)) for d in self.dims)

    def _stored_region(self, key: Any) -> tuple[Region, Region]:
        region = normalize_region(key, self.shape)
        by_dim = dict(zip(self.dims, region, strict=True))
        return region, tuple(by_dim[d] for d in self.stored)

    def __getitem__(self, key: Any) -> np.ndarray[Any, Any]:
        _, stored = self._stored_region(key)
        data = np.asarray(self.base[stored]).transpose(self._from_stored)
        added_axes = tuple(i for i, d in enumerate(self.dims) if d in self.added)
        return np.expand_dims(data, added_axes) if added_axes else data

    def __setitem__(self, key: Any, value: Any) -> None:
        region, stored = self._stored_region(key)
        shape = tuple(r.stop - r.start for r in region)
        data = np.broadcast_to(np.asarray(value, dtype=self.dtype), shape)
        added_axes = tuple(i for i, d in enumerate(self.dims) if d in self.added)
        if added_axes:  # axes of size 1 here (regions along them are 0:1)
            data = data.squeeze(axis=added_axes)
        self.base[stored] = np.ascontiguousarray(data.transpose(self._to_stored))
