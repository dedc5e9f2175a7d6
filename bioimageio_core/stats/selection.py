"""Exact quantiles of data seen chunk by chunk: histograms of order keys narrowed pass by pass."""

from __future__ import annotations

import copy
from typing import Any

import attrs
import numpy as np

from bioimageio_core.stats.measures import Array, QuantileMethod
from bioimageio_core.stats.reductions import lerp, ranks

DEFAULT_MAX_KEPT_VALUES = 1 << 22
"""Default number of values :class:`StatsAccumulator` keeps per quantile group to finish in one
pass (stored in the data's own width: 16 MiB for float32)."""

_PIECE_VALUES = 1 << 20
"""Values processed at once while counting keys (bounds the temporary arrays of one chunk)."""

_SMALL_BIN = 4096
"""Values of a bin always kept for the exact selection (when ``max_kept`` allows as many)."""

_KEY_BITS_PER_PASS = 16
_MAX_COUNTERS = 1 << 22
"""Histogram counters per quantile group and pass (rows x bins): 32 MiB of int64 at most."""


def _unsigned(dtype: np.dtype[Any]) -> np.dtype[Any]:
    return np.dtype(f"u{dtype.itemsize}")


def _order_keys(data: Array) -> Array:
    """Unsigned integers of ``data``'s width that sort exactly as its values do.

    Signed integers flip the sign bit; floats flip the sign bit of positive values and every bit
    of negative ones (IEEE 754 order); NaN becomes the largest key, after ``+inf``.
    """
    kind = data.dtype.kind
    if kind == "u":
        return data
    u = _unsigned(data.dtype)
    top = u.type(1 << (8 * u.itemsize - 1))
    bits = data.view(u)
    if kind == "i":
        flipped: Array = bits ^ top
        return flipped
    keys: Array = np.where((bits & top) != 0, ~bits, bits | top)
    nan = np.isnan(data)
    if nan.any():
        keys[nan] = np.iinfo(u).max
    return keys


def _key_values(keys: Array, dtype: np.dtype[Any]) -> Array:
    """The float64 values of order keys of data of ``dtype`` (inverse of :func:`_order_keys`)."""
    u = _unsigned(dtype)
    keys = np.asarray(keys, dtype=u)
    if dtype.kind == "u":
        return keys.astype(np.float64)
    top = u.type(1 << (8 * u.itemsize - 1))
    if dtype.kind == "i":
        signed: Array = (keys ^ top).view(dtype).astype(np.float64)
        return signed
    bits = np.where((keys & top) != 0, keys ^ top, ~keys).astype(u)
    return bits.view(dtype).astype(np.float64)


def _digit_bits(rows: int) -> int:
    """Key bits resolved per histogram pass: 16, fewer when many rows share the counters."""
    bits = _KEY_BITS_PER_PASS
    while bits > 4 and rows << bits > _MAX_COUNTERS:
        bits -= 1
    return bits


def _valid_count(piece: Array) -> Array:
    """Non-NaN values per row of a (rows, m) array."""
    if piece.dtype.kind == "f":
        return np.asarray((~np.isnan(piece)).sum(axis=-1), dtype=np.int64)
    return np.full(piece.shape[0], piece.shape[1], dtype=np.int64)


_Job = tuple[int, int, int]
"""(row, key bits resolved, their value): the values of one row whose keys start with a prefix."""


@attrs.define
class _Target:
    """The search for one order statistic of one row: rank ``k`` among the row's values."""

    row: int
    k: int
    depth: int = 0
    """Leading key bits resolved so far."""
    prefix: int = 0
    """Their value."""
    rank: int = 0
    """Rank among the values whose keys start with ``prefix``."""
    count: int = 0
    """How many values of the row start with ``prefix``."""
    key: int | None = None
    """The order statistic's key, once found."""

    @property
    def job(self) -> _Job:
        return (self.row, self.depth, self.prefix)


