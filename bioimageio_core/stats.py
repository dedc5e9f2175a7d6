"""Statistics (measures) of tensors, per sample and per dataset.

A *measure* is a small frozen value type naming what to compute (mean, std, var or a quantile),
of which member (tensor id) and over which axes (``None``: all axes). Measures are hashable and
are the keys of a sample's statistics mapping. A measure's value is a ``float`` when it reduces
every axis (``axes=None``), else a :class:`~bioimageio_core.tensor.Tensor` over the axes that are
kept, in the member's axis order.

Numerics (the same as bioimageio.core so that normalised numbers agree):

* every computation accumulates in float64 (data is read in its own dtype, chunk by chunk);
* ``mean`` skips NaN; ``var``/``std`` are the population variance/deviation (ddof 0) and are NaN
  when a reduced value is NaN (``inf`` gives NaN variance); quantiles skip NaN;
* sample quantiles use ``method`` ``"linear"`` (numpy's default, type 7) or ``"inverted_cdf"``
  (type 1); dataset quantiles use ``"linear"``.

Three ways to compute measures:

* :func:`compute_sample_measures`: one sample in memory (the pipeline's per-sample statistics);
* :class:`StatsAccumulator` (and :func:`compute_dataset_measures`, :func:`accumulate_measures`):
  data of any size seen chunk by chunk, in passes, with bounded memory and exact results
  (quantiles equal ``numpy.quantile`` of the whole data in float64, bit for bit): the mechanism
  for dataset statistics computed before prediction and for data larger than memory;
* :class:`DatasetStatsCalculator` / :class:`StatsCalculator`: *running* dataset statistics, one
  pass, updated sample by sample (bioimageio.core's semantics, used when a pipeline predicts
  without precomputed dataset statistics). Mean and variance are merged with Chan's parallel
  update; quantiles are exact while the kept values stay below ``max_quantile_values`` per
  measure group, then the calculator switches to the approximation bioimageio.core always uses
  (the average of per-sample quantiles weighted by value count; a warning is emitted once).

Pure functions and small value types: no IO, no plugins.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, TypeAlias

import attrs
import numpy as np

from bioimageio_core.tensor import Tensor

BATCH_AXIS = "batch"
QuantileMethod: TypeAlias = Literal["linear", "inverted_cdf"]
MeasureValue: TypeAlias = "float | Tensor"
Array: TypeAlias = "np.ndarray[Any, Any]"


def _axes_converter(value: Iterable[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(sorted({str(a) for a in value}))


def _not_batch(instance: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...] | None) -> None:
    if value is not None and BATCH_AXIS in value:
        raise ValueError(
            f"{type(instance).__name__}.axes must not contain {BATCH_AXIS!r} (got {value}); "
            "a statistic over the batch axis is a dataset measure"
        )


def _none_or_batch(
    instance: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...] | None
) -> None:
    if value is not None and BATCH_AXIS not in value:
        raise ValueError(
            f"{type(instance).__name__}.axes must be None or contain {BATCH_AXIS!r} (got {value}); "
            "a statistic that keeps the batch axis is a sample measure"
        )


def _check_q(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{type(instance).__name__}.q must be in [0, 1] (got {value})")


def _check_method(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in ("linear", "inverted_cdf"):
        raise ValueError(
            f"{type(instance).__name__}.method must be 'linear' or 'inverted_cdf' (got {value!r})"
        )


@attrs.frozen
class SampleMean:
    """Mean of one sample's member over ``axes`` (None: all axes), NaN skipped."""

    member_id: str
    axes: tuple[str, ...] | None = attrs.field(
        default=None, converter=_axes_converter, validator=_not_batch
    )


@attrs.frozen
class SampleVar:
    """Population variance of one sample's member over ``axes``."""

    member_id: str
    axes: tuple[str, ...] | None = attrs.field(
        default=None, converter=_axes_converter, validator=_not_batch
    )


@attrs.frozen
class SampleStd:
    """Population standard deviation of one sample's member over ``axes``."""

    member_id: str
    axes: tuple[str, ...] | None = attrs.field(
        default=None, converter=_axes_converter, validator=_not_batch
    )


@attrs.frozen
class SampleQuantile:
    """Quantile ``q`` (in [0, 1]) of one sample's member over ``axes``, NaN skipped."""

    member_id: str
    q: float = attrs.field(converter=float, validator=_check_q)
    axes: tuple[str, ...] | None = attrs.field(
        default=None, converter=_axes_converter, validator=_not_batch
    )
    method: QuantileMethod = attrs.field(default="linear", validator=_check_method)


@attrs.frozen
class DatasetMean:
    """Mean over every sample seen, reducing ``axes`` (None: all axes; else must contain batch)."""

    member_id: str
    axes: tuple[str, ...] | None = attrs.field(
        default=None, converter=_axes_converter, validator=_none_or_batch
    )


@attrs.frozen
class DatasetVar:
    """Population variance over every sample seen."""

    member_id: str
    axes: tuple[str, ...] | None = attrs.field(
        default=None, converter=_axes_converter, validator=_none_or_batch
    )


@attrs.frozen
class DatasetStd:
    """Population standard deviation over every sample seen."""

    member_id: str
    axes: tuple[str, ...] | None = attrs.field(
        default=None, converter=_axes_converter, validator=_none_or_batch
    )


