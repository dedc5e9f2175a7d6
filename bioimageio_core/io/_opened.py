"""OpenedArray: an array in a file, with axis ids, read or written region by region."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from bioimageio_core._closing import Closing
from bioimageio_core.io._chunks import ChunkGrid, Region, normalize_region
from bioimageio_core.io._metadata import ArrayMetadata
from bioimageio_core.tensor import Tensor

if TYPE_CHECKING:
    from bioimageio_core.io._format import BlockAccess


def _noop() -> None:  # default closer: nothing to release
    return None


@attrs.frozen(eq=False)
class OpenedArray(Closing):
    """An array stored in a file: an ``np.memmap``, a zarr array, an h5py dataset or an ndarray.

    Nothing is read until it is indexed. Index it like the array (``a[0:64, 0:64]``) or by axis id
    with :meth:`read`; assign with ``a[...] = block`` to write. Use it as a context manager (or call
    :meth:`close`) so that HDF5 files are closed and memory maps flushed.

    Out-of-core code reads with :meth:`read_block`: one block (a tuple of slices) comes into
    memory and nothing else of the file stays there (memory maps are released after each block,
    zarr/HDF5/tiled TIFF decode only the chunks the block touches). :attr:`chunk_grid` is the
    storage chunk grid to plan blocks on; :attr:`metadata` the axes' units and pixel sizes when
    the file records them (OME-Zarr).
    """

    array: Any
    dims: tuple[str, ...]
    location: str
    _close: Callable[[], None] = attrs.field(default=_noop, alias="close")
    chunks: tuple[int, ...] | None = attrs.field(default=None, kw_only=True)
    """The storage chunk shape (None: the file is not chunked, e.g. a memory map)."""
    metadata: ArrayMetadata | None = attrs.field(default=None, kw_only=True)
    """Units, pixel sizes and offsets of the axes, when the file records them."""
    _blocks: BlockAccess | None = attrs.field(default=None, kw_only=True, alias="blocks")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.array.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        dtype: np.dtype[Any] = np.dtype(self.array.dtype)
        return dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def sizes(self) -> dict[str, int]:
        return dict(zip(self.dims, self.shape, strict=True))

    @property
    def chunk_grid(self) -> ChunkGrid:
        """The chunk grid of the stored array (one chunk when the file is not chunked)."""
        if self.chunks is None:
            return ChunkGrid.single(self.shape)
        return ChunkGrid(self.shape, self.chunks)

    def region(self, key: Any) -> Region:
        """``key`` (slices, ints, ``...``) as one slice per axis (see ``normalize_region``)."""
        return normalize_region(key, self.shape)

    def read_block(self, key: Any) -> np.ndarray[Any, Any]:
        """Read one block (slices per axis, ``...`` allowed) into a new in-memory array.

        Only the chunks (tiles, pages) the block touches are read, and nothing of the file stays
        in memory afterwards; integer indices keep their axis (size 1).
        """
        region = self.region(key)
        if self._blocks is not None:
            return self._blocks.read(region)
        if isinstance(self.array, np.ndarray):
            return np.array(self.array[region])  # a copy, not a view of the file
        return np.asarray(self.array[region])

    def __getitem__(self, key: Any) -> Any:
        return self.array[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self.array[key] = value

    def read(self, region: Mapping[str, int | slice] | None = None) -> Tensor:
        """Read ``region`` (axis id → index or slice; all of it by default) as a Tensor.

        Arrays already in memory or memory-mapped are returned as views, never copied.
        """
        region = dict(region or {})
        unknown = set(region) - set(self.dims)
        if unknown:
            raise KeyError(
                f"{self.location} has no axes {sorted(unknown)}; its axes are {self.dims}"
            )
        key = tuple(region.get(d, slice(None)) for d in self.dims)
        dims = [d for d in self.dims if not isinstance(region.get(d, slice(None)), int)]
        if isinstance(self.array, np.ndarray):
            data = self.array[key]
        else:
            data = np.asarray(self.array[key])
        return Tensor(data, dims)

    def flush(self) -> None:
        """Write pending changes to disk (memory maps); other arrays write through."""
        if isinstance(self.array, np.memmap):
            self.array.flush()

    def close(self) -> None:
        """Flush and release the file (safe to call twice)."""
        self.flush()
        self._close()

    def __repr__(self) -> str:
        sizes = ", ".join(f"{d}={s}" for d, s in self.sizes.items())
        return f"OpenedArray({self.location}; {sizes}; dtype={self.dtype})"
