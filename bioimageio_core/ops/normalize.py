"""Ops that use statistics: clip (percentiles), zero_mean_unit_variance, scale_range,
scale_mean_variance.

Statistics scope follows bioimageio.core: ``axes`` containing ``batch`` → dataset statistics;
``axes`` without ``batch`` → per-sample statistics over those axes; ``axes: null`` → dataset
statistics over all axes (``OpTarget.axes_none_scope == "dataset"``, the default) or per-sample
statistics over all axes (``"sample"``). ``scale_mean_variance`` treats ``axes: null`` as sample
scope, as bioimageio.core does.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
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


def _zmuv_measures(kwargs: Any, target: OpTarget) -> tuple[Measure, Measure]:
    axes, dataset = _scope(kwargs, target)
    return mean_std(target.member_id, axes, dataset)


def zmuv_required_measures(kwargs: Any, target: OpTarget) -> Collection[Measure]:
    return _zmuv_measures(kwargs, target)


def zero_mean_unit_variance(
    kwargs: Any, target: OpTarget, members: Mapping[str, Tensor], stat: Mapping[Measure, MeasureValue]
) -> Tensor:
    """``(x - mean) / (std + eps)`` with population std (eps default 1e-6)."""
    x = _member(target, members)
    mean_m, std_m = _zmuv_measures(kwargs, target)
    eps = float(getattr(kwargs, "eps", DEFAULT_EPS))
    mean, std = get_stat(stat, mean_m, x), get_stat(stat, std_m, x)
    return x.with_data(in_float64_chunks(lambda v, m, s: (v - m) / (s + eps), x, mean, std))


# scale_range --------------------------------------------------------------------------------


def _scale_range_measures(kwargs: Any, target: OpTarget) -> tuple[Measure, Measure]:
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


def scale_range_required_measures(kwargs: Any, target: OpTarget) -> Collection[Measure]:
    return _scale_range_measures(kwargs, target)


def scale_range(
    kwargs: Any, target: OpTarget, members: Mapping[str, Tensor], stat: Mapping[Measure, MeasureValue]
) -> Tensor:
    """``(x - lo) / (hi - lo + eps)`` with lo/hi the percentiles (linear) of the reference tensor."""
    x = _member(target, members)
    lo_m, hi_m = _scale_range_measures(kwargs, target)
    eps = float(getattr(kwargs, "eps", DEFAULT_EPS))
    lo, hi = get_stat(stat, lo_m, x), get_stat(stat, hi_m, x)
    return x.with_data(in_float64_chunks(lambda v, a, b: (v - a) / (b - a + eps), x, lo, hi))


# scale_mean_variance --------------------------------------------------------------------------


def _smv_measures(kwargs: Any, target: OpTarget) -> tuple[Measure, Measure, Measure, Measure]:
    axes, dataset = _scope(kwargs, target, none_means_dataset=False)
    reference = str(getattr(kwargs, "reference_tensor", None) or target.member_id)
    return (*mean_std(target.member_id, axes, dataset), *mean_std(reference, axes, dataset))


def smv_required_measures(kwargs: Any, target: OpTarget) -> Collection[Measure]:
    return _smv_measures(kwargs, target)


def scale_mean_variance(
    kwargs: Any, target: OpTarget, members: Mapping[str, Tensor], stat: Mapping[Measure, MeasureValue]
) -> Tensor:
    """``(x - mean) / (std + eps) * (ref_std + eps) + ref_mean``."""
    x = _member(target, members)
    mean_m, std_m, ref_mean_m, ref_std_m = _smv_measures(kwargs, target)
    eps = float(getattr(kwargs, "eps", DEFAULT_EPS))
    mean, std = get_stat(stat, mean_m, x), get_stat(stat, std_m, x)
    ref_mean, ref_std = get_stat(stat, ref_mean_m, x), get_stat(stat, ref_std_m, x)
    out = in_float64_chunks(
        lambda v, m, s, rm, rs: (v - m) / (s + eps) * (rs + eps) + rm,
        x,
        mean,
        std,
        ref_mean,
        ref_std,
    )
    return x.with_data(out)
