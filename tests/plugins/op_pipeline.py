"""Run processing steps the way prediction runs them: as a model's preprocessing, through
``PredictionPipeline.apply_preprocessing`` (statistics of the raw sample, running dataset
statistics across samples, reference tensors among the sample's members).

The model is described around the given tensors (each member an input with the sizes it has,
axis ``batch`` a batch axis, ``channel`` a channel axis, others space axes) and its preprocessing
is exactly the given steps; no weights are loaded and nothing is predicted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
import numpy as np

from bioimageio_core.adapters import AdapterRequest, ModelAdapter
from bioimageio_core.pipeline import PredictionPipeline, create_prediction_pipeline
from bioimageio_core.spec import ModelDescr, ProcessingStep, build_description
from bioimageio_core.tensor import Tensor

Array = np.ndarray[Any, Any]


class _NoModel(ModelAdapter):
    def forward(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        raise AssertionError("preprocessing runs no model")

    def unload(self) -> None:
        pass


def _axes(tensor: Tensor) -> list[dict[str, Any]]:
    axes: list[dict[str, Any]] = []
    for dim, size in zip(tensor.dims, tensor.data.shape, strict=True):
        if dim == "batch":
            axes.append({"type": "batch"})
        elif dim == "channel":
            axes.append({"type": "channel", "channel_names": [f"c{i}" for i in range(size)]})
        else:
            axes.append({"type": "space", "id": dim, "size": int(size)})
    return axes


def model_around(
    members: Mapping[str, Tensor], member: str, steps: Sequence[ProcessingStep]
) -> ModelDescr:
    """A model whose inputs are ``members`` and whose ``member`` is preprocessed by ``steps``."""
    raw = {
        "format_version": "0.5.4",
        "type": "model",
        "name": "processing steps",
        "inputs": [
            {"id": mid, "axes": _axes(t), "data": {"type": str(t.data.dtype)}}
            for mid, t in members.items()
        ],
        "outputs": [{"id": "unused_output", "axes": _axes(members[member])}],
        "weights": {"onnx": {"source": "unused.onnx", "opset_version": 17}},
    }
    result = build_description(raw)
    assert isinstance(result.descr, ModelDescr), result.issues
    inputs = tuple(
        attrs.evolve(t, preprocessing=tuple(steps) if t.id == member else ())
        for t in result.descr.inputs
    )
    return attrs.evolve(result.descr, inputs=inputs)


def preprocessing_pipeline(
    model: ModelDescr, *, axes_none_scope: Literal["dataset", "sample"] = "dataset"
) -> PredictionPipeline:
    """The pipeline of ``model`` with its processing but no weights (nothing is predicted)."""
    adapter = _NoModel(AdapterRequest.for_model(model, next(iter(model.weights.available_formats))))
    return create_prediction_pipeline(model, model_adapter=adapter, axes_none_scope=axes_none_scope)


def steps_pipeline(
    members: Mapping[str, Tensor],
    member: str,
    steps: Sequence[ProcessingStep],
    *,
    axes_none_scope: Literal["dataset", "sample"] = "dataset",
) -> PredictionPipeline:
    """The pipeline of :func:`model_around`, to apply its preprocessing to samples of
    ``members``' shapes (several samples: running dataset statistics accumulate)."""
    return preprocessing_pipeline(
        model_around(members, member, steps), axes_none_scope=axes_none_scope
    )


def preprocess(pipeline: PredictionPipeline, members: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``members`` after the pipeline's preprocessing (a new sample each call)."""
    return dict(pipeline.apply_preprocessing(dict(members)).members)
