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
from bioimageio_core.spec.padding import PadDescr
from bioimageio_core.spec.processing import ProcessingStep
from bioimageio_core.spec.tolerance import (
    DEFAULT_REPRODUCIBILITY_TOLERANCE,
    AnyReproducibilityTolerance,
)
from bioimageio_core.spec.weights import WeightsDescr

_TENSOR_ID = v.identifier(32)

WeightsFormatName = Literal[
    "keras_hdf5", "keras_v3", "onnx", "pytorch_state_dict", "tensorflow_js",
    "tensorflow_saved_model_bundle", "torchscript",
]  # fmt: skip

MODEL_ID_PATTERN = r"[a-z0-9_.\-]+(/[a-z0-9_.\-]+)*"
"""A resource id as ``output_of`` names it: lower-case letters, digits, ``_ - / .``; no leading or
trailing ``/`` (``affable-shark``, ``affable-shark/1.2``, ``10.5281/zenodo.123``, ``../up/rdf.yaml``)."""


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
    pad: PadDescr | None = None
    """How this input is padded beyond its borders (None: the runtime's default)."""
    output_of: str | None = attrs.field(
        default=None,
        validator=v.matches(
            MODEL_ID_PATTERN,
            "a resource id (lower-case letters, digits, '_', '-', '.', '/'; "
            "no leading or trailing '/'), e.g. 'affable-shark' or 'affable-shark/1.2'",
        ),
    )
    """Id of the model whose output of the same tensor id feeds this input (model chaining)."""


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
class BioimageioConfig:
    reproducibility_tolerance: tuple[AnyReproducibilityTolerance, ...] = (
        DEFAULT_REPRODUCIBILITY_TOLERANCE
    )
    """First entry that applies to an output and weight format wins (see ``spec.tolerance``)."""
    extra: Mapping[str, Any] = extra(None)


@attrs.frozen(kw_only=True)
class Config:
    bioimageio: BioimageioConfig = BioimageioConfig()
    stardist: Any = None
    """Free-form StarDist configuration (kept as written)."""
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
