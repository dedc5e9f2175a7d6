"""Physical coordinates of a model's outputs, carried over from its inputs.

An input read from OME-Zarr knows the unit, pixel size and offset of its space and time axes
(:class:`~bioimageio_core.io.ArrayMetadata`). Each output axis of type space or time takes them
from the input axis it is sized after (a size reference ``{tensor_id, axis_id}``), else from the
first input with an axis of the same id; its pixel size is rescaled by the ratio of the two axes'
``scale`` in the description (``size = ref_size * ref_scale / scale``), keeping pixel centres.
Batch, channel and index axes have no physical coordinates.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from bioimageio_core.io._metadata import ArrayMetadata, AxisMetadata
from bioimageio_core.spec import ModelDescr
from bioimageio_core.spec.axes import SizeReference

_PHYSICAL = ("space", "time")


def _source(
    model: ModelDescr, axis: Any, known: Mapping[str, ArrayMetadata]
) -> tuple[Any, AxisMetadata] | None:
    """The input axis (description) and its metadata that ``axis`` takes its coordinates from."""
    size = getattr(axis, "size", None)
    if isinstance(size, SizeReference) and size.tensor_id in known:
        meta = known[size.tensor_id].get(size.axis_id)
        if meta is not None:
            return model.get_tensor(size.tensor_id).get_axis(size.axis_id), meta
    for tensor in model.inputs:
        meta = known[tensor.id].get(axis.id) if tensor.id in known else None
        if meta is not None:
            try:
                return tensor.get_axis(axis.id), meta
            except KeyError:
                continue
    return None


def output_metadata(
    model: ModelDescr, inputs: Mapping[str, ArrayMetadata]
) -> dict[str, ArrayMetadata]:
    """Per output id, the metadata its axes carry over from ``inputs`` (input id → metadata);
    outputs whose axes find none are left out."""
    result: dict[str, ArrayMetadata] = {}
    for tensor in model.outputs:
        axes: list[AxisMetadata] = []
        carried = False
        for axis in tensor.axes:
            found = _source(model, axis, inputs) if axis.type in _PHYSICAL else None
            if found is None:
                axes.append(AxisMetadata.default(axis.id))
                continue
            in_axis, meta = found
            factor = float(getattr(axis, "scale", 1.0)) / float(getattr(in_axis, "scale", 1.0))
            (rescaled,) = ArrayMetadata((meta,)).rescaled({meta.id: factor}).axes
            axes.append(attrs.evolve(rescaled, id=axis.id))
            carried = True
        if carried:
            result[tensor.id] = ArrayMetadata(tuple(axes))
    return result


def input_metadata(inputs: Any, input_ids: Sequence[str]) -> dict[str, ArrayMetadata]:
    """The metadata of inputs given as files (a path, or input id → path), by input id.

    Inputs given as arrays, and files that record no coordinates, are left out. Opening reads
    the file's metadata only.
    """
    from bioimageio_core.io import open_array

    if isinstance(inputs, str | os.PathLike) and len(input_ids) == 1:
        files: dict[str, Any] = {input_ids[0]: inputs}
    elif isinstance(inputs, Mapping):
        files = {k: v for k, v in inputs.items() if isinstance(v, str | os.PathLike)}
    else:
        return {}
    found: dict[str, ArrayMetadata] = {}
    for tensor_id, path in files.items():
        with open_array(path) as opened:
            if opened.metadata is not None:
                found[str(tensor_id)] = opened.metadata
    return found
