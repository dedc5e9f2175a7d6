"""Helpers shared by the built-in ops: broadcasting along a named axis and measure scoping."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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