@attrs.frozen
class DatasetQuantile:
    """Quantile ``q`` over every sample seen (method linear; see the module docstring)."""

    member_id: str
    q: float = attrs.field(converter=float, validator=_check_q)
    axes: tuple[str, ...] | None = attrs.field(
        default=None, converter=_axes_converter, validator=_none_or_batch
    )


SampleMeasure: TypeAlias = "SampleMean | SampleVar | SampleStd | SampleQuantile"
DatasetMeasure: TypeAlias = "DatasetMean | DatasetVar | DatasetStd | DatasetQuantile"
Measure: TypeAlias = "SampleMeasure | DatasetMeasure"

SAMPLE_MEASURES = (SampleMean, SampleVar, SampleStd, SampleQuantile)
DATASET_MEASURES = (DatasetMean, DatasetVar, DatasetStd, DatasetQuantile)


# --------------------------------------------------------------------------------------------
# reductions


def _reduced_view(tensor: Tensor, axes: tuple[str, ...] | None) -> tuple[np.ndarray[Any, Any], tuple[str, ...]]:
    """The tensor's data (its own dtype) with the kept axes first and all reduced axes flattened
    into the last one: a view of the data where the layout allows, else a copy."""
    if axes is None:
        reduced = tensor.dims
    else:
        missing = [a for a in axes if a not in tensor.dims]
        if missing:
            raise KeyError(
                f"cannot reduce over axes {list(missing)}: the tensor's axes are {tensor.dims}"
            )
        reduced = tuple(d for d in tensor.dims if d in axes)
    kept = tuple(d for d in tensor.dims if d not in reduced)
    moved = np.asarray(tensor.transpose(kept + reduced).data)
    if moved.dtype.kind == "b":
        moved = moved.astype(np.uint8)
    elif moved.dtype.kind not in "iuf":
        moved = moved.astype(np.float64)
    return moved.reshape(*moved.shape[: len(kept)], -1), kept


def _wrap(values: np.ndarray[Any, Any], kept: tuple[str, ...], axes: tuple[str, ...] | None) -> MeasureValue:
    if axes is None:
        return float(values)
    return Tensor(values, kept)


_CHUNK_VALUES = 1 << 16
"""Values per chunk of the float64 reductions: small enough to stay in cache, large enough that
the loop over chunks costs nothing."""


