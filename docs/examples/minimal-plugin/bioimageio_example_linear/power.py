"""Processing op ``example_power``: a signed power, optionally of the input divided by its mean.

``y = sign(x) * |x / m| ** exponent`` with ``m`` the sample mean (over ``axes``, or over the whole
tensor) when ``divide_by_mean`` is true, else ``m = 1``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from bioimageio_core.plugin import Measure, MeasureValue, OpTarget, SampleMean, Tensor


def _axes(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise TypeError(f"'axes' must be a list of axis ids or null (got {value!r})")
    return tuple(str(a) for a in value)


@attrs.frozen(kw_only=True)
class PowerKwargs:
    """kwargs of ``example_power`` steps (parsed and validated like the built-in ops' kwargs)."""

    exponent: float = attrs.field(converter=float, validator=attrs.validators.gt(0.0))
    divide_by_mean: bool = False
    axes: tuple[str, ...] | None = attrs.field(default=None, converter=_axes)
    """Axes the mean is taken over (the others are kept); null: over the whole tensor."""
    eps: float = attrs.field(default=1e-6, converter=float, validator=attrs.validators.gt(0.0))


def power_measures(kwargs: PowerKwargs, target: OpTarget) -> tuple[Measure, ...]:
    """The statistics ``apply_power`` reads: the sample mean, if it divides by it."""
    if not kwargs.divide_by_mean:
        return ()
    return (SampleMean(target.member_id, kwargs.axes),)


def apply_power(
    kwargs: PowerKwargs,
    target: OpTarget,
    members: Mapping[str, Tensor],
    stat: Mapping[Measure, MeasureValue],
) -> Tensor:
    """The processed tensor for ``target.member_id`` (inputs are never modified)."""
    x = members[target.member_id]
    data = x.data.astype(np.float32)
    if kwargs.divide_by_mean:
        mean = stat[SampleMean(target.member_id, kwargs.axes)]
        # a mean over some axes is a Tensor over the kept axes: align it with x for broadcasting
        m = mean if isinstance(mean, float) else _broadcastable(mean, x.dims)
        data = data / (np.asarray(m, dtype=np.float32) + np.float32(kwargs.eps))
    return x.with_data(np.sign(data) * np.abs(data) ** np.float32(kwargs.exponent))


def _broadcastable(mean: Tensor, dims: tuple[str, ...]) -> np.ndarray[Any, Any]:
    order = [d for d in dims if d in mean.dims]
    data = mean.transpose(order).data
    shape = [mean.sizes[d] if d in mean.dims else 1 for d in dims]
    return data.reshape(shape)
