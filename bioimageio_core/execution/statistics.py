"""Statistics of stored inputs without loading them: passes over segments, on any workers.

The values equal those of the in-memory path bit for bit (data without NaN or infinite values):
means and variances are the piece sums of :func:`~bioimageio_core.stats.reductions.mean_var`
added in piece order (:mod:`bioimageio_core.stats.ordered`), quantiles are exact
(:class:`~bioimageio_core.stats.selection.QuantileSelection`), dataset measures merge the
samples' moments with Chan et al.'s update in sample order, as
:class:`~bioimageio_core.stats.StatsAccumulator` does for samples in memory.

Work is cut into :class:`SegmentJob` s: each reads a few segments of one stored input (whole
pieces of its reduced values, as boxes of the file; never more than ``max_values`` values at
once) and returns piece sums, squared deviations or a quantile selection's counts: small results,
whatever the size of the data. ``run(function, jobs)`` runs them (in this process by default, on
a cluster with :func:`bioimageio_core.execution.distributed.cluster_runner`); results are merged
in job order, so the numbers never depend on where or when a job ran.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeAlias

import attrs
import numpy as np

from bioimageio_core.errors import InputError
from bioimageio_core.execution.stored import Array, Region, StoredInput, StoredSample
from bioimageio_core.stats import (
    BATCH_AXIS,
    DATASET_MEASURES,
    DEFAULT_MAX_KEPT_VALUES,
    DatasetQuantile,
    Measure,
    MeasureValue,
    QuantileMethod,
    SampleQuantile,
)
from bioimageio_core.stats.accumulator import moment_value
from bioimageio_core.stats.ordered import (
    PieceLayout,
    add_in_order,
    mean_from_total,
    piece_squares,
    piece_sums,
)
from bioimageio_core.stats.reductions import Moments, mean_var_with_nan, reduced_view, wrap
from bioimageio_core.stats.selection import QuantileSelection

Runner: TypeAlias = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]
"""``run(function, items)`` → ``[function(item) for item in items]`` (in order), wherever the
calls run."""

DEFAULT_SEGMENT_VALUES = 1 << 22
"""Values one job reads at once at most (16 MiB of float32)."""

Kind = Literal["sums", "squares", "nan", "none"]


def run_here(function: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """The :data:`Runner` of this process's calling thread."""
    return [function(item) for item in items]


