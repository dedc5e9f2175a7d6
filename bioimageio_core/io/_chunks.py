"""The chunk grid of a stored array: which chunks a block touches, covers, or cuts.

Pure functions over shapes and slices (no IO). A *region* is a tuple of ``slice`` objects, one
per axis, with non-negative ``start`` and ``stop`` inside the array and step 1 (what
:func:`normalize_region` returns). Edge chunks are clipped to the array: a chunk is *covered* by
a region when the region holds every element of the chunk that lies inside the array.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from bioimageio_core.errors import OutputError

Region = tuple[slice, ...]
"""One slice per axis, normalised (see :func:`normalize_region`)."""
ChunkIndex = tuple[int, ...]
"""Position of a chunk in the grid (one integer per axis)."""


def _sizes(values: Sequence[int]) -> tuple[int, ...]:
    out = tuple(int(v) for v in values)
    if any(v < 0 for v in out):
        raise ValueError(f"sizes must not be negative (got {out})")
    return out


def normalize_region(key: Any, shape: Sequence[int]) -> Region:
    """``key`` (a slice, an index tuple with slices / ``...`` / ints) as one plain slice per axis.

    Integers select a single element (``slice(i, i + 1)``); negative positions count from the end
    as in numpy. Steps other than 1 are refused (blocks are contiguous).
    """
    shape = tuple(int(s) for s in shape)
    items = list(key) if isinstance(key, tuple) else [key]
    if sum(1 for k in items if k is Ellipsis) > 1:
        raise IndexError("a region may contain '...' only once")
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items[at : at + 1] = [slice(None)] * (len(shape) - len(items) + 1)
    if len(items) > len(shape):
        raise IndexError(f"region {key!r} has more entries than the array has axes {shape}")
    items += [slice(None)] * (len(shape) - len(items))
    region: list[slice] = []
    for axis, (item, size) in enumerate(zip(items, shape, strict=True)):
        if isinstance(item, slice):
            start, stop, step = item.indices(size)
            if step != 1:
                raise IndexError(f"blocks are contiguous: axis {axis} has step {step}")
            region.append(slice(start, max(start, stop)))
        else:
            index = int(item)
            if not -size <= index < size:
                raise IndexError(f"index {index} is outside axis {axis} of size {size}")
            index %= size
            region.append(slice(index, index + 1))
    return tuple(region)


@attrs.frozen
class ChunkGrid:
    """A regular grid of ``chunks`` over an array of ``shape`` (the last chunks may be smaller).

    Writers that share an output must write whole chunks (:meth:`is_aligned`): then no two of
    them ever touch the same chunk. Plan blocks whose output regions are aligned, or create the
    output with ``chunks`` equal to the block shape.
    """

    shape: tuple[int, ...] = attrs.field(converter=_sizes)
    chunks: tuple[int, ...] = attrs.field(converter=_sizes)

    @chunks.validator
    def _check_chunks(self, attribute: Any, value: tuple[int, ...]) -> None:
        if len(value) != len(self.shape):
            raise ValueError(f"chunks {value} and shape {self.shape} differ in length")
        if any(c == 0 and s != 0 for c, s in zip(value, self.shape, strict=True)):
            raise ValueError(f"'chunks' must be positive where the shape is not 0 (got {value})")

    @classmethod
    def single(cls, shape: Sequence[int]) -> ChunkGrid:
        """A grid of one chunk: the whole array."""
        shape_t = tuple(int(s) for s in shape)
        return cls(shape_t, tuple(max(s, 1) for s in shape_t))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """Number of chunks along each axis."""
        return tuple(
            math.ceil(s / c) if c else 0 for s, c in zip(self.shape, self.chunks, strict=True)
        )

    @property
    def n_chunks(self) -> int:
        return math.prod(self.grid_shape)

    def indices(self) -> Iterator[ChunkIndex]:
        """Every chunk index, in C order."""
        return itertools.product(*(range(n) for n in self.grid_shape))

    def chunk_region(self, index: Sequence[int]) -> Region:
        """The elements of chunk ``index`` (clipped to the array)."""
        index_t = tuple(int(i) for i in index)
        if len(index_t) != self.ndim or not all(
            0 <= i < n for i, n in zip(index_t, self.grid_shape, strict=True)
        ):
            raise IndexError(f"chunk {index_t} is outside the grid {self.grid_shape}")
        return tuple(
            slice(i * c, min((i + 1) * c, s))
            for i, c, s in zip(index_t, self.chunks, self.shape, strict=True)
        )

    def _check(self, region: Region) -> None:
        if len(region) != self.ndim or any(
            not (0 <= r.start <= r.stop <= s) for r, s in zip(region, self.shape, strict=True)
        ):
            raise IndexError(f"region {region} does not fit the array of shape {self.shape}")

    def touched(self, region: Region) -> Iterator[ChunkIndex]:
        """Every chunk that shares at least one element with ``region``."""
        self._check(region)
        if any(r.start == r.stop for r in region):
            return iter(())
        ranges = (
            range(r.start // c, (r.stop - 1) // c + 1)
            for r, c in zip(region, self.chunks, strict=True)
        )
        return itertools.product(*ranges)

    def covered(self, region: Region) -> Iterator[ChunkIndex]:
        """Every chunk whose elements all lie inside ``region``."""
        self._check(region)
        if any(r.start == r.stop for r in region):
            return iter(())
        ranges = []
        for r, c, s in zip(region, self.chunks, self.shape, strict=True):
            first = -(-r.start // c)  # ceil: the first chunk starting inside the region
            last = r.stop // c if r.stop < s else math.ceil(s / c)  # exclusive
            ranges.append(range(first, last))
        return itertools.product(*ranges)

    def is_aligned(self, region: Region) -> bool:
        """Whether ``region`` consists of whole chunks (it cuts none; an empty region cuts none)."""
        self._check(region)
        if any(r.start == r.stop for r in region):
            return True
        return all(
            r.start % c == 0 and (r.stop % c == 0 or r.stop == s)
            for r, c, s in zip(region, self.chunks, self.shape, strict=True)
            if r.start != r.stop
        )

    def check_aligned(self, region: Region, where: str = "the output") -> None:
        """Raise :class:`~bioimageio_core.errors.OutputError` when ``region`` cuts a chunk."""
        if not self.is_aligned(region):
            bounds = ", ".join(f"{r.start}:{r.stop}" for r in region)
            raise OutputError(
                f"block [{bounds}] of {where} cuts chunks of shape {self.chunks}: writers that "
                "share an output must write whole chunks",
                hint="plan blocks on the output's chunk grid, or create the output with chunks "
                "equal to the block shape",
            )


def chunk_key(index: Sequence[int]) -> str:
    """The text form of a chunk index (``"0.3.1"``; ``"0"`` for a 0-dimensional array)."""
    return ".".join(str(int(i)) for i in index) or "0"


def parse_chunk_key(key: str, ndim: int) -> ChunkIndex | None:
    """The chunk index ``key`` names (see :func:`chunk_key`), None for any other text."""
    if ndim == 0:
        return () if key == "0" else None
    parts = key.split(".")
    if len(parts) != ndim or not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def default_chunks(
    shape: Sequence[int],
    itemsize: int,
    dims: Sequence[str],
    target_bytes: int = 4 * 2**20,
) -> tuple[int, ...]:
    """A chunk shape for an output of ``shape`` when the caller names none.

    Batch, time and index axes get chunks of 1, channel axes are kept whole, and the largest
    remaining axis is halved until a chunk holds at most ``target_bytes``.
    """
    chunks = [max(int(s), 1) for s in shape]
    for i, d in enumerate(dims):
        if d in ("batch", "time", "index"):
            chunks[i] = 1
    free = [i for i, d in enumerate(dims) if d not in ("batch", "time", "index", "channel")]
    while math.prod(chunks) * itemsize > target_bytes:
        candidates = [i for i in free if chunks[i] > 1] or [i for i in range(len(chunks)) if chunks[i] > 1]
        if not candidates:
            break
        largest = max(candidates, key=lambda i: chunks[i])
        chunks[largest] = math.ceil(chunks[largest] / 2)
    return tuple(chunks)
