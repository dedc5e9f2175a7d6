"""Block access to arrays stored uncompressed in a file, keeping memory bounded.

A memory map of a whole file keeps every page it touched resident (counted in the process's
memory) until it is unmapped. :class:`MappedBlocks` maps only the slab of the file a block lies
in, copies the block in or out, and unmaps it again, so reading or writing a volume block by
block never holds more than one block's pages. :class:`TiledBlocks` does the same for the tiles
of an uncompressed tiled TIFF, with one read or write per tile. :class:`BlockArray` makes either
indexable like an array.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np

from bioimageio_core.io._chunks import Region, normalize_region


class MappedBlocks:
    """Blocks of an array of ``shape`` and ``dtype`` stored contiguously at ``offset`` bytes in
    ``path`` (C or Fortran ``order``), read and written through short-lived memory maps."""

    def __init__(
        self,
        path: Path,
        offset: int,
        shape: Sequence[int],
        dtype: np.dtype[Any],
        *,
        order: Literal["C", "F"] = "C",
        writable: bool = False,
    ) -> None:
        self.path = path
        self.offset = int(offset)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.order = order
        self.writable = writable

    def _slab(
        self, region: Region, mode: Literal["r", "r+"]
    ) -> tuple[np.memmap[Any, Any], Region]:
        """The memory map of the rows (C order: along the first axis) ``region`` lies in, and
        ``region`` relative to it."""
        if not self.shape:
            return np.memmap(self.path, self.dtype, mode, self.offset, shape=()), region
        axis = 0 if self.order == "C" else len(self.shape) - 1
        rows = region[axis]
        row_bytes = math.prod(s for i, s in enumerate(self.shape) if i != axis) * self.dtype.itemsize
        shape = list(self.shape)
        shape[axis] = max(rows.stop - rows.start, 1)
        mapped = np.memmap(
            self.path,
            self.dtype,
            mode,
            self.offset + rows.start * row_bytes,
            shape=tuple(shape),
            order=self.order,
        )
        local = list(region)
        local[axis] = slice(0, rows.stop - rows.start)
        return mapped, tuple(local)

    def read(self, region: Region) -> np.ndarray[Any, Any]:
        if any(r.start == r.stop for r in region):
            return np.empty(tuple(r.stop - r.start for r in region), self.dtype)
        mapped, local = self._slab(region, "r")
        try:
            return np.array(mapped[local])
        finally:
            del mapped  # unmapped: none of its pages stays in this process

    def write(self, region: Region, data: np.ndarray[Any, Any]) -> None:
        if not self.writable:
            raise PermissionError(f"{self.path} is open for reading only")
        if any(r.start == r.stop for r in region):
            return
        mapped, local = self._slab(region, "r+")
        try:
            mapped[local] = data  # the page cache keeps it after unmapping; commit syncs the file
        finally:
            del mapped


class TiledBlocks:
    """Blocks of an uncompressed tiled TIFF: ``shape`` = pages… × height × width, tiles of
    ``tile`` (height, width) stored one after another from ``page_offsets[p]`` for page ``p``
    (tiles row by row, edge tiles padded to the full tile size)."""

    def __init__(
        self,
        path: Path,
        page_offsets: Sequence[int],
        shape: Sequence[int],
        tile: tuple[int, int],
        dtype: np.dtype[Any],
        *,
        writable: bool = False,
    ) -> None:
        self.path = path
        self.page_offsets = [int(o) for o in page_offsets]
        self.shape = tuple(int(s) for s in shape)
        self.tile = tile
        self.dtype = np.dtype(dtype)
        self.tiles_x = math.ceil(self.shape[-1] / tile[1])
        self.tile_bytes = tile[0] * tile[1] * self.dtype.itemsize
        self._file: BinaryIO | None = None
        self._lock = threading.Lock()  # one file position; tiles shared by two blocks
        self.writable = writable

    def _fh(self) -> BinaryIO:
        if self._file is None:
            self._file = open(self.path, "r+b" if self.writable else "rb")
        return self._file

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def _pieces(self, region: Region) -> Any:
        """Per page and tile the region touches: (file offset, slice of the tile, slice of the
        block), each slice as (rows, columns)."""
        lead, (ys, xs) = region[:-2], region[-2:]
        lead_shape = self.shape[:-2]
        th, tw = self.tile
        for lead_index in itertools.product(*(range(r.start, r.stop) for r in lead)):
            page = int(np.ravel_multi_index(lead_index, lead_shape)) if lead_shape else 0
            block_lead = tuple(i - r.start for i, r in zip(lead_index, lead, strict=True))
            for ty in range(ys.start // th, (ys.stop - 1) // th + 1):
                for tx in range(xs.start // tw, (xs.stop - 1) // tw + 1):
                    y0, y1 = max(ys.start, ty * th), min(ys.stop, (ty + 1) * th)
                    x0, x1 = max(xs.start, tx * tw), min(xs.stop, (tx + 1) * tw)
                    offset = self.page_offsets[page] + (ty * self.tiles_x + tx) * self.tile_bytes
                    in_tile = (slice(y0 - ty * th, y1 - ty * th), slice(x0 - tx * tw, x1 - tx * tw))
                    in_block = (
                        *block_lead,
                        slice(y0 - ys.start, y1 - ys.start),
                        slice(x0 - xs.start, x1 - xs.start),
                    )
                    yield offset, in_tile, in_block

    def _read_tile(self, offset: int) -> np.ndarray[Any, Any]:
        fh = self._fh()
        fh.seek(offset)
        raw = fh.read(self.tile_bytes)
        return np.frombuffer(raw, self.dtype).reshape(self.tile).copy()

    def read(self, region: Region) -> np.ndarray[Any, Any]:
        out = np.empty(tuple(r.stop - r.start for r in region), self.dtype)
        if out.size:
            with self._lock:
                for offset, in_tile, in_block in self._pieces(region):
                    out[in_block] = self._read_tile(offset)[in_tile]
        return out

    def write(self, region: Region, data: np.ndarray[Any, Any]) -> None:
        if not self.writable:
            raise PermissionError(f"{self.path} is open for reading only")
        if not data.size:
            return
        th, tw = self.tile
        with self._lock:  # a tile shared with another block is read, changed and written whole
            fh = self._fh()
            for offset, in_tile, in_block in self._pieces(region):
                rows, cols = in_tile
                whole = rows.start == 0 and cols.start == 0 and rows.stop - rows.start == th
                whole = whole and cols.stop - cols.start == tw
                tile = np.zeros(self.tile, self.dtype) if whole else self._read_tile(offset)
                tile[in_tile] = data[in_block]
                fh.seek(offset)
                fh.write(tile.tobytes())
            fh.flush()  # durability is the commit's job (the staged file is synced there)


class BlockArray:
    """An array-like over a block access: ``a[key]`` reads (integer indices drop their axis, as
    in numpy), ``a[key] = value`` writes."""

    def __init__(self, blocks: Any, shape: Sequence[int], dtype: np.dtype[Any]) -> None:
        self.blocks = blocks
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray[Any, Any]:
        region = normalize_region(key, self.shape)
        data = self.blocks.read(region)
        items = key if isinstance(key, tuple) else (key,)
        if Ellipsis in items:
            at = items.index(Ellipsis)
            items = (*items[:at], *[slice(None)] * (self.ndim - len(items) + 1), *items[at + 1 :])
        dropped = tuple(i for i, k in enumerate(items) if not isinstance(k, slice))
        result: np.ndarray[Any, Any] = data.squeeze(axis=dropped) if dropped else data
        return result

    def __setitem__(self, key: Any, value: Any) -> None:
        region = normalize_region(key, self.shape)
        shape = tuple(r.stop - r.start for r in region)
        self.blocks.write(region, np.broadcast_to(np.asarray(value, self.dtype), shape))
