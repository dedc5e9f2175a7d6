"""Measures: frozen value types naming a statistic of one member over some axes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, TypeAlias

import attrs
import numpy as np

from bioimageio_core.tensor import Tensor

BATCH_AXIS = "batch"
QuantileMethod: TypeAlias = Literal["linear", "inverted_cdf"]
MeasureValue: TypeAlias = "float | Tensor"
Array: TypeAlias = "np.ndarray[Any, Any]"


def _axes_converter(value: Iterable[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(sorted({str(a) for a in value}))


def _not_batch(
    instance: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...] | None
) -> None:
    if value is not None and BATCH_AXIS in value:
        raise ValueError(
            f"{type(instance).__name__}.axes must not contain {BATCH_AXIS!r} (got {value}); "
            "a statistic over the batch axis is a dataset measure"
        )


def _none_or_batch(
    instance: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...] | None
) -> None:
    if value is not None and BATCH_AXIS not in value:
        raise ValueError(
            f"{type(instance).__name__}.axes must be None or contain {BATCH_AXIS!r} (got {value}); "
            "a statistic that keeps the batch axis is a sample measure"
        )


def _check_q(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{type(instance).__name__}.q must be in [0, 1] (got {value})")


def _check_method(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in ("linear", "inverted_cdf"):
        raise ValueError(
            f"{type(instance).__name__}.method must be 'linear' or 'inverted_cdf' (got {value!r})"
        )


@attrs.frozen
class SampleMean:
    """Mean of one sample's member over ``axes`` (None: all axes), NaN skipped."""

    member_id: str
    axes: tuple[str, ...] | None = attrs.field(
        default=None, converter=_axes_converter, validator=_not_batch
    )


@attrs.frozen
class SampleVar:
    """Population variance of one sample's member over ``axes``."""

    member_id: str
    axes: tuple[str, ...] | None = attrs.field(
        default=None, converter=_axes_converter, validator=_not_batch
    )


@attrs.frozen
class SampleStd:
    """Population standard deviation of one sample's member over ``axes``."""

    member_id: str
    axes: tuple[str, ...] | None = attrs.field(
        default=None, converter=_axes_converter, validator=_not_batch
    )


@attrs.frozen
class SampleQuantile:
    """Quantile ``q`` (in [0, 1]) of one sample's member over ``axes``, NaN skipped."""

    member_id: str
    q: float = attrs.field(converter=float, validator=_check_q)
    axes: tuple[str, ...] | None = attrs.field(
        default=None, converter=_axes_converter, validator=_not_batch
    )
    method: QuantileMethod = attrs.field(default="linear", validator=_check_method)


@attrs.frozen
class DatasetMean:
    """Mean over every sample seen, reducing ``axes`` (None: all axes; else must contain batch)."""

    member_id: str
    axes: tuple[str, ...] | None = attrs.field(
        default=None, converter=_axes_converter, validator=_none_or_batch
    )


@attrs.frozen
class DatasetVar:
    """Population variance over every sample seen."""

    member_id: str
    axes: tuple[str, ...] | None = attrs.field(
        default=None, converter=_axes_converter, validator=_none_or_batch
    )


@attrs.frozen
class DatasetStd:
    """Population standard deviation over every sample seen."""

    member_id: str
    axes: tuple[str, ...] | None = attrs.field(
        default=None, converter=_axes_converter, validator=_none_or_batch
    )


@attrs.frozen
class DatasetQuantile:
    """Quantile ``q`` over every sample seen (method linear; see the module docstring)."""

    member_id: str
    q: float = attrs.field(converter=float, validator=_check_q)
    axes: tuple[str, ...] | None = attrs.field(
        default=None, converter=_axes_converter, validator=_none_or_batch
    )


SampleMeasure: TypeAlias = "SampleMean | SampleVar | SampleStd | SampleQuantile"
DatasetMeasure: TypeAlias = "DatasetMean | DatasetVar | DatasetStd | DatasetQuantile"
Measure: TypeAlias = "SampleMeasure | DatasetMeasure"

SAMPLE_MEASURES = (SampleMean, SampleVar, SampleStd, SampleQuantile)
DATASET_MEASURES = (DatasetMean, DatasetVar, DatasetStd, DatasetQuantile)