class QuantileSelection:
    """Exact quantiles of one member over some axes, for data seen chunk by chunk.

    Pass 1 counts the values of each row (kept axes flattened) and histograms the leading bits of
    their order keys (:func:`_order_keys`); 8 and 16 bit data is then resolved exactly (the counts
    are the values' counts). Data that fits ``max_kept`` is also kept and resolved by partitioning
    at the end of pass 1. Otherwise each further pass looks only at the values inside the bins
    that hold a wanted order statistic: it keeps them when they fit ``max_kept`` (and selects
    exactly among them) or histograms their next bits. A data type change between chunks makes
    every value float64 (pass 1 is repeated once).
    """

    def __init__(self, qs: tuple[float, ...], method: QuantileMethod, max_kept: int) -> None:
        self.qs = qs
        self.method: QuantileMethod = method
        self.max_kept = max_kept
        self.dtype: np.dtype[Any] | None = None
        self.promoted = False
        self.rows = 0
        self.passes = 0
        self.first_pass = True
        self.done = False
        self.n: Array | None = None
        self.targets: dict[tuple[int, int], _Target] = {}
        self.plan: dict[_Job, int] = {}
        """Job of this pass → bits to histogram (0: keep the values)."""
        self._restart = False
        self._seen: Array | None = None
        self._hist: dict[_Job, Array] = {}
        self._all_hist: Array | None = None
        self._kept: list[Array] | None = []
        self._kept_size = 0
        self._collected: dict[_Job, list[Array]] = {}

    @property
    def bits(self) -> int:
        assert self.dtype is not None
        return 8 * self.dtype.itemsize

    def _first_bits(self) -> int:
        return min(self.bits, _digit_bits(self.rows))

    # --- one pass ---------------------------------------------------------------------------

    def update(self, data: Array) -> None:
        """Add a chunk: ``data`` has the group's rows first and the reduced values last."""
        rows = data.reshape(-1, data.shape[-1]) if data.ndim != 2 else data
        if self.dtype is None:
            self.dtype, self.rows = rows.dtype, rows.shape[0]
        if rows.dtype != self.dtype:
            if not self.promoted and self.first_pass:
                self.dtype, self.promoted, self._restart = np.dtype(np.float64), True, True
                self._kept, self._all_hist = None, None
            elif not self.promoted:
                raise ValueError(
                    f"the data changed between passes: dtype {rows.dtype} after {self.dtype}"
                )
            rows = rows.astype(np.float64)
        if self._seen is None:
            self._seen = np.zeros(self.rows, dtype=np.int64)
        step = max(1, _PIECE_VALUES // max(1, self.rows))
        for start in range(0, rows.shape[1], step):
            piece = rows[:, start : start + step]
            self._seen += _valid_count(piece)
            if self._restart:
                continue
            keys = _order_keys(piece)
            if self.first_pass:
                self._first_pass_piece(keys)
            else:
                self._later_pass_piece(keys)

    def _first_pass_piece(self, keys: Array) -> None:
        width = self._first_bits()
        digits = (keys >> keys.dtype.type(self.bits - width)).astype(np.intp)
        if self.rows > 1:
            digits += (np.arange(self.rows, dtype=np.intp) << width)[:, None]
        counts = np.bincount(digits.ravel(), minlength=self.rows << width)
        counts = counts.reshape(self.rows, 1 << width)
        self._all_hist = counts if self._all_hist is None else self._all_hist + counts
        if self._kept is not None and width < self.bits:
            if self._kept_size + keys.size <= self.max_kept:
                self._kept.append(np.array(keys))
                self._kept_size += keys.size
            else:
                self._kept, self._kept_size = None, 0

    def _later_pass_piece(self, keys: Array) -> None:
        kind = keys.dtype.type
        heads: dict[tuple[int, int], Array] = {}  # leading bits of a row's keys, per depth
        for (row, depth, prefix), width in self.plan.items():
            values = keys[row]
            shift = self.bits - depth
            if (row, depth) not in heads:
                heads[(row, depth)] = values >> kind(shift)
            inside = values[heads[(row, depth)] == prefix]
            if not inside.size:
                continue
            job = (row, depth, prefix)
            if width == 0:
                self._collected.setdefault(job, []).append(inside)
                continue
            digits = ((inside >> kind(shift - width)) & kind((1 << width) - 1)).astype(np.intp)
            counts = np.bincount(digits, minlength=1 << width)
            previous = self._hist.get(job)
            self._hist[job] = counts if previous is None else previous + counts

    # --- between passes ---------------------------------------------------------------------

    def end_pass(self) -> None:
        """Use what this pass found; afterwards :attr:`done` or the next pass is planned."""
        self.passes += 1
        seen = self._seen if self._seen is not None else np.zeros(self.rows, dtype=np.int64)
        self._seen = None
        if self.dtype is None:  # no data at all
            self.done = True
            return
        if self._restart:
            self._restart = False
            self._kept, self._kept_size, self._all_hist = [], 0, None
            return
        if self.first_pass:
            self.first_pass = False
            self.n = seen
            self._start_targets()
            if self._kept is not None and self._kept_size:
                self._resolve_from_kept(np.concatenate(self._kept, axis=-1))
            elif self._all_hist is not None:
                width = self._first_bits()
                for t in self.targets.values():
                    self._descend(t, self._all_hist[t.row], width)
            self._kept, self._all_hist = None, None
        else:
            assert self.n is not None
            if not np.array_equal(seen, self.n):
                raise ValueError(
                    f"the data changed between passes: {int(seen.sum())} values instead of "
                    f"{int(self.n.sum())}"
                )
            for job, parts in self._collected.items():
                values = np.concatenate(parts)
                waiting = [t for t in self.targets.values() if t.key is None and t.job == job]
                values.partition(sorted({t.rank for t in waiting}))
                for t in waiting:
                    t.key = int(values[t.rank])
            for t in self.targets.values():
                width = self.plan.get(t.job, 0)
                if t.key is None and width:
                    counts = self._hist.get(t.job, np.zeros(1 << width, dtype=np.int64))
                    self._descend(t, counts, width)
        self._hist, self._collected = {}, {}
        self._plan_next()

    def _start_targets(self) -> None:
        assert self.n is not None
        for q in self.qs:
            for row in np.flatnonzero(self.n > 0):
                lower, upper, _ = ranks(self.n[row], q, self.method)
                for k in {int(lower), int(upper)}:
                    self.targets.setdefault((int(row), k), _Target(int(row), k, rank=k))

    def _resolve_from_kept(self, keys: Array) -> None:
        for row in range(self.rows):
            waiting = [t for t in self.targets.values() if t.row == row]
            if not waiting:
                continue
            values = keys[row]
            values.partition(sorted({t.k for t in waiting}))
            for t in waiting:
                t.key = int(values[t.k])

    def _descend(self, t: _Target, counts: Array, width: int) -> None:
        """Move ``t`` into the bin of ``counts`` (the next ``width`` bits) that holds its rank."""
        cumulative = np.cumsum(counts)
        b = int(np.searchsorted(cumulative, t.rank, side="right"))
        t.rank -= int(cumulative[b - 1]) if b else 0
        t.count = int(counts[b])
        t.prefix = (t.prefix << width) | b
        t.depth += width
        if t.depth >= self.bits:
            t.key = t.prefix

    def _plan_next(self) -> None:
        counts: dict[_Job, int] = {}
        for t in self.targets.values():
            if t.key is None:
                counts[t.job] = t.count
        self.plan = {}
        budget = self.max_kept
        small = min(_SMALL_BIN, self.max_kept)
        for job, count in sorted(counts.items(), key=lambda item: item[1]):
            if count <= max(budget, small):
                self.plan[job] = 0
                budget -= count
            else:
                self.plan[job] = min(_digit_bits(len(counts)), self.bits - job[1])
        self.done = not self.plan

    # --- work split among workers -------------------------------------------------------------

    def spawn(self) -> QuantileSelection:
        """An empty selection in the same pass: the plan of this pass without its findings."""
        twin = QuantileSelection(self.qs, self.method, self.max_kept)
        if self.passes:
            twin.__dict__.update(
                {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "_seen"}
            )
            twin._seen, twin._hist, twin._collected = None, {}, {}
        return twin

    def merge(self, theirs: QuantileSelection) -> None:
        """Add what ``theirs`` (a :meth:`spawn` of this selection) saw in the current pass."""
        if theirs.dtype is None:
            return
        if self.dtype is None:
            self.dtype, self.rows, self.promoted = theirs.dtype, theirs.rows, theirs.promoted
        if theirs.dtype != self.dtype:
            raise ValueError(
                f"the parts hold data of different types ({self.dtype}, {theirs.dtype}); cast them "
                "to one type first"
            )
        self._restart = self._restart or theirs._restart
        if theirs._seen is not None:
            self._seen = theirs._seen.copy() if self._seen is None else self._seen + theirs._seen
        if theirs._all_hist is not None:
            self._all_hist = (
                theirs._all_hist.copy()
                if self._all_hist is None
                else self._all_hist + theirs._all_hist
            )
        if self._kept is not None and theirs._kept is not None:
            if self._kept_size + theirs._kept_size <= self.max_kept:
                self._kept = [*self._kept, *theirs._kept]
                self._kept_size += theirs._kept_size
            else:
                self._kept, self._kept_size = None, 0
        elif theirs._kept is None:
            self._kept, self._kept_size = None, 0
        for job, counts in theirs._hist.items():
            previous = self._hist.get(job)
            self._hist[job] = counts.copy() if previous is None else previous + counts
        for job, parts in theirs._collected.items():
            self._collected.setdefault(job, []).extend(parts)

    # --- results ----------------------------------------------------------------------------

    def values(self) -> Array:
        """Quantiles (float64), the quantile index first, then the rows."""
        assert self.done and self.n is not None and self.dtype is not None
        out = np.full((len(self.qs), self.rows), np.nan)
        for i, q in enumerate(self.qs):
            for row in np.flatnonzero(self.n > 0):
                lower, upper, gamma = ranks(self.n[row], q, self.method)
                keys = [self.targets[(int(row), int(k))].key for k in (lower, upper)]
                a, b = _key_values(np.array(keys, dtype=np.uint64), self.dtype)
                if self.method == "inverted_cdf":
                    out[i, row] = a
                else:
                    out[i, row] = lerp(np.asarray(a), np.asarray(b), gamma)
        return out
