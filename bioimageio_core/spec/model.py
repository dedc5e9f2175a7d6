"""Model description, format 0.5.x (the one model shape everything downstream sees)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from bioimageio_core.spec import _validators as v
from bioimageio_core.spec._convert import KIND
from bioimageio_core.spec.axes import InputAxis, OutputAxis
from bioimageio_core.spec.data import IntervalOrRatioDataDescr, TensorData, dtype_of
from bioimageio_core.spec.generic import (
    Author,
    FileDescr,
    TrainingData,
    _ResourceBase,
    extra,
    tag,
)
from bioimageio_core.spec.processing import ProcessingStep
from bioimageio_core.spec.weights import WeightsDescr

_TENSOR_ID = v.identifier(32)

WeightsFormatName = Literal[
    "keras_hdf5", "onnx", "pytorch_state_dict", "tensorflow_js", "tensorflow_saved_model_bundle",
    "torchscript",
]  # fmt: skip


@attrs.frozen(kw_only=True)
class _TensorDescrBase:
    @property
    def dtype(self) -> str:
        return dtype_of(self.data)  # type: ignore[attr-defined]

    @property
    def shape(self) -> tuple[Any, ...]:
        return tuple(a.size for a in self.axes)  # type: ignore[attr-defined]

    def get_axis(self, axis_id: str) -> Any:
        """The axis with id ``axis_id`` (KeyError when absent)."""
        for axis in self.axes:  # type: ignore[attr-defined]
            if axis.id == axis_id:
                return axis
        raise KeyError(axis_id)


@attrs.frozen(kw_only=True)
class InputTensorDescr(_TensorDescrBase):
    id: str = attrs.field(default="input", validator=_TENSOR_ID)
    description: str = attrs.field(default="", validator=v.length(max=128))
    axes: tuple[InputAxis, ...] = attrs.field(validator=v.length(min=1))
    test_tensor: FileDescr | None = None
    sample_tensor: FileDescr | None = None
    data: TensorData = IntervalOrRatioDataDescr()
    optional: bool = False
    preprocessing: tuple[ProcessingStep, ...] = ()


@attrs.frozen(kw_only=True)
class OutputTensorDescr(_TensorDescrBase):
    id: str = attrs.field(default="output", validator=_TENSOR_ID)
    description: str = attrs.field(default="", validator=v.length(max=128))
    axes: tuple[OutputAxis, ...] = attrs.field(validator=v.length(min=1))
    test_tensor: FileDescr | None = None
    sample_tensor: FileDescr | None = None
    data: TensorData = IntervalOrRatioDataDescr()
    postprocessing: tuple[ProcessingStep, ...] = ()


@attrs.frozen(kw_only=True)
class ReproducibilityTolerance:
    """How closely test outputs must be reproduced (first matching entry applies)."""

    relative_tolerance: float = attrs.field(default=1e-3, validator=v.bounds(ge=0, le=1e-2))
    absolute_tolerance: float = attrs.field(default=1e-3, validator=v.bounds(ge=0))
    mismatched_elements_per_million: int = attrs.field(
        default=100, validator=v.bounds(ge=0, le=1000)
    )
    output_ids: tuple[str, ...] = ()
    weights_formats: tuple[str, ...] = ()
    extra: Mapping[str, Any] = extra(None)


@attrs.frozen(kw_only=True)
class BioimageioConfig:
    reproducibility_tolerance: tuple[ReproducibilityTolerance, ...] = ()
    extra: Mapping[str, Any] = extra(None)


@attrs.frozen(kw_only=True)
class Config:
    bioimageio: BioimageioConfig = BioimageioConfig()
    extra: Mapping[str, Any] = extra(None)


@attrs.frozen(kw_only=True)
class RunMode:
    name: str
    kwargs: Mapping[str, Any] = attrs.Factory(dict)


@attrs.frozen(kw_only=True)
class ModelDescr(_ResourceBase):
    """A model description, format 0.5.x."""

    format_version: str = attrs.field(
        validator=v.matches(r"0\.5\.\d+", "a model format version 0.5.x")
    )
    type: Literal["model"] = tag("model")
    inputs: tuple[InputTensorDescr, ...] = attrs.field(validator=v.length(min=1))
    outputs: tuple[OutputTensorDescr, ...] = attrs.field(validator=v.length(min=1))
    weights: WeightsDescr
    packaged_by: tuple[Author, ...] = ()
    run_mode: RunMode | None = None
    timestamp: str | None = attrs.field(default=None, metadata={KIND: "timestamp"})
    training_data: TrainingData | None = None
    config: Config = Config()

    def get_tensor(self, tensor_id: str) -> InputTensorDescr | OutputTensorDescr:
        """The input or output tensor with id ``tensor_id`` (KeyError when absent)."""
        tensors: tuple[InputTensorDescr | OutputTensorDescr, ...] = (*self.inputs, *self.outputs)
        for t in tensors:
            if t.id == tensor_id:
                return t
        raise KeyError(tensor_id)