def _chunks(flat: np.ndarray[Any, Any]) -> Iterator[np.ndarray[Any, Any]]:
    """``flat`` in float64 pieces along its last axis."""
    rows = max(1, int(np.prod(flat.shape[:-1], dtype=np.int64)))
    step = max(1, _CHUNK_VALUES // rows)
    for start in range(0, flat.shape[-1], step):
        yield np.asarray(flat[..., start : start + step], dtype=np.float64)


def _mean_var(flat: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(count of non-NaN values, NaN-skipping mean, population M2 propagating NaN) over the last axis.

    Accumulates in float64 chunk by chunk, so the data is never copied whole; data with NaN or
    infinite values takes the slower NaN-aware path.
    """
    n_total = flat.shape[-1]
    total = np.zeros(flat.shape[:-1], dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: the NaN path below
        for chunk in _chunks(flat):
            total += chunk.sum(axis=-1)
    if not np.all(np.isfinite(total)):
        return _mean_var_with_nan(np.asarray(flat, dtype=np.float64))
    n = np.full(flat.shape[:-1], float(n_total))
    mean = total / n if n_total else total
    m2 = np.zeros_like(total)
    for chunk in _chunks(flat):
        centered = chunk - mean[..., None]
        m2 += np.einsum("...i,...i->...", centered, centered)
    return n, mean, m2


def _mean_var_with_nan(flat: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """:func:`_mean_var` of float64 data that may hold NaN or infinite values."""
    valid = ~np.isnan(flat)
    n = valid.sum(axis=-1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.where(valid, flat, 0.0).sum(axis=-1)
        mean = np.where(n > 0, total / np.where(n > 0, n, 1.0), 0.0)
        centered = flat - mean[..., None]
        m2 = np.einsum("...i,...i->...", centered, centered)
    return n, mean, m2


def _nan_where_empty(n: np.ndarray[Any, Any], value: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.where(n > 0, value, np.nan)


def _quantiles(
    flat: np.ndarray[Any, Any],
    qs: Sequence[float],
    method: QuantileMethod,
    *,
    overwrite: bool = False,
) -> np.ndarray[Any, Any]:
    """Quantiles over the last axis, NaN skipped; result (float64) has the quantile index first.

    NaN-free data is ordered in its own dtype (8 and 16 bit integers by counting, others by
    partitioning) and interpolated in float64: the numbers equal ``np.quantile`` of the float64
    data. ``overwrite``: ``flat`` may be reordered in place (saves a copy).
    """
    n = flat.shape[-1]
    if n == 0:
        return np.full((len(qs), *flat.shape[:-1]), np.nan)
    if flat.dtype.kind == "f" and flat.size and np.isnan(flat.min()):  # min propagates NaN
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices give NaN
            return np.asarray(  # in float64, as the NaN-free path
                np.nanquantile(flat.astype(np.float64), list(qs), axis=-1, method=method)
            )
    q = np.asarray(qs, dtype=np.float64)
    lower, upper, gamma = _ranks(np.intp(n), q, method)
    if method == "inverted_cdf":
        return _order_statistics(flat, lower, overwrite)
    values = _order_statistics(flat, np.concatenate([lower, upper]), overwrite)
    shape = (-1, *([1] * (flat.ndim - 1)))
    return _lerp(values[: len(q)], values[len(q) :], gamma.reshape(shape))


def _ranks(
    n: np.ndarray[Any, Any] | np.integer[Any], q: np.ndarray[Any, Any] | float, method: QuantileMethod
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The 0-based ranks of the order statistics below and above quantile ``q`` of ``n`` (>= 1)
    values, and the interpolation weight of the upper one, by numpy's rules (``n`` and ``q``
    broadcast). For ``inverted_cdf`` both ranks are the one value numpy picks."""
    n = np.asarray(n, dtype=np.intp)
    q = np.asarray(q, dtype=np.float64)
    if method == "inverted_cdf":  # numpy's index rule for this discrete method
        index = n * q - 1
        below = np.floor(index)
        k = np.clip(np.where(index == below, below, below + 1), 0, n - 1).astype(np.intp)
        return k, k, np.zeros(k.shape)
    virtual = q * (n - 1)
    below = np.floor(virtual)
    lower = below.astype(np.intp)
    upper = np.minimum(lower + 1, n - 1)
    return lower, upper, virtual - below


def _lerp(
    a: np.ndarray[Any, Any], b: np.ndarray[Any, Any], gamma: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """numpy's interpolation between neighbouring order statistics, step by step (same rounding)."""
    with np.errstate(invalid="ignore"):  # inf - inf is NaN, as in numpy
        diff = b - a
        result: Array = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
    return result


_COUNTING_MIN_FACTOR = 2
"""8 and 16 bit integers are counted (not partitioned) from this many values per possible value:
counting is linear in the values plus the 256 or 65536 counters."""


def _order_statistics(
    flat: np.ndarray[Any, Any], ks: np.ndarray[Any, Any], overwrite: bool
) -> np.ndarray[Any, Any]:
    """The ``ks``-th smallest values (0-based) along the last axis, as float64 with the ``ks``
    index first; ``flat`` holds no NaN."""
    n = flat.shape[-1]
    bits = flat.dtype.itemsize * 8
    if flat.dtype.kind in "iu" and bits <= 16 and n >= _COUNTING_MIN_FACTOR << bits:
        return _counted_order_statistics(flat, ks)
    kth = np.unique(ks)
    if overwrite:
        flat.partition(kth, axis=-1)
        part = flat
    else:
        part = np.partition(flat, kth, axis=-1)
    return np.moveaxis(np.asarray(part[..., ks], dtype=np.float64), -1, 0)


def _counted_order_statistics(
    flat: np.ndarray[Any, Any], ks: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """Order statistics of 8 or 16 bit integers by counting each value: one pass, no sort."""
    bits = flat.dtype.itemsize * 8
    codes = flat
    offset = 0
    if flat.dtype.kind == "i":  # flipping the sign bit maps signed order onto unsigned codes
        offset = 1 << (bits - 1)
        unsigned = np.dtype(f"u{flat.dtype.itemsize}")
        codes = flat.view(unsigned) ^ unsigned.type(offset)
    rows = codes.reshape(-1, flat.shape[-1])
    out = np.empty((len(ks), rows.shape[0]), dtype=np.float64)
    for r, row in enumerate(rows):
        cumulative = np.cumsum(np.bincount(row, minlength=1 << bits))
        out[:, r] = np.searchsorted(cumulative, ks, side="right") - offset
    return out.reshape(len(ks), *flat.shape[:-1])


def compute_sample_measures(
    members: Mapping[str, Tensor], measures: Iterable[SampleMeasure]
) -> dict[SampleMeasure, MeasureValue]:
    """Compute sample measures of one sample (``members``: tensor by member id).

    Measures over the same member and axes share one pass (mean/var/std) or one sort (quantiles).
    """
    result: dict[SampleMeasure, MeasureValue] = {}
    moments: dict[tuple[str, tuple[str, ...] | None], list[SampleMeasure]] = {}
    quantiles: dict[tuple[str, tuple[str, ...] | None, str], list[SampleQuantile]] = {}
    for m in measures:
        if m.member_id not in members:
            raise KeyError(
                f"statistic {m} refers to member {m.member_id!r}, but the sample has "
                f"{sorted(members)}"
            )
        if isinstance(m, SampleQuantile):
            quantiles.setdefault((m.member_id, m.axes, m.method), []).append(m)
        else:
            moments.setdefault((m.member_id, m.axes), []).append(m)

    for (member_id, axes), group in moments.items():
        flat, kept = _reduced_view(members[member_id], axes)
        n, mean, m2 = _mean_var(flat)
        with np.errstate(invalid="ignore", divide="ignore"):
            var = _nan_where_empty(n, m2 / np.where(n > 0, n, 1.0))
        mean = _nan_where_empty(n, mean)
        for m in group:
            if isinstance(m, SampleMean):
                result[m] = _wrap(mean, kept, axes)
            elif isinstance(m, SampleVar):
                result[m] = _wrap(var, kept, axes)
            else:
                result[m] = _wrap(np.sqrt(var), kept, axes)

    for (member_id, axes, method), qgroup in quantiles.items():
        data = members[member_id].data
        flat, kept = _reduced_view(members[member_id], axes)
        values = _quantiles(
            flat,
            [m.q for m in qgroup],
            method,  # type: ignore[arg-type]
            overwrite=not np.may_share_memory(flat, data),
        )
        for m, v in zip(qgroup, values, strict=True):
            result[m] = _wrap(v, kept, axes)
    return result


# --------------------------------------------------------------------------------------------
# dataset statistics


def _dataset_view(tensor: Tensor, axes: tuple[str, ...] | None) -> tuple[np.ndarray[Any, Any], tuple[str, ...]]:
    # dataset axes are None or contain batch; a tensor without a batch axis is one sample
    if axes is not None:
        axes = tuple(a for a in axes if a != BATCH_AXIS or BATCH_AXIS in tensor.dims)
    return _reduced_view(tensor, axes)


@attrs.define
class _Moments:
    n: np.ndarray[Any, Any]
    mean: np.ndarray[Any, Any]
    m2: np.ndarray[Any, Any]

    def merge(self, n_b: np.ndarray[Any, Any], mean_b: np.ndarray[Any, Any], m2_b: np.ndarray[Any, Any]) -> None:
        """Chan et al.'s parallel update (the formula bioimageio.core uses)."""
        n = self.n + n_b
        with np.errstate(invalid="ignore", divide="ignore"):
            safe_n = np.where(n > 0, n, 1.0)
            delta = mean_b - self.mean
            mean = (self.n * self.mean + n_b * mean_b) / safe_n
            m2 = self.m2 + m2_b + delta**2 * self.n * n_b / safe_n
        self.n, self.mean, self.m2 = n, mean, m2


@attrs.define
class _QuantileState:
    qs: tuple[float, ...]
    values: list[np.ndarray[Any, Any]] = attrs.field(factory=list)
    n_values: int = 0
    approx_sum: np.ndarray[Any, Any] | None = None
    approx_weight: np.ndarray[Any, Any] | None = None

    @property
    def exact(self) -> bool:
        return self.approx_sum is None

    def _add_approx(self, flat: np.ndarray[Any, Any]) -> None:
        weight = (~np.isnan(flat)).sum(axis=-1).astype(np.float64)
        q = _quantiles(flat, self.qs, "linear")
        contrib = np.where(weight > 0, q * weight, 0.0)
        if self.approx_sum is None or self.approx_weight is None:
            self.approx_sum, self.approx_weight = contrib, weight
        else:
            self.approx_sum = self.approx_sum + contrib
            self.approx_weight = self.approx_weight + weight

    def update(self, flat: np.ndarray[Any, Any], bound: int, label: str) -> None:
        if self.exact and self.n_values + flat.size <= bound:
            self.values.append(np.array(flat, dtype=np.float64))  # a copy: samples may change
            self.n_values += flat.size
            return
        if self.exact:
            warnings.warn(
                f"dataset quantiles of {label} exceed {bound} values; continuing with the "
                "average of per-sample quantiles weighted by value count (approximate)",
                stacklevel=3,
            )
            if self.values:
                self._add_approx(np.concatenate(self.values, axis=-1))
            self.values = []
        self._add_approx(flat)

    def result(self) -> np.ndarray[Any, Any] | None:
        if self.exact:
            if not self.values:
                return None
            return _quantiles(
                np.concatenate(self.values, axis=-1), self.qs, "linear", overwrite=True
            )
        assert self.approx_sum is not None and self.approx_weight is not None
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.approx_weight > 0, self.approx_sum / self.approx_weight, np.nan)


# --------------------------------------------------------------------------------------------
# exact statistics of data given chunk by chunk, in passes (bounded memory)

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


class _QuantileSelection:
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
                lower, upper, _ = _ranks(self.n[row], q, self.method)
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

    # --- results ----------------------------------------------------------------------------

    def values(self) -> Array:
        """Quantiles (float64), the quantile index first, then the rows."""
        assert self.done and self.n is not None and self.dtype is not None
        out = np.full((len(self.qs), self.rows), np.nan)
        for i, q in enumerate(self.qs):
            for row in np.flatnonzero(self.n > 0):
                lower, upper, gamma = _ranks(self.n[row], q, self.method)
                keys = [self.targets[(int(row), int(k))].key for k in (lower, upper)]
                a, b = _key_values(np.array(keys, dtype=np.uint64), self.dtype)
                if self.method == "inverted_cdf":
                    out[i, row] = a
                else:
                    out[i, row] = _lerp(np.asarray(a), np.asarray(b), gamma)
        return out


_GroupKey: TypeAlias = tuple[str, tuple[str, ...] | None, bool]
"""(member id, reduced axes, dataset scope)."""
_QuantileKey: TypeAlias = tuple[str, tuple[str, ...] | None, bool, QuantileMethod]


class StatsAccumulator:
    """Exact values of measures of data given chunk by chunk, in one or more passes over it.

    The one mechanism for statistics of data that need not fit into memory: per sample (chunks
    of one sample) or per dataset (samples, or chunks of them). Feed every chunk with
    :meth:`update`, then call :meth:`end_pass`; repeat while :attr:`needs_pass`, then read
    :meth:`values`. A chunk is a mapping of member id to :class:`Tensor`; it may split the axes
    a measure reduces (and, for dataset measures, holds one or more samples along ``batch``) but
    must hold the whole extent of the axes a measure keeps. Every pass must see the same data
    (an error says so when the value counts differ).

    Numbers: mean and variance as :func:`compute_sample_measures` computes them (float64 chunk
    sums merged with Chan et al.'s update), NaN skipped by the mean, propagated by the variance;
    quantiles skip NaN and are exactly :func:`numpy.quantile` of the float64 data, found by
    counting values (8/16 bit data: one pass) or by narrowing histograms of their order keys
    down to a few values (float and wider integer data: usually two passes; one pass when the
    data fits ``max_kept_values`` per member and axes).

    For work split among workers: :meth:`spawn` gives an empty accumulator in the same pass,
    :meth:`merge` adds what it saw.
    """

    def __init__(
        self, measures: Iterable[Measure], *, max_kept_values: int = DEFAULT_MAX_KEPT_VALUES
    ) -> None:
        self.measures: tuple[Measure, ...] = tuple(dict.fromkeys(measures))
        self.max_kept_values = max_kept_values
        self.passes = 0
        self._moments: dict[_GroupKey, _Moments | None] = {}
        self._quantiles: dict[_QuantileKey, _QuantileSelection] = {}
        self._layouts: dict[_GroupKey, tuple[tuple[str, ...], tuple[int, ...]]] = {}
        qs: dict[_QuantileKey, list[float]] = {}
        for m in self.measures:
            group = (m.member_id, m.axes, isinstance(m, DATASET_MEASURES))
            if isinstance(m, (SampleQuantile, DatasetQuantile)):
                method: QuantileMethod = m.method if isinstance(m, SampleQuantile) else "linear"
                qs.setdefault((*group, method), []).append(m.q)
            else:
                self._moments[group] = None
        for key, q in qs.items():
            self._quantiles[key] = _QuantileSelection(
                tuple(dict.fromkeys(q)), key[3], max_kept_values
            )

    @property
    def needs_pass(self) -> bool:
        """Whether (another) pass over the data is needed before :meth:`values`."""
        return self.passes == 0 or any(not s.done for s in self._quantiles.values())

    def update(self, members: Mapping[str, Tensor]) -> None:
        """Add one chunk of the data (a sample, a batch of samples, or a part of one)."""
        if not self.needs_pass:
            raise RuntimeError("every pass is done; read values() or start a new accumulator")
        first = self.passes == 0
        for group in {*self._moments, *(k[:3] for k in self._quantiles)}:
            member_id, axes, dataset = group
            if member_id not in members:
                raise KeyError(
                    f"statistics need member {member_id!r}, but the chunk has {sorted(members)}"
                )
            tensor = members[member_id]
            flat, kept = _dataset_view(tensor, axes) if dataset else _reduced_view(tensor, axes)
            layout = (kept, flat.shape[:-1])
            previous = self._layouts.setdefault(group, layout)
            if previous != layout:
                raise ValueError(
                    f"statistics of {member_id!r} keep axes {dict(zip(*previous, strict=True))}, "
                    f"but this chunk has {dict(zip(*layout, strict=True))}: a chunk must hold the "
                    "whole extent of the axes a measure keeps"
                )
            if first and group in self._moments:
                n_b, mean_b, m2_b = _mean_var(flat)
                state = self._moments[group]
                if state is None:
                    self._moments[group] = _Moments(n_b, mean_b, m2_b)
                else:
                    state.merge(n_b, mean_b, m2_b)
            for key, selection in self._quantiles.items():
                if key[:3] == group and not selection.done:
                    selection.update(flat)

    def end_pass(self) -> None:
        """Finish the current pass over the data."""
        self.passes += 1
        for selection in self._quantiles.values():
            if not selection.done:
                selection.end_pass()

    def spawn(self) -> StatsAccumulator:
        """An empty accumulator in the same pass, to see a part of this pass's data elsewhere."""
        import copy

        twin = StatsAccumulator(self.measures, max_kept_values=self.max_kept_values)
        twin.passes = self.passes
        twin._layouts = dict(self._layouts)
        for key, selection in self._quantiles.items():
            other = twin._quantiles[key]
            if selection.passes:  # the plan of later passes, without this pass's findings
                other.__dict__.update(
                    {k: copy.deepcopy(v) for k, v in selection.__dict__.items() if k != "_seen"}
                )
                other._seen, other._hist, other._collected = None, {}, {}
        return twin

    def merge(self, other: StatsAccumulator) -> None:
        """Add what ``other`` (a :meth:`spawn` of this accumulator) saw in the current pass."""
        if other.measures != self.measures or other.passes != self.passes:
            raise ValueError("only an accumulator spawned in the same pass can be merged")
        for group, layout in other._layouts.items():
            if self._layouts.setdefault(group, layout) != layout:
                raise ValueError(f"the parts keep different axes for {group[0]!r}")
        if self.passes == 0:
            for group, state in other._moments.items():
                mine = self._moments[group]
                if state is None:
                    continue
                if mine is None:
                    self._moments[group] = _Moments(state.n, state.mean, state.m2)
                else:
                    mine.merge(state.n, state.mean, state.m2)
        for key, theirs in other._quantiles.items():
            _merge_selection(self._quantiles[key], theirs)

    def values(self) -> dict[Measure, MeasureValue]:
        """The value of every measure whose member had data."""
        if self.needs_pass:
            raise RuntimeError("statistics need another pass over the data first")
        out: dict[Measure, MeasureValue] = {}
        quantiles = {key: s.values() for key, s in self._quantiles.items() if s.n is not None}
        for m in self.measures:
            group = (m.member_id, m.axes, isinstance(m, DATASET_MEASURES))
            if group not in self._layouts:
                continue
            kept, shape = self._layouts[group]
            if isinstance(m, (SampleQuantile, DatasetQuantile)):
                method = m.method if isinstance(m, SampleQuantile) else "linear"
                qkey = (*group, method)
                if qkey not in quantiles:
                    continue
                index = self._quantiles[qkey].qs.index(m.q)
                out[m] = _wrap(quantiles[qkey][index].reshape(shape), kept, m.axes)
                continue
            state = self._moments[group]
            if state is None:
                continue
            with np.errstate(invalid="ignore", divide="ignore"):
                var = _nan_where_empty(state.n, state.m2 / np.where(state.n > 0, state.n, 1.0))
            if isinstance(m, (SampleMean, DatasetMean)):
                out[m] = _wrap(_nan_where_empty(state.n, state.mean), kept, m.axes)
            elif isinstance(m, (SampleVar, DatasetVar)):
                out[m] = _wrap(var, kept, m.axes)
            else:
                out[m] = _wrap(np.sqrt(var), kept, m.axes)
        return out


def _merge_selection(mine: _QuantileSelection, theirs: _QuantileSelection) -> None:
    if theirs.dtype is None:
        return
    if mine.dtype is None:
        mine.dtype, mine.rows, mine.promoted = theirs.dtype, theirs.rows, theirs.promoted
    if theirs.dtype != mine.dtype:
        raise ValueError(
            f"the parts hold data of different types ({mine.dtype}, {theirs.dtype}); cast them "
            "to one type first"
        )
    mine._restart = mine._restart or theirs._restart
    if theirs._seen is not None:
        mine._seen = theirs._seen.copy() if mine._seen is None else mine._seen + theirs._seen
    if theirs._all_hist is not None:
        mine._all_hist = (
            theirs._all_hist.copy() if mine._all_hist is None else mine._all_hist + theirs._all_hist
        )
    if mine._kept is not None and theirs._kept is not None:
        if mine._kept_size + theirs._kept_size <= mine.max_kept:
            mine._kept = [*mine._kept, *theirs._kept]
            mine._kept_size += theirs._kept_size
        else:
            mine._kept, mine._kept_size = None, 0
    elif theirs._kept is None:
        mine._kept, mine._kept_size = None, 0
    for job, counts in theirs._hist.items():
        previous = mine._hist.get(job)
        mine._hist[job] = counts.copy() if previous is None else previous + counts
    for job, parts in theirs._collected.items():
        mine._collected.setdefault(job, []).extend(parts)


def _members_of(item: Any) -> Mapping[str, Tensor]:
    members = getattr(item, "members", item)
    if not isinstance(members, Mapping):
        raise TypeError(
            f"a dataset item must be a Sample or a mapping of member id to Tensor (got "
            f"{type(item).__name__})"
        )
    return members


def accumulate_measures(
    measures: Iterable[Measure],
    chunks: Callable[[], Iterable[Any]],
    *,
    max_kept_values: int = DEFAULT_MAX_KEPT_VALUES,
) -> dict[Measure, MeasureValue]:
    """Exact measures of the data ``chunks()`` yields (Samples or member → Tensor mappings),
    calling it once per pass (see :class:`StatsAccumulator`)."""
    accumulator = StatsAccumulator(measures, max_kept_values=max_kept_values)
    while accumulator.needs_pass:
        for item in chunks():
            accumulator.update(_members_of(item))
        accumulator.end_pass()
    return accumulator.values()


def compute_dataset_measures(
    measures: Iterable[DatasetMeasure],
    dataset: Iterable[Any] | Callable[[], Iterable[Any]],
    *,
    max_kept_values: int = DEFAULT_MAX_KEPT_VALUES,
) -> dict[DatasetMeasure, MeasureValue]:
    """Dataset measures over every sample of ``dataset``, whatever their order.

    ``dataset``: Samples (or mappings of member id to :class:`Tensor`), as a sequence or any
    iterable that can be iterated again, or a function returning a fresh iterable; the samples
    are read once per pass (usually one or two). A one-shot iterator (a generator) is read once
    and its samples are kept in memory for the later passes.
    """
    selected = tuple(measures)
    wrong = [m for m in selected if not isinstance(m, DATASET_MEASURES)]
    if wrong:
        raise TypeError(f"compute_dataset_measures takes dataset measures only (got {wrong})")
    if callable(dataset):
        source: Callable[[], Iterable[Any]] = dataset
    else:
        items = dataset
        if iter(items) is items:  # one-shot: keep the items for later passes
            items = list(items)
        source = lambda: items  # noqa: E731
    values = accumulate_measures(selected, source, max_kept_values=max_kept_values)
    return {m: v for m, v in values.items() if isinstance(m, DATASET_MEASURES)}


DEFAULT_MAX_QUANTILE_VALUES = 2**25
"""Default bound (number of float64 values kept per member and axes) for exact dataset quantiles."""


class DatasetStatsCalculator:
    """Incrementally computes dataset measures over the samples given to :meth:`update`.

    Samples are mappings of member id to :class:`Tensor`; a member's tensor may hold several
    samples along its ``batch`` axis. Values are available at any time via :meth:`values`.
    """

    def __init__(
        self,
        measures: Iterable[DatasetMeasure],
        *,
        max_quantile_values: int = DEFAULT_MAX_QUANTILE_VALUES,
    ) -> None:
        self.measures: tuple[DatasetMeasure, ...] = tuple(dict.fromkeys(measures))
        self.max_quantile_values = max_quantile_values
        self._moments: dict[tuple[str, tuple[str, ...] | None], _Moments | None] = {}
        self._quantiles: dict[tuple[str, tuple[str, ...] | None], _QuantileState] = {}
        self._kept: dict[tuple[str, tuple[str, ...] | None], tuple[str, ...]] = {}
        qs: dict[tuple[str, tuple[str, ...] | None], list[float]] = {}
        for m in self.measures:
            key = (m.member_id, m.axes)
            if isinstance(m, DatasetQuantile):
                qs.setdefault(key, []).append(m.q)
            else:
                self._moments[key] = None
        for key, q in qs.items():
            self._quantiles[key] = _QuantileState(tuple(dict.fromkeys(q)))
        self.n_samples = 0

    def update(self, members: Mapping[str, Tensor]) -> None:
        """Add one sample (or a batch of samples) to the running statistics."""
        for key in {*self._moments, *self._quantiles}:
            member_id, axes = key
            if member_id not in members:
                raise KeyError(
                    f"dataset statistics need member {member_id!r}, but the sample has {sorted(members)}"
                )
            flat, kept = _dataset_view(members[member_id], axes)
            previous = self._kept.setdefault(key, kept)
            if previous != kept:
                raise ValueError(
                    f"dataset statistics of {member_id!r} keep axes {previous}, but this sample "
                    f"keeps {kept}"
                )
            if key in self._moments:
                n_b, mean_b, m2_b = _mean_var(flat)
                state = self._moments[key]
                if state is None:
                    self._moments[key] = _Moments(n_b, mean_b, m2_b)
                else:
                    if state.n.shape != n_b.shape:
                        raise ValueError(
                            f"dataset statistics of {member_id!r}: kept axes changed size from "
                            f"{state.n.shape} to {n_b.shape}"
                        )
                    state.merge(n_b, mean_b, m2_b)
            if key in self._quantiles:
                self._quantiles[key].update(flat, self.max_quantile_values, f"{member_id!r}")
        self.n_samples += 1

    def values(self) -> dict[DatasetMeasure, MeasureValue]:
        """The current value of every measure that has seen data."""
        out: dict[DatasetMeasure, MeasureValue] = {}
        for m in self.measures:
            key = (m.member_id, m.axes)
            kept = self._kept.get(key, ())
            if isinstance(m, DatasetQuantile):
                qstate = self._quantiles[key]
                res = qstate.result()
                if res is not None:
                    out[m] = _wrap(res[qstate.qs.index(m.q)], kept, m.axes)
                continue
            mstate = self._moments[key]
            if mstate is None:
                continue
            with np.errstate(invalid="ignore", divide="ignore"):
                var = _nan_where_empty(mstate.n, mstate.m2 / np.where(mstate.n > 0, mstate.n, 1.0))
            if isinstance(m, DatasetMean):
                out[m] = _wrap(_nan_where_empty(mstate.n, mstate.mean), kept, m.axes)
            elif isinstance(m, DatasetVar):
                out[m] = _wrap(var, kept, m.axes)
            else:
                out[m] = _wrap(np.sqrt(var), kept, m.axes)
        return out


class StatsCalculator:
    """All statistics a processing pipeline needs, sample by sample.

    ``fixed``: dataset measures given from outside. They are used, and dataset statistics are
    not updated, only when they cover every required dataset measure (as bioimageio.core does);
    otherwise they are ignored and running statistics are used. With ``keep_updating``, running
    statistics are always used (fixed values carry no sample counts to merge with).
    """

    def __init__(
        self,
        measures: Iterable[Measure],
        *,
        fixed: Mapping[DatasetMeasure, MeasureValue] | None = None,
        keep_updating: bool = False,
        max_quantile_values: int = DEFAULT_MAX_QUANTILE_VALUES,
    ) -> None:
        all_measures = tuple(dict.fromkeys(measures))
        self.sample_measures: tuple[SampleMeasure, ...] = tuple(
            m for m in all_measures if isinstance(m, SAMPLE_MEASURES)
        )
        self.dataset_measures: tuple[DatasetMeasure, ...] = tuple(
            m for m in all_measures if isinstance(m, DATASET_MEASURES)
        )
        fixed = dict(fixed or {})
        complete = all(m in fixed for m in self.dataset_measures)
        self.fixed: dict[DatasetMeasure, MeasureValue] = (
            {m: fixed[m] for m in self.dataset_measures} if complete else {}
        )
        self.updating = keep_updating or not complete or not self.dataset_measures
        self._dataset = DatasetStatsCalculator(
            self.dataset_measures, max_quantile_values=max_quantile_values
        )

    def update(self, members: Mapping[str, Tensor]) -> None:
        """Add a sample to the running dataset statistics (no-op with complete fixed values)."""
        if self.updating and self.dataset_measures:
            self._dataset.update(members)

    def dataset_values(self) -> dict[DatasetMeasure, MeasureValue]:
        if not self.updating:
            return dict(self.fixed)
        return self._dataset.values()

    def update_and_get_all(self, members: Mapping[str, Tensor]) -> dict[Measure, MeasureValue]:
        """Update dataset statistics with ``members``, then return sample and dataset values."""
        self.update(members)
        return self.skip_update_and_get_all(members)

    def skip_update_and_get_all(self, members: Mapping[str, Tensor]) -> dict[Measure, MeasureValue]:
        """Sample values of ``members`` and the current dataset values, without updating."""
        out: dict[Measure, MeasureValue] = {}
        for sm, sv in compute_sample_measures(members, self.sample_measures).items():
            out[sm] = sv
        for dm, dv in self.dataset_values().items():
            out[dm] = dv
        return out


# --------------------------------------------------------------------------------------------
# measures and values as JSON-ready data

_MomentMeasure: TypeAlias = "SampleMean | SampleVar | SampleStd | DatasetMean | DatasetVar | DatasetStd"
_MEASURE_NAMES: dict[type[Any], str] = {
    SampleMean: "mean", SampleVar: "var", SampleStd: "std", SampleQuantile: "quantile",
    DatasetMean: "mean", DatasetVar: "var", DatasetStd: "std", DatasetQuantile: "quantile",
}  # fmt: skip


def measure_to_json(measure: Measure) -> dict[str, Any]:
    """``{"scope", "measure", "tensor_id", "axes", ["q", "method"]}`` of a measure."""
    data: dict[str, Any] = {
        "scope": "dataset" if isinstance(measure, DATASET_MEASURES) else "sample",
        "measure": _MEASURE_NAMES[type(measure)],
        "tensor_id": measure.member_id,
        "axes": None if measure.axes is None else list(measure.axes),
    }
    if isinstance(measure, (SampleQuantile, DatasetQuantile)):
        data["q"] = measure.q
    if isinstance(measure, SampleQuantile):
        data["method"] = measure.method
    return data


def measure_from_json(data: Mapping[str, Any]) -> Measure:
    """The measure :func:`measure_to_json` wrote.

    Raises:
        ValueError: a field is missing or wrong (the message names it).
    """
    scope, name = data.get("scope", "dataset"), data.get("measure")
    classes: dict[tuple[Any, Any], type[_MomentMeasure]] = {
        ("sample", "mean"): SampleMean, ("sample", "var"): SampleVar, ("sample", "std"): SampleStd,
        ("dataset", "mean"): DatasetMean, ("dataset", "var"): DatasetVar,
        ("dataset", "std"): DatasetStd,
    }  # fmt: skip
    tensor_id = data.get("tensor_id")
    if not isinstance(tensor_id, str):
        raise ValueError(f"'tensor_id' must be a string (got {tensor_id!r})")
    axes = data.get("axes")
    if axes is not None and not (isinstance(axes, list) and all(isinstance(a, str) for a in axes)):
        raise ValueError(f"'axes' must be null or a list of axis ids (got {axes!r})")
    if name == "quantile":
        q = data.get("q")
        if isinstance(q, bool) or not isinstance(q, (int, float)):
            raise ValueError(f"'q' must be a number (got {q!r})")
        if scope == "sample":
            return SampleQuantile(tensor_id, q, axes, data.get("method", "linear"))
        if scope == "dataset":
            return DatasetQuantile(tensor_id, q, axes)
    cls = classes.get((scope, name))
    if cls is None:
        raise ValueError(
            f"unknown measure {name!r} with scope {scope!r} (measures: mean, var, std, quantile; "
            "scopes: sample, dataset)"
        )
    measure: Measure = cls(tensor_id, axes)
    return measure


def value_to_json(value: MeasureValue) -> float | dict[str, Any]:
    """A float as it is; a Tensor as ``{"dims": [...], "data": nested lists}``."""
    if isinstance(value, Tensor):
        return {"dims": list(value.dims), "data": np.asarray(value.data, dtype=np.float64).tolist()}
    return float(value)


def value_from_json(data: Any) -> MeasureValue:
    """The value :func:`value_to_json` wrote.

    Raises:
        ValueError: neither a number nor ``{"dims", "data"}`` of matching dimensions.
    """
    if isinstance(data, bool):
        raise ValueError(f"a value must be a number or {{'dims', 'data'}} (got {data!r})")
    if isinstance(data, (int, float)):
        return float(data)
    if isinstance(data, Mapping) and isinstance(data.get("dims"), list):
        dims = tuple(str(d) for d in data["dims"])
        try:
            array = np.asarray(data.get("data"), dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("'data' must be nested lists of numbers") from None
        if array.ndim != len(dims):
            raise ValueError(
                f"'data' has {array.ndim} dimension(s) but 'dims' names {len(dims)}: {list(dims)}"
            )
        return Tensor(array, dims)
    raise ValueError(f"a value must be a number or {{'dims', 'data'}} (got {data!r})")
