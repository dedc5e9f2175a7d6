"""Valid sizes, size references, the batch size, and input/output sizes of a model."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction

from bioimageio_core.shapes import types
from bioimageio_core.shapes.arguments import BlocksizeParameter, blocksize_n
from bioimageio_core.shapes.types import ShapeError, TensorAxis

_MAX_DENOMINATOR = 1_000_000

# --- size references --------------------------------------------------------------------------


def _fraction(x: float) -> Fraction:
    return Fraction(repr(float(x)))


def scale_ratio(model: types.ModelShape, key: TensorAxis) -> Fraction:
    """``ref.scale / axis.scale`` for the referencing axis ``key``: output pixels per ref pixel."""
    axis = model.axis(key)
    if not isinstance(axis.size, types.SizeReference):
        raise ShapeError(f"axis {key[0]}.{key[1]} has no size reference")
    ref = model.axis((axis.size.tensor_id, axis.size.axis_id))
    ratio = (_fraction(ref.scale) / _fraction(axis.scale)).limit_denominator(_MAX_DENOMINATOR)
    if ratio <= 0:
        raise ShapeError(f"axis {key[0]}.{key[1]}: scales must be > 0")
    return ratio


def referenced_size(ref_size: int, ratio: Fraction, offset: int) -> int:
    """``floor(ref_size * ratio) + offset``."""
    return math.floor(ref_size * ratio) + offset


# --- valid sizes and n ------------------------------------------------------------------------


def get_n(size: types.ParameterizedSize, s: int) -> int:
    """Smallest n with ``size.min + n*size.step >= s`` (can be negative)."""
    return size.get_n(s)


def valid_size(size: types.Size, s: int) -> int | None:
    """Smallest valid size >= ``s`` for a fixed, parameterized or batch size; None if none.

    A fixed size is valid only when it is >= ``s``; a batch axis of any size accepts ``s``.
    """
    if size is None:
        return s
    if isinstance(size, types.FixedSize):
        return size.size if size.size >= s else None
    if isinstance(size, types.ParameterizedSize):
        return size.valid_size(s)
    raise ShapeError(f"valid sizes of a {type(size).__name__} axis depend on other axes")


def describe_valid_sizes(size: types.Size, s: int | None = None) -> str:
    """Human readable valid sizes, e.g. ``64 + n*16, e.g. 496 or 512`` for ``s = 500``."""
    if isinstance(size, types.ParameterizedSize) and s is not None:
        upper = size.valid_size(s)
        lower = upper - size.step
        examples = f"{lower} or {upper}" if lower >= size.min else str(upper)
        return f"{size}, e.g. {examples}"
    if size is None:
        return "any"
    return str(size)


def get_ns(model: types.ModelShape, input_sizes: Mapping[TensorAxis, int]) -> dict[TensorAxis, int]:
    """Per parameterized input axis the n of the smallest valid size >= the given size."""
    ns: dict[TensorAxis, int] = {}
    for t in model.inputs:
        for a in t.axes:
            if isinstance(a.size, types.ParameterizedSize) and (t.id, a.id) in input_sizes:
                ns[(t.id, a.id)] = max(0, a.size.get_n(input_sizes[(t.id, a.id)]))
    return ns


def get_batch_size(sizes: Mapping[TensorAxis, int], model: types.ModelShape | None = None) -> int:
    """The one batch size (other than 1) among ``sizes``; 1 if all are 1 or there is none.

    Without ``model``, axes with id ``batch`` are batch axes.
    """
    found: dict[int, TensorAxis] = {}
    for key, s in sizes.items():
        is_batch = model.axis(key).type == "batch" if model is not None else key[1] == "batch"
        if is_batch and s != 1:
            found.setdefault(s, key)
    if len(found) > 1:
        detail = ", ".join(f"{k[0]}.{k[1]}={s}" for s, k in found.items())
        raise ShapeError(
            f"batch size mismatch: {detail}", hint="give all tensors the same batch size"
        )
    return next(iter(found), 1)


# --- resolving sizes --------------------------------------------------------------------------


def resolve_references(
    model: types.ModelShape, known: Mapping[TensorAxis, int], tensors: Iterable[types.TensorShape]
) -> dict[TensorAxis, int]:
    """Sizes of the referencing axes of ``tensors`` from the ``known`` sizes (plus fixed ones)."""
    out: dict[TensorAxis, int] = {}
    for t in tensors:
        for a in t.axes:
            if not isinstance(a.size, types.SizeReference):
                continue
            ref_key = (a.size.tensor_id, a.size.axis_id)
            ref_size = known.get(ref_key)
            if ref_size is None:
                ref_axis = model.axis(ref_key)
                if isinstance(ref_axis.size, types.FixedSize):
                    ref_size = ref_axis.size.size
                else:
                    raise ShapeError(
                        f"axis {t.id}.{a.id} references {ref_key[0]}.{ref_key[1]}, whose size is "
                        "not known"
                    )
            out[(t.id, a.id)] = referenced_size(
                ref_size, scale_ratio(model, (t.id, a.id)), a.size.offset
            )
    return out


def input_sizes(
    model: types.ModelShape, ns: BlocksizeParameter = 0, batch_size: int = 1
) -> dict[TensorAxis, int]:
    """Input sizes for blocksize parameter ``ns`` and ``batch_size`` (size references resolved)."""
    sizes: dict[TensorAxis, int] = {}
    for t in model.inputs:
        for a in t.axes:
            key = (t.id, a.id)
            if a.type == "batch":
                if isinstance(a.size, types.FixedSize) and batch_size != a.size.size:
                    raise ShapeError(
                        f"input {t.id!r} requires batch size {a.size.size} (got {batch_size})"
                    )
                sizes[key] = batch_size
            elif isinstance(a.size, types.FixedSize):
                sizes[key] = a.size.size
            elif isinstance(a.size, types.ParameterizedSize):
                sizes[key] = a.size.size(blocksize_n(ns, key))
            elif isinstance(a.size, types.DataDependentSize):
                raise ShapeError(f"input axis {t.id}.{a.id} cannot have a data dependent size")
    sizes.update(resolve_references(model, sizes, model.inputs))
    return sizes


def output_sizes(
    model: types.ModelShape, inputs: Mapping[TensorAxis, int], batch_size: int | None = None
) -> dict[TensorAxis, int | None]:
    """Output sizes for the given input sizes; None for data dependent axes.

    The batch size defaults to the one of the inputs (:func:`get_batch_size`).
    """
    if batch_size is None:
        batch_size = get_batch_size(inputs, model)
    known: dict[TensorAxis, int] = dict(inputs)
    sizes: dict[TensorAxis, int | None] = {}
    for t in model.outputs:
        for a in t.axes:
            if a.type == "batch":
                known[(t.id, a.id)] = batch_size
            elif isinstance(a.size, types.FixedSize):
                known[(t.id, a.id)] = a.size.size
    resolved = resolve_references(model, known, model.outputs)
    for t in model.outputs:
        for a in t.axes:
            key = (t.id, a.id)
            sizes[key] = known.get(key, resolved.get(key))
    return sizes


def fill_data_dependent_sizes(
    model: types.ModelShape,
    sizes: Mapping[TensorAxis, int | None],
    output_shapes: Mapping[str, Sequence[int]],
) -> dict[TensorAxis, int]:
    """``sizes`` with data dependent output sizes (None) taken from actual output shapes.

    ``output_shapes`` holds the shape of each output as the model returned it (axes in the
    description's order), e.g. from the first block; data dependent axes are never blocked.
    """
    filled: dict[TensorAxis, int] = {}
    for key, s in sizes.items():
        if s is not None:
            filled[key] = s
            continue
        tensor = model.tensor(key[0])
        shape = output_shapes.get(key[0])
        if shape is None:
            raise ShapeError(f"size of output {key[0]!r} axis {key[1]!r} is not known yet")
        if len(shape) != len(tensor.axes):
            raise ShapeError(
                f"output {key[0]!r} has {len(shape)} axes, its description {len(tensor.axes)}"
            )
        filled[key] = int(shape[tensor.axis_ids.index(key[1])])
    return filled


def valid_input_sizes(
    model: types.ModelShape, sample_sizes: Mapping[TensorAxis, int]
) -> dict[TensorAxis, int]:
    """Smallest valid input sizes >= the sample sizes (padding a sample to them keeps it whole).

    Raises :class:`ShapeError` naming the axis when a sample is larger than a fixed size or a
    referencing axis would come out smaller than the sample.
    """
    sizes: dict[TensorAxis, int] = {}
    for t in model.inputs:
        for a in t.axes:
            key = (t.id, a.id)
            if isinstance(a.size, types.SizeReference):
                continue
            if key not in sample_sizes:
                raise ShapeError(f"no size given for input axis {t.id}.{a.id}")
            s = sample_sizes[key]
            v = valid_size(a.size, s)
            if v is None:
                raise ShapeError(
                    f"input {t.id!r} axis {a.id!r}: size {s} is larger than the model's fixed "
                    f"size {a.size}",
                    hint="predict blockwise to tile this axis",
                )
            sizes[key] = v
    for key, v in resolve_references(model, sizes, model.inputs).items():
        if key in sample_sizes and v < sample_sizes[key]:
            raise ShapeError(
                f"input {key[0]!r} axis {key[1]!r}: size {sample_sizes[key]} exceeds the size "
                f"{v} given by its reference {model.axis(key).size}"
            )
        sizes[key] = v
    return sizes


def check_input_sizes(model: types.ModelShape, sizes: Mapping[TensorAxis, int]) -> None:
    """Raise :class:`ShapeError` for the first input axis whose size the model does not accept."""
    resolved = resolve_references(model, sizes, model.inputs)
    for i, t in enumerate(model.inputs):
        for a in t.axes:
            key = (t.id, a.id)
            if key not in sizes:
                raise ShapeError(f"no size given for inputs[{i}] ({t.id!r}) axis {a.id!r}")
            s = sizes[key]
            if isinstance(a.size, types.SizeReference):
                ok = resolved[key] == s
                expected = f"{resolved[key]} ({a.size})"
            elif isinstance(a.size, types.ParameterizedSize):
                ok = a.size.is_valid(s)
                expected = f"{describe_valid_sizes(a.size, s)}"
            elif isinstance(a.size, types.FixedSize):
                ok = s == a.size.size
                expected = str(a.size)
            else:
                ok, expected = s >= 1, "any"
            if not ok:
                raise ShapeError(
                    f"inputs[{i}] ({t.id!r}) axis {a.id!r}: size {s} is not valid, valid sizes "
                    f"are {expected}"
                )
