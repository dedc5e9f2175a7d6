"""Reading a model description's axes into a :class:`~bioimageio_core.shapes.ModelShape`."""

from __future__ import annotations

from typing import Any

from bioimageio_core.shapes import types


def model_shape(model: Any) -> types.ModelShape:
    """Read a 0.5 ``ModelDescr`` (``inputs``/``outputs`` with ``axes``) into a :class:`ModelShape`.

    Only attributes of the documented descriptor contract are used, so any object of that shape
    works.
    """
    return types.ModelShape(
        inputs=tuple(_tensor_shape(t) for t in model.inputs),
        outputs=tuple(_tensor_shape(t) for t in model.outputs),
    )


def _tensor_shape(tensor: Any) -> types.TensorShape:
    return types.TensorShape(id=str(tensor.id), axes=tuple(_axis_shape(a) for a in tensor.axes))


def _axis_shape(axis: Any) -> types.AxisShape:
    axis_type = str(axis.type)
    if axis_type == "channel":
        names = getattr(axis, "channel_names", None)
        size: types.Size = types.FixedSize(len(names) if names is not None else int(axis.size))
    else:
        size = _size(getattr(axis, "size", None))
    return types.AxisShape(
        id=str(axis.id),
        type=axis_type,  # type: ignore[arg-type]
        size=size,
        scale=float(getattr(axis, "scale", 1.0) or 1.0),
        halo=int(getattr(axis, "halo", 0) or 0),
        concatenable=bool(getattr(axis, "concatenable", False)),
    )


def _size(size: Any) -> types.Size:
    if size is None:
        return None
    if isinstance(size, int):
        return types.FixedSize(size)
    if hasattr(size, "tensor_id"):
        return types.SizeReference(str(size.tensor_id), str(size.axis_id), int(size.offset or 0))
    if hasattr(size, "step"):
        return types.ParameterizedSize(int(size.min), int(size.step))
    if hasattr(size, "max"):
        return types.DataDependentSize(int(size.min), None if size.max is None else int(size.max))
    raise types.ShapeError(f"unknown axis size {size!r}")
