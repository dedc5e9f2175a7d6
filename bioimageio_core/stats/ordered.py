"""Mean and variance of data read piece by piece, equal bit for bit to :func:`~.reductions.mean_var`.

:func:`~.reductions.mean_var` sums the reduced values of each row in float64 *pieces* of
``65536 // rows`` values, adding the piece sums in order, then does the same for the squared
deviations from the mean. Floating-point addition is not associative, so a different split of
the data (blocks of a volume, parts seen by different workers) would change the last bits. Here
the data may be read in any *segments* of whole pieces, anywhere, in any order: each segment
yields its piece sums (:func:`piece_sums`, then :func:`piece_squares` with the mean); the sums
are added in piece order (:func:`add_in_order`), which reproduces ``mean_var`` exactly. Only one
float64 per row and piece travels (1/8192 of float32 data with one row).

Data with NaN or infinite values: ``mean_var`` then works on the whole data at once, which a
piecewise reading cannot reproduce; :func:`merge_nan_aware` gives the same numbers up to
rounding.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import attrs
import numpy as np

from bioimageio_core.stats.measures import Array
from bioimageio_core.stats.reductions import Moments, mean_var_with_nan, piece_step


@attrs.frozen
class PieceLayout:
    """How :func:`~.reductions.mean_var` cuts ``n`` reduced values per row (``rows`` rows) into
    pieces of :attr:`step` values (the last one shorter)."""

    rows: int
    n: int

    @property
    def step(self) -> int:
        return piece_step(self.rows)

    @property
    def n_pieces(self) -> int:
        return math.ceil(self.n / self.step)

    def segments(self, max_values: int) -> list[tuple[int, int]]:
        """Ranges ``(first piece, stop piece)`` of whole pieces covering every piece, each
        holding about ``max_values`` values of all rows together (at least one piece)."""
        per_segment = max(1, max_values // max(1, self.rows * self.step))
        return [
            (first, min(first + per_segment, self.n_pieces))
            for first in range(0, self.n_pieces, per_segment)
        ]

    def values(self, first: int, stop: int) -> tuple[int, int]:
        """The range of reduced positions (per row) that pieces ``first`` to ``stop`` hold."""
        return first * self.step, min(stop * self.step, self.n)


def _pieces(flat: Array, layout: PieceLayout, first: int) -> Iterable[Array]:
    """``flat`` (the values of whole pieces from piece ``first`` on, rows first) in float64
    pieces, exactly as ``mean_var`` cuts them."""
    start, stop = layout.values(first, first + math.ceil(flat.shape[-1] / layout.step))
    if stop - start != flat.shape[-1]:
        raise ValueError(
            f"{flat.shape[-1]} values do not start at a piece boundary or end at one "
            f"(pieces of {layout.step}, {layout.n} values per row)"
        )
    for offset in range(0, flat.shape[-1], layout.step):
        yield np.asarray(flat[..., offset : offset + layout.step], dtype=np.float64)


def piece_sums(flat: Array, layout: PieceLayout, first: int) -> Array:
    """The float64 sum of every piece of ``flat`` (pieces from ``first`` on), piece index first."""
    with np.errstate(invalid="ignore", over="ignore"):
        sums = [piece.sum(axis=-1) for piece in _pieces(flat, layout, first)]
    return np.stack(sums) if sums else np.zeros((0, *flat.shape[:-1]))


def piece_squares(flat: Array, layout: PieceLayout, first: int, mean: Array) -> Array:
    """The sum of squared deviations from ``mean`` of every piece, piece index first."""
    squares = []
    for piece in _pieces(flat, layout, first):
        centered = piece - mean[..., None]
        squares.append(np.einsum("...i,...i->...", centered, centered))
    return np.stack(squares) if squares else np.zeros((0, *flat.shape[:-1]))


def add_in_order(parts: Iterable[tuple[int, Array]], shape: tuple[int, ...]) -> Array:
    """The running float64 sum of piece sums, added in piece order (``parts``: ``(first piece,
    sums)`` of any segments that together hold every piece once)."""
    total = np.zeros(shape, dtype=np.float64)
    expected = 0
    with np.errstate(invalid="ignore", over="ignore"):
        for first, sums in sorted(parts, key=lambda part: part[0]):
            if first != expected:
                raise ValueError(f"pieces {expected} to {first - 1} are missing")
            for piece in sums:
                total += piece
            expected = first + len(sums)
    return total


def mean_from_total(total: Array, n: int) -> tuple[Array, Array]:
    """(counts, mean) as ``mean_var`` makes them from the sum of ``n`` values per row."""
    counts = np.full(total.shape, float(n))
    return counts, (total / counts if n else total)


def merge_nan_aware(parts: Iterable[Array]) -> tuple[Array, Array, Array]:
    """(counts, mean, M2) of data with NaN or infinite values from its parts (float64 rows
    first), merged with Chan et al.'s update; equal to ``mean_var`` up to rounding."""
    state: Moments | None = None
    for flat in parts:
        n, mean, m2 = mean_var_with_nan(np.asarray(flat, dtype=np.float64))
        if state is None:
            state = Moments(n, mean, m2)
        else:
            state.merge(n, mean, m2)
    if state is None:
        raise ValueError("no data")
    return state.n, state.mean, state.m2


__all__ = [
    "PieceLayout",
    "add_in_order",
    "mean_from_total",
    "merge_nan_aware",
    "piece_squares",
    "piece_sums",
]
