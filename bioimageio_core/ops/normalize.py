"""Ops that use statistics: clip (percentiles), zero_mean_unit_variance, scale_range,
scale_mean_variance.

Statistics scope follows bioimageio.core: ``axes`` containing ``batch`` → dataset statistics;
``axes`` without ``batch`` → per-sample statistics over those axes; ``axes: null`` → dataset
statistics over all axes (``OpTarget.axes_none_scope == "dataset"``, the default) or per-sample
statistics over all axes (``"sample"``). ``scale_mean_variance`` treats ``axes: null`` as sample
scope, as bioimageio.core does.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from bioimageio_core.hookspecs import OpTarget
from bioimageio_core.ops._common import (
    as_axes,
    get_stat,
    in_float64_chunks,
    is_dataset_scope,
    mean_std,
    quantile,
)
from bioimageio_core.ops.elementwise import _member, clip_values
from bioimageio_core.stats import Measure, MeasureValue
from bioimageio_core.tensor import Tensor

DEFAULT_EPS = 1e-6


def _scope(
    kwargs: Any, target: OpTarget, *, none_means_dataset: bool | None = None
) -> tuple[tuple[str, ...] | None, bool]:
    """The op's reduction ``axes`` and whether they mean dataset statistics.

    ``none_means_dataset`` (default: from ``target.axes_none_scope``) decides for ``axes: null``.
    """
    axes = as_axes(getattr(kwargs, "axes", None))
    if none_means_dataset is None:
        none_means_dataset = target.axes_none_scope == "dataset"
    return axes, is_dataset_scope(axes, target, none_means_dataset=none_means_dataset)


def _normalized(
    members: Mapping[str, Tensor],
    target: OpTarget,
    stat: Mapping[Measure, MeasureValue],
    measures: Sequence[Measure],
    formula: Callable[..., Any],
) -> Tensor:
    """``formula(x, *values of measures)`` on the target member, in float64 chunks."""
    x = _member(target, members)
    values = [get_stat(stat, m, x) for m in measures]
    return x.with_data(in_float64_chunks(formula, x, *values))


# clip ---------------------------------------------------------------------------------------


def _clip_measures(kwargs: Any, target: OpTarget) -> tuple[Measure | None, Measure | None]:
    axes, dataset = _scope(kwargs, target)
    lo_p = getattr(kwargs, "min_percentile", None)
    hi_p = getattr(kwargs, "max_percentile", None)
    lo = None if lo_p is None else quantile(target.member_id, float(lo_p) / 100, axes, "inverted_cdf", dataset)
    hi = None if hi_p is None else quantile(target.member_id, float(hi_p) / 100, axes, "inverted_cdf", dataset)
    return lo, hi


def clip_required_measures(kwargs: Any, target: OpTarget) -> Collection[Measure]:
    return tuple(m for m in _clip_measures(kwargs, target) if m is not None)


def clip(
    kwargs: Any, target: OpTarget, members: Mapping[str, Tensor], stat: Mapping[Measure, MeasureValue]
) -> Tensor:
    """``clip(x, min, max)``; a bound given as a percentile is that quantile (inverted_cdf)."""
    x = _member(target, members)
    lo_m, hi_m = _clip_measures(kwargs, target)
    lower = get_stat(stat, lo_m, x) if lo_m is not None else getattr(kwargs, "min", None)
    upper = get_stat(stat, hi_m, x) if hi_m is not None else getattr(kwargs, "max", None)
    return clip_values(x, lower, upper)


# zero_mean_unit_variance ---------------------------------------------------------------------


def zmuv_required_measures(kwargs: Any, target: OpTarget) -> tuple[Measure, Measure]:
    axes, dataset = _scope(kwargs, target)
    return mean_std(target.member_id, axes, dataset)


def zero_mean_unit_variance(
    kwargs: Any, target: OpTarget, members: Mapping[str, Tensor], stat: Mapping[Measure, MeasureValue]
) -> Tensor:
    """``(x - mean) / (std + eps)`` with population std (eps default 1e-6)."""
    eps = float(getattr(kwargs, "eps", DEFAULT_EPS))
    measures = zmuv_required_measures(kwargs, target)
    return _normalized(members, target, stat, measures, lambda v, m, s: (v - m) / (s + eps))


# scale_range --------------------------------------------------------------------------------


def scale_range_required_measures(kwargs: Any, target: OpTarget) -> tuple[Measure, Measure]:
    axes, dataset = _scope(kwargs, target)
    lo_p = float(getattr(kwargs, "min_percentile", 0.0))
    hi_p = float(getattr(kwargs, "max_percentile", 100.0))
    if not lo_p < hi_p:
        raise ValueError(
            f"scale_range min_percentile ({lo_p}) must be smaller than max_percentile ({hi_p})"
        )
    member = str(getattr(kwargs, "reference_tensor", None) or target.member_id)
    return (
        quantile(member, lo_p / 100, axes, "linear", dataset),
        quantile(member, hi_p / 100, axes, "linear", dataset),
    )


def scale_range(
    kwargs: Any, target: OpTarget, members: Mapping[str, Tensor], stat: Mapping[Measure, MeasureValue]
) -> Tensor:
    """``(x - lo) / (hi - lo + eps)`` with lo/hi the percentiles (linear) of the reference tensor."""
    eps = float(getattr(kwargs, "eps", DEFAULT_EPS))
    measures = scale_range_required_measures(kwargs, target)
    return _normalized(members, target, stat, measures, lambda v, a, b: (v - a) / (b - a + eps))


# scale_mean_variance --------------------------------------------------------------------------


def smv_required_measures(kwargs: Any, target: OpTarget) -> tuple[Measure, Measure, Measure, Measure]:
    axes, dataset = _scope(kwargs, target, none_means_dataset=False)
    reference = str(getattr(kwargs, "reference_tensor", None) or target.member_id)
    return (*mean_std(target.member_id, axes, dataset), *mean_std(reference, axes, dataset))


def scale_mean_variance(
    kwargs: Any, target: OpTarget, members: Mapping[str, Tensor], stat: Mapping[Measure, MeasureValue]
) -> Tensor:
    """``(x - mean) / (std + eps) * (ref_std + eps) + ref_mean``."""
    eps = float(getattr(kwargs, "eps", DEFAULT_EPS))
    return _normalized(
        members,
        target,
        stat,
        smv_required_measures(kwargs, target),
        lambda v, m, s, rm, rs: (v - m) / (s + eps) * (rs + eps) + rm,
    )
