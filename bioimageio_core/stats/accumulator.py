"""Exact statistics of data of any size, given chunk by chunk in passes (bounded memory)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

import numpy as np

from bioimageio_core.stats.measures import (
    DATASET_MEASURES,
    DatasetMean,
    DatasetMeasure,
    DatasetQuantile,
    DatasetVar,
    Measure,
    MeasureValue,
    QuantileMethod,
    SampleMean,
    SampleQuantile,
    SampleVar,
)
from bioimageio_core.stats.reductions import (
    Moments,
    dataset_view,
    mean_var,
    nan_where_empty,
    reduced_view,
    wrap,
)
from bioimageio_core.stats.selection import DEFAULT_MAX_KEPT_VALUES, QuantileSelection
from bioimageio_core.tensor import Tensor

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
        self._moments: dict[_GroupKey, Moments | None] = {}
        self._quantiles: dict[_QuantileKey, QuantileSelection] = {}
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
            self._quantiles[key] = QuantileSelection(
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
            flat, kept = dataset_view(tensor, axes) if dataset else reduced_view(tensor, axes)
            layout = (kept, flat.shape[:-1])
            previous = self._layouts.setdefault(group, layout)
            if previous != layout:
                raise ValueError(
                    f"statistics of {member_id!r} keep axes {dict(zip(*previous, strict=True))}, "
                    f"but this chunk has {dict(zip(*layout, strict=True))}: a chunk must hold the "
                    "whole extent of the axes a measure keeps"
                )
            if first and group in self._moments:
                n_b, mean_b, m2_b = mean_var(flat)
                state = self._moments[group]
                if state is None:
                    self._moments[group] = Moments(n_b, mean_b, m2_b)
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
        twin = StatsAccumulator(self.measures, max_kept_values=self.max_kept_values)
        twin.passes = self.passes
        twin._layouts = dict(self._layouts)
        twin._quantiles = {key: s.spawn() for key, s in self._quantiles.items()}
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
                    self._moments[group] = Moments(state.n, state.mean, state.m2)
                else:
                    mine.merge(state.n, state.mean, state.m2)
        for key, theirs in other._quantiles.items():
            self._quantiles[key].merge(theirs)

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
                out[m] = wrap(quantiles[qkey][index].reshape(shape), kept, m.axes)
                continue
            state = self._moments[group]
            if state is None:
                continue
            out[m] = moment_value(m, state, kept)
        return out


def moment_value(measure: Measure, state: Moments, kept: tuple[str, ...]) -> MeasureValue:
    """The value of a mean, variance or standard deviation ``measure`` from its moments (counts,
    mean and M2 over the axes ``kept``, in that order), as :func:`compute_sample_measures` gives
    it."""
    with np.errstate(invalid="ignore", divide="ignore"):
        var = nan_where_empty(state.n, state.m2 / np.where(state.n > 0, state.n, 1.0))
    if isinstance(measure, (SampleMean, DatasetMean)):
        return wrap(nan_where_empty(state.n, state.mean), kept, measure.axes)
    if isinstance(measure, (SampleVar, DatasetVar)):
        return wrap(var, kept, measure.axes)
    return wrap(np.sqrt(var), kept, measure.axes)


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
