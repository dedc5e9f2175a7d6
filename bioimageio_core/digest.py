"""Turn what a user passes as model inputs into a :class:`~bioimageio_core.sample.Sample` the model accepts.

Accepted inputs (see :data:`Inputs`): a ``Sample``; a mapping of input tensor id to a numpy array,
a :class:`~bioimageio_core.tensor.Tensor` or a file path; or, for a model with one input, one such
value. Arrays and files take their axes from ``axes`` (a letters string such as ``"yx"``, a
sequence of axis ids, or a mapping tensor id → either), else from the file, else from the model
(same number of dimensions), else a guess from the shape. Each tensor is then brought into the
model's axis order (a view, never a copy) with missing singleton axes (batch, channel) added, and
checked before any compute: tensor ids, axes, channel sizes, dtype and batch sizes. Errors name the
tensor and the axis and say what would be valid.

Spatial sizes that are not valid model sizes are no error here: the pipeline pads them to the next
valid size (or tiles them) and crops the result back. :func:`check_input_sizes` is the strict check
for data that goes to the model as it is (block shapes, :meth:`PredictionPipeline.predict_sample_block`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np

from bioimageio_core import shapes
from bioimageio_core.errors import InputError
from bioimageio_core.io import load_tensor
from bioimageio_core.io.axes import AxesLike, fit_to_axes, resolve_axes
from bioimageio_core.sample import Sample
from bioimageio_core.shapes import (
    FixedSize,
    ModelShape,
    TensorAxis,
    as_input_error,
    get_batch_size,
)
from bioimageio_core.tensor import Tensor

PathLike: TypeAlias = "str | os.PathLike[str]"
InputValue: TypeAlias = "Tensor | np.ndarray[Any, Any] | str | os.PathLike[str]"
Inputs: TypeAlias = "Sample | Mapping[str, InputValue] | InputValue"
"""What :func:`digest_inputs` (and ``predict``) accept as the inputs of one sample."""
AxesArg: TypeAlias = "AxesLike | Mapping[str, AxesLike] | None"
"""Axes of array/file inputs: one for a single input, or a mapping tensor id → axes."""
BlockShapeArg: TypeAlias = "Mapping[str, Mapping[str, int]] | Mapping[TensorAxis, int]"
"""An input block shape: ``{tensor_id: {axis_id: size}}`` or ``{(tensor_id, axis_id): size}``."""


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names) or "(none)"


def _where(model: ModelShape, tensor_id: str) -> str:
    ids = [t.id for t in model.inputs]
    return f"inputs[{ids.index(tensor_id)}] ({tensor_id!r})"


def _as_mapping(model: ModelShape, inputs: Inputs, required: Sequence[str]) -> dict[str, Any]:
    ids = [t.id for t in model.inputs]
    if isinstance(inputs, Sample):
        return dict(inputs.members)
    if isinstance(inputs, Mapping):
        return dict(inputs)
    if len(ids) == 1:
        return {ids[0]: inputs}
    if len(required) == 1:
        return {required[0]: inputs}
    raise InputError(
        f"the model has {len(ids)} inputs ({_quoted(ids)}) but one value was given",
        hint="pass a mapping of input tensor id to array or path, e.g. "
        + "{"
        + ", ".join(f"{i!r}: ..." for i in ids)
        + "}",
    )


def _axes_for(axes: AxesArg, tensor_id: str) -> AxesLike | None:
    if axes is None:
        return None
    if isinstance(axes, Mapping):
        value = axes.get(tensor_id)
        return None if value is None else value
    return axes  # one value: the axes of every input


def _to_tensor(
    value: Any, axes: AxesLike | None, model_axes: tuple[str, ...], where: str
) -> Tensor:
    if isinstance(value, Tensor):
        if axes is None:
            return value
        dims = resolve_axes(value.shape, axes, source=where)
        return Tensor(value.data, dims)
    if isinstance(value, str | os.PathLike):
        return load_tensor(value, axes, expected_axes=model_axes)
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    dims = resolve_axes(array.shape, axes, expected=model_axes, source=where)
    return Tensor(array, dims)


def _fixed_sizes(model: ModelShape, tensor_id: str) -> dict[str, int | None]:
    """Sizes an input must have exactly: channels and other axes that are never split or padded."""
    sizes: dict[str, int | None] = {}
    for a in model.tensor(tensor_id).axes:
        if isinstance(a.size, FixedSize) and a.type in ("channel", "index") and not a.splittable:
            sizes[a.id] = a.size.size
    return sizes


def digest_inputs(
    model: ModelShape,
    inputs: Inputs,
    *,
    axes: AxesArg = None,
    sample_id: Any = "sample",
    optional: Sequence[str] = (),
) -> Sample:
    """A new :class:`Sample` of ``inputs`` in ``model``'s axis order (views; the data is not copied).

    ``model`` is the :class:`~bioimageio_core.shapes.ModelShape` of the model
    (:func:`~bioimageio_core.shapes.model_shape`); ``optional`` lists input ids that may
    be missing. A ``Sample`` keeps its id and a copy of its statistics.

    Raises:
        InputError: an unknown or missing input, axes that do not fit, a wrong channel count, a
            non-numeric dtype or different batch sizes; the message names tensor and axis.
    """
    ids = [t.id for t in model.inputs]
    required = [i for i in ids if i not in optional]
    given = _as_mapping(model, inputs, required)
    unknown = [k for k in given if k not in ids]
    if unknown:
        raise InputError(
            f"unknown input tensor id(s) {_quoted(unknown)}; the model's inputs are {_quoted(ids)}",
            hint="name each input by its tensor id from the model description",
        )
    if isinstance(axes, Mapping):
        stray = [k for k in axes if k not in ids]
        if stray:
            raise InputError(
                f"'axes' names unknown input(s) {_quoted(stray)}; the model's inputs are "
                f"{_quoted(ids)}"
            )
    missing = [i for i in required if i not in given or given[i] is None]
    if missing:
        raise InputError(
            f"missing input(s) {', '.join(_where(model, i) for i in missing)}; the model's inputs are "
            f"{_quoted(ids)}",
            hint="give a value for every input that is not optional",
        )
    members: dict[str, Tensor] = {}
    for tensor_id in ids:
        value = given.get(tensor_id)
        if value is None:
            continue
        where = _where(model, tensor_id)
        model_axes = model.tensor(tensor_id).axis_ids
        tensor = _to_tensor(value, _axes_for(axes, tensor_id), model_axes, where)
        if tensor.dtype.kind not in "biuf":
            raise InputError(
                f"{where} has dtype {tensor.dtype}, which is not numeric",
                hint="give a boolean, integer or floating point array",
            )
        fitted = fit_to_axes(tensor, model_axes, _fixed_sizes(model, tensor_id), name=where)
        _check_hard_sizes(model, tensor_id, fitted)
        members[tensor_id] = fitted
    sizes = {(m, a): s for m, t in members.items() for a, s in t.sizes.items()}
    with as_input_error():
        get_batch_size(sizes, model)
    if isinstance(inputs, Sample):
        return Sample(members=members, stat=dict(inputs.stat), id=inputs.id)
    return Sample(members=members, id=sample_id)


def _check_hard_sizes(model: ModelShape, tensor_id: str, tensor: Tensor) -> None:
    """Sizes that neither padding nor tiling can fix: empty axes and unsplittable fixed axes."""
    where = _where(model, tensor_id)
    for a in model.tensor(tensor_id).axes:
        s = tensor.sizes[a.id]
        if s < 1:
            raise InputError(f"{where} axis {a.id!r} is empty (size {s})")
        if isinstance(a.size, FixedSize) and not a.splittable and s != a.size.size:
            raise InputError(
                f"{where} axis {a.id!r}: size {s} is not valid, the model requires {a.size.size}"
            )


def normalize_block_shape(model: ModelShape, block_shape: BlockShapeArg) -> dict[TensorAxis, int]:
    """``{(tensor_id, axis_id): size}`` from either block shape form; unknown names raise InputError."""
    flat: dict[TensorAxis, int] = {}
    for key, value in block_shape.items():
        if isinstance(key, tuple):
            flat[(str(key[0]), str(key[1]))] = int(value)  # type: ignore[arg-type]
        else:
            if not isinstance(value, Mapping):
                raise InputError(
                    f"input block shape for {key!r} must map axis ids to sizes (got {value!r})"
                )
            for axis_id, size in value.items():
                flat[(str(key), str(axis_id))] = int(size)
    ids = [t.id for t in model.inputs]
    for tensor_id, axis_id in flat:
        if tensor_id not in ids:
            raise InputError(
                f"input block shape names unknown input {tensor_id!r}; the model's inputs are "
                f"{_quoted(ids)}"
            )
        axis_ids = model.tensor(tensor_id).axis_ids
        if axis_id not in axis_ids:
            raise InputError(
                f"input block shape names unknown axis {axis_id!r} of {_where(model, tensor_id)}; "
                f"its axes are {_quoted(axis_ids)}"
            )
    return flat


def check_input_sizes(model: ModelShape, sizes: Mapping[TensorAxis, int]) -> None:
    """Raise :class:`InputError` for the first input axis whose size the model does not accept.

    ``sizes`` must hold every input axis. The message names the tensor and axis and lists valid
    sizes, e.g. ``inputs[0] ('raw') axis 'y': size 500 is not valid, valid sizes are 64 + n*16,
    e.g. 496 or 512`` (see :func:`bioimageio_core.shapes.check_input_sizes`).
    """
    with as_input_error():
        shapes.check_input_sizes(model, sizes)


__all__ = [
    "AxesArg",
    "BlockShapeArg",
    "InputValue",
    "Inputs",
    "check_input_sizes",
    "digest_inputs",
    "normalize_block_shape",
]
