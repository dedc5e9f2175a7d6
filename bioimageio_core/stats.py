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

Per-dataset measures are computed incrementally by :class:`DatasetStatsCalculator`: mean and
variance are merged exactly with Chan's parallel update; quantiles are exact (all values are kept)
while the kept values stay below ``max_quantile_values`` elements per measure group. Beyond that
bound the calculator switches to the approximation bioimageio.core always uses: the average of
per-sample quantiles weighted by the number of values in each sample (a warning is emitted once).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, TypeAlias

import attrs
import numpy as np

from bioimageio_core.tensor import Tensor

BATCH_AXIS = "batch"
QuantileMethod: TypeAlias = Literal["linear", "inverted_cdf"]
MeasureValue: TypeAlias = "float | Tensor"


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
            return np.asarray(
                np.nanquantile(flat, list(qs), axis=-1, method=method), dtype=np.float64
            )
    q = np.asarray(qs, dtype=np.float64)
    if method == "inverted_cdf":  # numpy's index rule for this discrete method
        index = n * q - 1
        below = np.floor(index)
        k = np.clip(np.where(index == below, below, below + 1), 0, n - 1).astype(np.intp)
        return _order_statistics(flat, k, overwrite)
    virtual = q * (n - 1)
    below = np.floor(virtual)
    lower = below.astype(np.intp)
    upper = np.minimum(lower + 1, n - 1)
    values = _order_statistics(flat, np.concatenate([lower, upper]), overwrite)
    a, b = values[: len(q)], values[len(q) :]
    gamma = (virtual - below).reshape(-1, *([1] * (flat.ndim - 1)))
    diff = b - a  # numpy's interpolation, step by step
    result: np.ndarray[Any, Any] = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
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
