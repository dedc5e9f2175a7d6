"""Ops without statistics: binarize, clip (fixed bounds), ensure_dtype, fixed_zero_mean_unit_variance,
scale_linear, sigmoid, softmax.

Every function takes the step's kwargs object (read by field name, so the kwargs classes of
:mod:`bioimageio_core.spec` and plugin-defined look-alikes both work), the :class:`OpTarget`, the
sample's members and its statistics, and returns the processed tensor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from bioimageio_core.hookspecs import OpTarget
from bioimageio_core.ops._common import along_axis, in_float64_chunks, to_float
from bioimageio_core.stats import Measure, MeasureValue
from bioimageio_core.tensor import Tensor

FIXED_ZMUV_EPS = 1e-6
"""eps added to the std of ``fixed_zero_mean_unit_variance`` (as bioimageio.core does)."""


def _member(target: OpTarget, members: Mapping[str, Tensor]) -> Tensor:
    try:
        return members[target.member_id]
    except KeyError:
        raise KeyError(
            f"op applied to member {target.member_id!r}, but the sample has {sorted(members)}"
        ) from None


def _fixed(kwargs: Any, value: Any, x: Tensor, what: str) -> float | np.ndarray[Any, Any]:
    """``value`` as a number; with ``kwargs.axis``, one value per entry along that axis of ``x``
    (``what`` names the field in errors)."""
    axis = getattr(kwargs, "axis", None)
    return float(value) if axis is None else along_axis(value, str(axis), x, what)


def binarize(
    kwargs: Any, target: OpTarget, members: Mapping[str, Tensor], stat: Mapping[Measure, MeasureValue]
) -> Tensor:
    """``x > threshold`` (bool). With ``axis``, one threshold per entry along that axis."""
    x = _member(target, members)
    threshold = _fixed(kwargs, kwargs.threshold, x, "binarize threshold")
    return x.with_data(x.data > threshold)


def clip_values(x: Tensor, lower: Any, upper: Any) -> Tensor:
    """``clip(x, lower, upper)``; either bound may be None (one-sided)."""
    if lower is None and upper is None:
        return x
    return x.with_data(np.clip(x.data, lower, upper))


def ensure_dtype_array(data: np.ndarray[Any, Any], dtype: npt.DTypeLike) -> np.ndarray[Any, Any]:
    """Cast ``data`` to ``dtype`` with safe rules for integer targets.

    * same dtype: unchanged (no copy);
    * float → integer: round half to even, NaN → 0, then clip to the target's range
      (``inf``/``-inf`` become the largest/smallest value);
    * integer → integer: clip to the target's range;
    * anything else (to float, to bool, from bool): a plain numpy cast.
    """
    target = np.dtype(dtype)
    if data.dtype == target:
        return data
    if target.kind in "iu":
        info = np.iinfo(target)
        if data.dtype.kind == "f":
            with np.errstate(invalid="ignore"):
                rounded = np.rint(data.astype(np.float64, copy=False))
                rounded = np.nan_to_num(rounded, nan=0.0, posinf=float(info.max), neginf=float(info.min))
                # float64 cannot represent every int64; clip in float, then fix the edges exactly
                clipped = np.clip(rounded, float(info.min), float(info.max))
                out = clipped.astype(target)
                out[clipped >= float(info.max)] = info.max
                out[clipped <= float(info.min)] = info.min
            return np.asarray(out)
        if data.dtype.kind in "iu":
            source = np.iinfo(data.dtype)
            lo, hi = max(info.min, source.min), min(info.max, source.max)
            return np.asarray(np.clip(data, lo, hi).astype(target))
    return np.asarray(data.astype(target))


def ensure_dtype(
    kwargs: Any, target: OpTarget, members: Mapping[str, Tensor], stat: Mapping[Measure, MeasureValue]
) -> Tensor:
    """Cast to ``kwargs.dtype`` (see :func:`ensure_dtype_array` for the rules)."""
    x = _member(target, members)
    return x.with_data(ensure_dtype_array(x.data, str(kwargs.dtype)))


def fixed_zero_mean_unit_variance(
    kwargs: Any, target: OpTarget, members: Mapping[str, Tensor], stat: Mapping[Measure, MeasureValue]
) -> Tensor:
    """``(x - mean) / (std + 1e-6)``; with ``axis``, mean and std are lists along that axis."""
    x = _member(target, members)
    mean = _fixed(kwargs, kwargs.mean, x, "fixed_zero_mean_unit_variance mean")
    std = _fixed(kwargs, kwargs.std, x, "fixed_zero_mean_unit_variance std")
    return x.with_data(
        in_float64_chunks(lambda v, m, s: (v - m) / (s + FIXED_ZMUV_EPS), x, mean, std)
    )


def scale_linear(
    kwargs: Any, target: OpTarget, members: Mapping[str, Tensor], stat: Mapping[Measure, MeasureValue]
) -> Tensor:
    """``x * gain + offset``; with ``axis``, gain and/or offset are lists along that axis."""
    x = _member(target, members)
    gain = _fixed(kwargs, getattr(kwargs, "gain", 1.0), x, "scale_linear gain")
    offset = _fixed(kwargs, getattr(kwargs, "offset", 0.0), x, "scale_linear offset")
    return x.with_data(x.data * gain + offset)


def sigmoid(
    kwargs: Any, target: OpTarget, members: Mapping[str, Tensor], stat: Mapping[Measure, MeasureValue]
) -> Tensor:
    """``1 / (1 + exp(-x))``; integer inputs are computed in float64."""
    x = _member(target, members)
    data = to_float(x)
    with np.errstate(over="ignore"):
        return x.with_data(1.0 / (1.0 + np.exp(-data)))


def softmax(
    kwargs: Any, target: OpTarget, members: Mapping[str, Tensor], stat: Mapping[Measure, MeasureValue]
) -> Tensor:
    """Numerically stable softmax along ``kwargs.axis`` (default ``channel``)."""
    x = _member(target, members)
    index = x.axis_index(str(getattr(kwargs, "axis", None) or "channel"))
    data = to_float(x)
    with np.errstate(invalid="ignore", over="ignore"):
        shifted = data - np.max(data, axis=index, keepdims=True)
        e = np.exp(shifted)
        return x.with_data(e / np.sum(e, axis=index, keepdims=True))
