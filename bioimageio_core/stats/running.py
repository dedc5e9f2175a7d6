"""Running dataset statistics updated sample by sample (bioimageio.core's semantics), and the
statistics a pipeline computes per sample."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import numpy as np

from bioimageio_core.stats.measures import (
    DATASET_MEASURES,
    SAMPLE_MEASURES,
    DatasetMean,
    DatasetMeasure,
    DatasetQuantile,
    DatasetVar,
    Measure,
    MeasureValue,
    SampleMeasure,
)
from bioimageio_core.stats.reductions import (
    Moments,
    dataset_view,
    mean_var,
    nan_where_empty,
    quantile_values,
    wrap,
)
from bioimageio_core.stats.sample import compute_sample_measures
from bioimageio_core.tensor import Tensor


@attrs.define
class QuantileState:
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
        q = quantile_values(flat, self.qs, "linear")
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
            return quantile_values(
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
        self._moments: dict[tuple[str, tuple[str, ...] | None], Moments | None] = {}
        self._quantiles: dict[tuple[str, tuple[str, ...] | None], QuantileState] = {}
        self._kept: dict[tuple[str, tuple[str, ...] | None], tuple[str, ...]] = {}
        qs: dict[tuple[str, tuple[str, ...] | None], list[float]] = {}
        for m in self.measures:
            key = (m.member_id, m.axes)
            if isinstance(m, DatasetQuantile):
                qs.setdefault(key, []).append(m.q)
            else:
                self._moments[key] = None
        for key, q in qs.items():
            self._quantiles[key] = QuantileState(tuple(dict.fromkeys(q)))
        self.n_samples = 0

    def update(self, members: Mapping[str, Tensor]) -> None:
        """Add one sample (or a batch of samples) to the running statistics."""
        for key in {*self._moments, *self._quantiles}:
            member_id, axes = key
            if member_id not in members:
                raise KeyError(
                    f"dataset statistics need member {member_id!r}, but the sample has {sorted(members)}"
                )
            flat, kept = dataset_view(members[member_id], axes)
            previous = self._kept.setdefault(key, kept)
            if previous != kept:
                raise ValueError(
                    f"dataset statistics of {member_id!r} keep axes {previous}, but this sample "
                    f"keeps {kept}"
                )
            if key in self._moments:
                n_b, mean_b, m2_b = mean_var(flat)
                state = self._moments[key]
                if state is None:
                    self._moments[key] = Moments(n_b, mean_b, m2_b)
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
                    out[m] = wrap(res[qstate.qs.index(m.q)], kept, m.axes)
                continue
            mstate = self._moments[key]
            if mstate is None:
                continue
            with np.errstate(invalid="ignore", divide="ignore"):
                var = nan_where_empty(mstate.n, mstate.m2 / np.where(mstate.n > 0, mstate.n, 1.0))
            if isinstance(m, DatasetMean):
                out[m] = wrap(nan_where_empty(mstate.n, mstate.mean), kept, m.axes)
            elif isinstance(m, DatasetVar):
                out[m] = wrap(var, kept, m.axes)
            else:
                out[m] = wrap(np.sqrt(var), kept, m.axes)
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