def run_in_threads(threads: int) -> Runner:
    """A :data:`Runner` that makes the calls in up to ``threads`` threads of this process
    (:func:`run_here` for one); results come back in the order of the items."""
    if threads <= 1:
        return run_here

    def run(function: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        if len(items) <= 1:
            return run_here(function, items)
        workers = min(threads, len(items))
        with ThreadPoolExecutor(workers, thread_name_prefix="bioimageio-statistics") as pool:
            return list(pool.map(function, items))

    return run


@attrs.frozen
class ReducedView:
    """How the reduced view of a stored input is laid out: ``kept`` axes (and sizes) first, the
    ``reduced`` axes flattened (C order) into ``n`` values per row."""

    kept: tuple[str, ...]
    kept_shape: tuple[int, ...]
    reduced: tuple[str, ...]
    reduced_shape: tuple[int, ...]

    @property
    def rows(self) -> int:
        return math.prod(self.kept_shape)

    @property
    def n(self) -> int:
        return math.prod(self.reduced_shape)

    @classmethod
    def of(cls, stored: StoredInput, axes: tuple[str, ...] | None, dataset: bool) -> ReducedView:
        if axes is not None and dataset:  # a tensor without a batch axis is one sample
            axes = tuple(a for a in axes if a != BATCH_AXIS or BATCH_AXIS in stored.dims)
        if axes is not None:
            missing = [a for a in axes if a not in stored.dims]
            if missing:
                raise KeyError(
                    f"cannot reduce over axes {missing}: the tensor's axes are {stored.dims}"
                )
        sizes = stored.sizes
        reduced = stored.dims if axes is None else tuple(d for d in stored.dims if d in axes)
        kept = tuple(d for d in stored.dims if d not in reduced)
        return cls(
            kept, tuple(sizes[d] for d in kept), reduced, tuple(sizes[d] for d in reduced)
        )

    def boxes(self, start: int, stop: int, dims: Sequence[str]) -> list[Region]:
        """Regions of the stored input (one slice per axis of ``dims``) whose reduced values,
        read one after the other, are positions ``start`` to ``stop`` of every row."""
        out = []
        for box in _range_boxes(self.reduced_shape, start, stop):
            by_axis = dict(zip(self.reduced, box, strict=True))
            out.append(tuple(by_axis.get(d, slice(None)) for d in dims))
        return out


def _range_boxes(shape: tuple[int, ...], start: int, stop: int) -> list[tuple[slice, ...]]:
    """Boxes of an array of ``shape`` that hold C-order positions ``start`` to ``stop``, in order."""
    if start >= stop:
        return []
    if len(shape) <= 1:
        return [(slice(start, stop),)] if shape else [()]
    inner = math.prod(shape[1:])
    i0, r0 = divmod(start, inner)
    i1, r1 = divmod(stop, inner)
    if i0 == i1:
        return [(slice(i0, i0 + 1), *box) for box in _range_boxes(shape[1:], r0, r1)]
    boxes: list[tuple[slice, ...]] = []
    if r0:
        boxes += [(slice(i0, i0 + 1), *box) for box in _range_boxes(shape[1:], r0, inner)]
        i0 += 1
    if i1 > i0:
        boxes.append((slice(i0, i1), *(slice(0, s) for s in shape[1:])))
    if r1:
        boxes += [(slice(i1, i1 + 1), *box) for box in _range_boxes(shape[1:], 0, r1)]
    return boxes


@attrs.frozen
class SegmentJob:
    """Read ``segments`` (piece ranges) of ``stored`` and compute ``kind`` for each; feed the
    values to a spawned ``selection`` (quantiles) too. Picklable, idempotent."""

    stored: StoredInput
    view: ReducedView
    layout: PieceLayout
    segments: tuple[tuple[int, int], ...]
    kind: Kind
    mean: Array | None = attrs.field(default=None, eq=False)
    selection: QuantileSelection | None = attrs.field(default=None, eq=False)


@attrs.frozen(eq=False)
class SegmentResult:
    """Per segment ``(first piece, values)``: piece sums or squares, or (for ``nan``) the
    segment's counts, mean and M2; the ``selection`` that saw the segments."""

    parts: list[tuple[int, Any]]
    selection: QuantileSelection | None


def run_segment_job(job: SegmentJob) -> SegmentResult:
    """Read the job's segments and compute what it asks (a :data:`Runner` calls this)."""
    parts: list[tuple[int, Any]] = []
    for first, stop in job.segments:
        flat = read_segment(job.stored, job.view, job.layout, first, stop)
        if job.kind == "sums":
            parts.append((first, piece_sums(flat, job.layout, first)))
        elif job.kind == "squares":
            assert job.mean is not None
            parts.append((first, piece_squares(flat, job.layout, first, job.mean)))
        elif job.kind == "nan":
            parts.append((first, mean_var_with_nan(np.asarray(flat, dtype=np.float64))))
        if job.selection is not None:
            job.selection.update(flat)
    return SegmentResult(parts, job.selection)


def read_segment(
    stored: StoredInput, view: ReducedView, layout: PieceLayout, first: int, stop: int
) -> Array:
    """The reduced values of pieces ``first`` to ``stop`` of every row (rows first)."""
    start, end = layout.values(first, stop)
    flats = []
    for region in view.boxes(start, end, stored.dims):
        flat, _ = reduced_view(stored.tensor(region), view.reduced)
        flats.append(flat)
    if len(flats) == 1:
        return flats[0]
    return np.concatenate(flats, axis=-1)


# --- one group of measures ----------------------------------------------------------------------

_Group: TypeAlias = tuple[str, tuple[str, ...] | None, bool]
"""(member id, axes, dataset scope)."""


@attrs.define
class _GroupWork:
    """The measures of one group over the parts (samples) they are computed on."""

    group: _Group
    parts: list[StoredInput]
    views: list[ReducedView]
    moments: bool
    quantiles: dict[QuantileMethod, tuple[float, ...]]
    max_kept: int
    jobs: int = 1
    """Jobs per pass (over all parts) to cut the work into."""
    state: list[Moments | None] = attrs.Factory(list)
    selections: dict[QuantileMethod, QuantileSelection] = attrs.Factory(dict)

    def __attrs_post_init__(self) -> None:
        self.state = [None] * len(self.parts)
        for method, qs in self.quantiles.items():
            self.selections[method] = QuantileSelection(qs, method, self.max_kept)

    @property
    def kept(self) -> tuple[tuple[str, ...], tuple[int, ...]]:
        return self.views[0].kept, self.views[0].kept_shape


def _jobs(
    work: _GroupWork,
    kinds: Sequence[Kind],
    means: Sequence[Array | None],
    segment_values: int,
    selection: QuantileSelection | None,
) -> list[SegmentJob]:
    """Jobs of about ``work.jobs`` per part together (consecutive segments of one part each)."""
    jobs = []
    per_part = max(1, math.ceil(work.jobs / len(work.parts)))
    for stored, view, kind, mean in zip(work.parts, work.views, kinds, means, strict=True):
        layout = PieceLayout(view.rows, view.n)
        segments = layout.segments(segment_values)
        size = max(1, math.ceil(len(segments) / per_part))
        for first in range(0, len(segments), size):
            jobs.append(
                SegmentJob(
                    stored,
                    view,
                    layout,
                    tuple(segments[first : first + size]),
                    kind,
                    mean,
                    None if selection is None else selection.spawn(),
                )
            )
    return jobs


def _merge_selection(
    selection: QuantileSelection | None, results: Sequence[SegmentResult]
) -> None:
    if selection is None:
        return
    for result in results:
        if result.selection is not None:
            selection.merge(result.selection)
    selection.end_pass()


def _compute(work: _GroupWork, run: Runner, segment_values: int) -> None:
    """Every pass of one group: sums (and the first quantile pass), squares, quantile passes."""
    methods = list(work.selections)
    pending = list(methods)
    shape = work.kept[1]
    # pass 1: piece sums (+ the first pass of one quantile selection)
    method = pending.pop(0) if pending else None
    selection = work.selections[method] if method is not None else None
    kinds: list[Kind] = ["sums" if work.moments else "none"] * len(work.parts)
    if work.moments or selection is not None:
        jobs = _jobs(work, kinds, [None] * len(work.parts), segment_values, selection)
        results = run(run_segment_job, jobs)
        _merge_selection(selection, results)
        if work.moments:
            means, nan_parts = _means(work, jobs, results, shape)
            # pass 2: squared deviations (data with NaN/inf: the NaN-aware moments instead)
            kinds = ["nan" if i in nan_parts else "squares" for i in range(len(work.parts))]
            more = selection if selection is not None and not selection.done else None
            jobs = _jobs(work, kinds, means, segment_values, more)
            results = run(run_segment_job, jobs)
            _merge_selection(more, results)
            _moments(work, jobs, results, means, shape)
    for method in methods:  # further quantile passes
        selection = work.selections[method]
        while not selection.done:
            jobs = _jobs(work, ["none"] * len(work.parts), [None] * len(work.parts), segment_values, selection)
            _merge_selection(selection, run(run_segment_job, jobs))


def _by_part(
    work: _GroupWork, jobs: Sequence[SegmentJob], results: Sequence[SegmentResult]
) -> list[list[tuple[int, Any]]]:
    parts: list[list[tuple[int, Any]]] = [[] for _ in work.parts]
    index = {id(stored): i for i, stored in enumerate(work.parts)}
    for job, result in zip(jobs, results, strict=True):
        parts[index[id(job.stored)]].extend(result.parts)
    return parts


def _means(
    work: _GroupWork,
    jobs: Sequence[SegmentJob],
    results: Sequence[SegmentResult],
    shape: tuple[int, ...],
) -> tuple[list[Array | None], set[int]]:
    means: list[Array | None] = []
    nan_parts: set[int] = set()
    for i, (view, sums) in enumerate(zip(work.views, _by_part(work, jobs, results), strict=True)):
        total = add_in_order(sums, shape)
        if not np.all(np.isfinite(total)):
            nan_parts.add(i)
            means.append(None)
            continue
        n, mean = mean_from_total(total, view.n)
        work.state[i] = Moments(n, mean, np.zeros(shape))
        means.append(mean)
    return means, nan_parts


def _moments(
    work: _GroupWork,
    jobs: Sequence[SegmentJob],
    results: Sequence[SegmentResult],
    means: Sequence[Array | None],
    shape: tuple[int, ...],
) -> None:
    for i, parts in enumerate(_by_part(work, jobs, results)):
        if means[i] is not None:
            state = work.state[i]
            assert state is not None
            state.m2 = add_in_order(parts, shape)
            continue
        merged: Moments | None = None  # NaN-aware moments of the segments, in order
        for _, (n, mean, m2) in sorted(parts, key=lambda part: part[0]):
            if merged is None:
                merged = Moments(n, mean, m2)
            else:
                merged.merge(n, mean, m2)
        work.state[i] = merged


# --- entry points -------------------------------------------------------------------------------


def stored_statistics(
    samples: Sequence[StoredSample],
    measures: Iterable[Measure],
    *,
    run: Runner = run_here,
    segment_values: int = DEFAULT_SEGMENT_VALUES,
    max_kept_values: int = DEFAULT_MAX_KEPT_VALUES,
    jobs: int = 1,
) -> dict[Measure, MeasureValue]:
    """The values of ``measures`` over stored ``samples`` (sample measures: one sample), in
    passes of about ``jobs`` jobs each (results never depend on it).

    Raises:
        InputError: a sample lacks a tensor the measures need, or samples differ in the sizes
            of the axes a dataset measure keeps.
    """
    measures = tuple(dict.fromkeys(measures))
    groups: dict[_Group, list[Measure]] = {}
    for m in measures:
        groups.setdefault((m.member_id, m.axes, isinstance(m, DATASET_MEASURES)), []).append(m)
    out: dict[Measure, MeasureValue] = {}
    for group, members in groups.items():
        member_id, axes, dataset = group
        if not dataset and len(samples) != 1:
            raise ValueError("sample measures are computed over one sample")
        lacking = [s.id for s in samples if member_id not in s.members]
        if lacking:
            raise InputError(
                f"sample(s) {lacking} have no tensor {member_id!r}, whose statistics the "
                "model's processing needs",
                hint="give this input for every sample",
            )
        parts = [s.members[member_id] for s in samples]
        views = [ReducedView.of(p, axes, dataset) for p in parts]
        layouts = {(v.kept, v.kept_shape) for v in views}
        if len(layouts) > 1:
            raise InputError(
                f"statistics of {member_id!r} keep axes whose sizes differ between samples: "
                + "; ".join(f"{dict(zip(k, s, strict=True))}" for k, s in sorted(layouts)),
            )
        quantiles: dict[QuantileMethod, list[float]] = {}
        for m in members:
            if isinstance(m, (SampleQuantile, DatasetQuantile)):
                method: QuantileMethod = m.method if isinstance(m, SampleQuantile) else "linear"
                quantiles.setdefault(method, []).append(m.q)
        work = _GroupWork(
            group,
            parts,
            views,
            moments=any(not isinstance(m, (SampleQuantile, DatasetQuantile)) for m in members),
            quantiles={k: tuple(dict.fromkeys(v)) for k, v in quantiles.items()},
            max_kept=max_kept_values,
            jobs=jobs,
        )
        _compute(work, run, segment_values)
        out.update(_values(work, members))
    return out


def _values(work: _GroupWork, measures: Sequence[Measure]) -> dict[Measure, MeasureValue]:
    kept, shape = work.kept
    out: dict[Measure, MeasureValue] = {}
    merged: Moments | None = None  # samples merged in order (dataset measures)
    for state in work.state:
        if state is None:
            continue
        if merged is None:
            merged = Moments(state.n, state.mean, state.m2)
        else:
            merged.merge(state.n, state.mean, state.m2)
    for m in measures:
        if isinstance(m, (SampleQuantile, DatasetQuantile)):
            method = m.method if isinstance(m, SampleQuantile) else "linear"
            selection = work.selections[method]
            values = selection.values()
            out[m] = wrap(values[selection.qs.index(m.q)].reshape(shape), kept, m.axes)
        elif merged is not None:
            out[m] = moment_value(m, merged, kept)
    return out


__all__ = [
    "DEFAULT_SEGMENT_VALUES",
    "ReducedView",
    "Runner",
    "SegmentJob",
    "SegmentResult",
    "read_segment",
    "run_here",
    "run_in_threads",
    "run_segment_job",
    "stored_statistics",
]
