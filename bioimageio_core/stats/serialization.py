"""Measures and their values as JSON-ready data (the dataset statistics file)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import numpy as np

from bioimageio_core.stats import measures
from bioimageio_core.tensor import Tensor

_MomentMeasure: TypeAlias = (
    "measures.SampleMean | measures.SampleVar | measures.SampleStd"
    " | measures.DatasetMean | measures.DatasetVar | measures.DatasetStd"
)
_MEASURE_NAMES: dict[type[Any], str] = {
    measures.SampleMean: "mean", measures.SampleVar: "var", measures.SampleStd: "std",
    measures.SampleQuantile: "quantile", measures.DatasetMean: "mean", measures.DatasetVar: "var",
    measures.DatasetStd: "std", measures.DatasetQuantile: "quantile",
}  # fmt: skip


def measure_to_json(measure: measures.Measure) -> dict[str, Any]:
    """``{"scope", "measure", "tensor_id", "axes", ["q", "method"]}`` of a measure."""
    data: dict[str, Any] = {
        "scope": "dataset" if isinstance(measure, measures.DATASET_MEASURES) else "sample",
        "measure": _MEASURE_NAMES[type(measure)],
        "tensor_id": measure.member_id,
        "axes": None if measure.axes is None else list(measure.axes),
    }
    if isinstance(measure, (measures.SampleQuantile, measures.DatasetQuantile)):
        data["q"] = measure.q
    if isinstance(measure, measures.SampleQuantile):
        data["method"] = measure.method
    return data


def measure_from_json(data: Mapping[str, Any]) -> measures.Measure:
    """The measure :func:`measure_to_json` wrote.

    Raises:
        ValueError: a field is missing or wrong (the message names it).
    """
    scope, name = data.get("scope", "dataset"), data.get("measure")
    classes: dict[tuple[Any, Any], type[_MomentMeasure]] = {
        ("sample", "mean"): measures.SampleMean, ("sample", "var"): measures.SampleVar,
        ("sample", "std"): measures.SampleStd, ("dataset", "mean"): measures.DatasetMean,
        ("dataset", "var"): measures.DatasetVar, ("dataset", "std"): measures.DatasetStd,
    }  # fmt: skip
    tensor_id = data.get("tensor_id")
    if not isinstance(tensor_id, str):
        raise ValueError(f"'tensor_id' must be a string (got {tensor_id!r})")
    axes = data.get("axes")
    if axes is not None and not (isinstance(axes, list) and all(isinstance(a, str) for a in axes)):
        raise ValueError(f"'axes' must be null or a list of axis ids (got {axes!r})")
    if name == "quantile":
        q = data.get("q")
        if isinstance(q, bool) or not isinstance(q, (int, float)):
            raise ValueError(f"'q' must be a number (got {q!r})")
        if scope == "sample":
            return measures.SampleQuantile(tensor_id, q, axes, data.get("method", "linear"))
        if scope == "dataset":
            return measures.DatasetQuantile(tensor_id, q, axes)
    cls = classes.get((scope, name))
    if cls is None:
        raise ValueError(
            f"unknown measure {name!r} with scope {scope!r} (measures: mean, var, std, quantile; "
            "scopes: sample, dataset)"
        )
    measure: measures.Measure = cls(tensor_id, axes)
    return measure


def value_to_json(value: measures.MeasureValue) -> float | dict[str, Any]:
    """A float as it is; a Tensor as ``{"dims": [...], "data": nested lists}``."""
    if isinstance(value, Tensor):
        return {"dims": list(value.dims), "data": np.asarray(value.data, dtype=np.float64).tolist()}
    return float(value)


def value_from_json(data: Any) -> measures.MeasureValue:
    """The value :func:`value_to_json` wrote.

    Raises:
        ValueError: neither a number nor ``{"dims", "data"}`` of matching dimensions.
    """
    if isinstance(data, bool):
        raise ValueError(f"a value must be a number or {{'dims', 'data'}} (got {data!r})")
    if isinstance(data, (int, float)):
        return float(data)
    if isinstance(data, Mapping) and isinstance(data.get("dims"), list):
        dims = tuple(str(d) for d in data["dims"])
        try:
            array = np.asarray(data.get("data"), dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("'data' must be nested lists of numbers") from None
        if array.ndim != len(dims):
            raise ValueError(
                f"'data' has {array.ndim} dimension(s) but 'dims' names {len(dims)}: {list(dims)}"
            )
        return Tensor(array, dims)
    raise ValueError(f"a value must be a number or {{'dims', 'data'}} (got {data!r})")
