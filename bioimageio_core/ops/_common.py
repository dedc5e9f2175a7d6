"""Helpers shared by the built-in ops: broadcasting along a named axis and measure scoping."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from bioimageio_core.hookspecs import OpTarget
from bioimageio_core.stats import (
    BATCH_AXIS,
    DatasetMean,
    DatasetQuantile,
    DatasetStd,
    Measure,
    MeasureValue,
    QuantileMethod,
    SampleMean,
    SampleQuantile,
    SampleStd,
)
from bioimageio_core.tensor import Tensor


def along_axis(
    values: float | Sequence[float], axis: str, x: Tensor, what: str
) -> float | np.ndarray[Any, Any]:
    """``values`` as an array that broadcasts against ``x`` along ``axis`` (scalars unchanged)."""
    if isinstance(values, int | float):
        return float(values)
    array = np.asarray(values, dtype=np.float64)
    index = x.axis_index(str(axis))
    if array.ndim != 1 or array.shape[0] not in (1, x.shape[index]):
        raise ValueError(
            f"{what} has {array.size} values, but axis {axis!r} of the tensor has size "
            f"{x.shape[index]}; give one value per entry along {axis!r}"
        )
    shape = [1] * x.ndim
    shape[index] = array.shape[0]
    return array.reshape(shape)


def expand(value: MeasureValue, x: Tensor) -> float | np.ndarray[Any, Any]:
    """A measure value broadcastable against ``x`` (reduced axes become singletons)."""
    if not isinstance(value, Tensor):
        return float(value)
    unknown = [d for d in value.dims if d not in x.dims]
    if unknown:
        raise ValueError(f"statistic over axes {value.dims} does not fit a tensor with axes {x.dims}")
    ordered = value.transpose([d for d in x.dims if d in value.dims]).data
    shape = [value.sizes[d] if d in value.dims else 1 for d in x.dims]
    return np.asarray(ordered, dtype=np.float64).reshape(shape)


def get_stat(stat: Mapping[Measure, MeasureValue], measure: Measure, x: Tensor) -> float | np.ndarray[Any, Any]:
    try:
        value = stat[measure]
    except KeyError:
        raise KeyError(
            f"statistic {measure} was not computed; the pipeline must compute every measure "
            "in the ops' required_measures before applying them"
        ) from None
    return expand(value, x)


def as_axes(axes: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if axes is None else tuple(str(a) for a in axes)


def is_dataset_scope(axes: tuple[str, ...] | None, target: OpTarget, *, none_means_dataset: bool) -> bool:
    """bioimageio.core's scoping: ``batch`` in axes → dataset; ``axes: null`` → see caller."""
    if axes is None:
        return none_means_dataset
    return BATCH_AXIS in axes


def mean_std(
    member_id: str, axes: tuple[str, ...] | None, dataset: bool
) -> tuple[Measure, Measure]:
    if dataset:
        return DatasetMean(member_id, axes), DatasetStd(member_id, axes)
    return SampleMean(member_id, axes), SampleStd(member_id, axes)


def quantile(
    member_id: str, q: float, axes: tuple[str, ...] | None, method: QuantileMethod, dataset: bool
) -> Measure:
    if dataset:
        return DatasetQuantile(member_id, q, axes)
    return SampleQuantile(member_id, q, axes, method)


def to_float(x: Tensor) -> np.ndarray[Any, Any]:
    """The data as floats: float arrays unchanged, integers and bools as float64."""
    data = x.data
    if data.dtype.kind == "f":
        return data
    return data.astype(np.float64)


_CHUNK_VALUES = 1 << 16
"""Elements per chunk of :func:`in_float64_chunks`: float64 temporaries that stay in cache."""

Operand = float | np.ndarray[Any, Any]


def in_float64_chunks(
    fn: Callable[..., np.ndarray[Any, Any]], x: Tensor, *operands: Operand
) -> np.ndarray[Any, Any]:
    """``fn(data, *operands)`` computed in float64 and stored in ``x``'s float dtype (float64 for
    integer and bool data).

    The numbers equal computing ``fn`` on the whole data as float64 and casting the result, but
    the work runs chunk by chunk in C order, so no whole-size float64 temporary is made.
    ``operands`` are scalars or arrays that broadcast against ``x`` with ``x.ndim`` dimensions
    (as :func:`expand` and :func:`along_axis` give them).
    """
    data = x.data
    out = np.empty(data.shape, dtype=data.dtype if data.dtype.kind == "f" else np.float64)
    arrays = [o for o in operands if isinstance(o, np.ndarray)]
    if any(a.ndim != data.ndim for a in arrays):
        raise ValueError(f"operands must have {data.ndim} dimensions like the tensor {x.dims}")
    shape = data.shape
    inner, axis = 1, data.ndim  # axes from `axis` on fit in one chunk
    while axis > 0 and inner * shape[axis - 1] <= _CHUNK_VALUES:
        axis -= 1
        inner *= shape[axis]
    if axis == 0 or data.size == 0:
        out[...] = fn(data.astype(np.float64), *operands)
        return out
    split = axis - 1  # chunks run along this axis, leading axes one index at a time
    step = max(1, _CHUNK_VALUES // inner)
    for lead in np.ndindex(*shape[:split]):
        for start in range(0, shape[split], step):
            along = slice(start, start + step)
            index = (*lead, along)
            chunk_operands = [
                o
                if not isinstance(o, np.ndarray)
                else o[
                    (
                        *(i if o.shape[d] != 1 else 0 for d, i in enumerate(lead)),
                        along if o.shape[split] != 1 else slice(None),
                    )
                ]
                for o in operands
            ]
            out[index] = fn(data[index].astype(np.float64), *chunk_operands)
    return out
