"""Hook implementations of the toy plugin: weight format ``toy_scale`` and op ``toy_add``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from bioimageio_core.plugin import (
    AdapterRequest,
    Measure,
    MeasureValue,
    ModelAdapter,
    OpRegister,
    OpSpec,
    OpTarget,
    SampleMean,
    Tensor,
    WeightFormatRegister,
    WeightFormatSpec,
    hookimpl,
)


@attrs.frozen
class ToyScaleWeightsDescr:
    """Weights entry ``toy_scale``: the "model" multiplies every input by ``factor``."""

    source: str
    factor: float = 1.0
    sha256: str | None = None


class ToyScaleAdapter(ModelAdapter):
    weights_format = "toy_scale"

    def __init__(self, request: AdapterRequest) -> None:
        super().__init__(request)
        self.factor = float(request.weights.factor)
        self.loaded = True

    def forward(self, inputs: Mapping[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
        ordered = self.ordered_inputs(inputs)
        return self.outputs_by_id([a * self.factor for a in ordered if a is not None])

    def unload(self) -> None:
        self.loaded = False


@attrs.frozen
class ToyAddKwargs:
    """kwargs of op ``toy_add``: add ``value``; with ``center``, subtract the sample mean first."""

    value: float
    center: bool = False


def _toy_add_measures(kwargs: ToyAddKwargs, target: OpTarget) -> tuple[Measure, ...]:
    return (SampleMean(target.member_id),) if kwargs.center else ()


def _toy_add(
    kwargs: ToyAddKwargs,
    target: OpTarget,
    members: Mapping[str, Tensor],
    stat: Mapping[Measure, MeasureValue],
) -> Tensor:
    x = members[target.member_id]
    data = x.data + kwargs.value
    if kwargs.center:
        mean = stat[SampleMean(target.member_id)]
        assert isinstance(mean, float)
        data = data - mean
    return x.with_data(data)


@hookimpl
def bioimageio_weight_formats(register: WeightFormatRegister) -> None:
    register.add(
        WeightFormatSpec(
            name="toy_scale",
            entry_class=ToyScaleWeightsDescr,
            create_adapter=ToyScaleAdapter,
            is_available=lambda: None,
            priority=50,
            install_hint="pip install bioimageio-toy-plugin",
        )
    )


@hookimpl
def bioimageio_processing_ops(register: OpRegister) -> None:
    # element by element: without statistics (center) it may run on each output block
    register.add(OpSpec("toy_add", (ToyAddKwargs,), _toy_add, _toy_add_measures, pointwise=True))
