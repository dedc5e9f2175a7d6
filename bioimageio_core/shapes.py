"""Size resolution for 0.5 models: valid sizes, size references, batch, halo.

The math works on small frozen value types (:class:`ModelShape` > :class:`TensorShape` >
:class:`AxisShape`) so that it does not depend on the descriptor classes;
:func:`model_shape` reads a ``ModelDescr`` into them.

Conventions (documented once, used everywhere):

* An axis is addressed by ``(tensor_id, axis_id)`` (:data:`TensorAxis`).
* A :class:`SizeReference` resolves to ``floor(ref_size * ref.scale / axis.scale) + offset``,
  computed with exact fractions (scales are read from their decimal representation). The
  reference implementation's block transform floors the same way; its spec truncates
  ``int(x + offset)``, which gives the same result for every positive size.
* The blocksize parameter ``n`` selects ``min + n*step`` on parameterized input axes; it is an int
  for every such axis or a mapping ``{(tensor_id, axis_id): n}`` (missing axes use n = 0).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any, Literal

import attrs

from bioimageio_core.errors import BioimageioError, InputError

TensorAxis = tuple[str, str]
"""``(tensor_id, axis_id)``."""

AxisType = Literal["batch", "channel", "index", "time", "space"]
BlocksizeParameter = int | Mapping[TensorAxis, int]

_MAX_DENOMINATOR = 1_000_000


class ShapeError(BioimageioError, ValueError):
    """Sizes, halos or blocks do not fit a model's axis description."""


def _positive(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"'{attribute.name}' must be >= 1 (got {value})")


def _non_negative(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"'{attribute.name}' must be >= 0 (got {value})")


# --- size kinds -------------------------------------------------------------------------------


@attrs.frozen
class FixedSize:
    """A single valid size."""

    size: int = attrs.field(validator=_positive)

    def __str__(self) -> str:
        return str(self.size)


@attrs.frozen
class ParameterizedSize:
    """Valid sizes ``min + n*step`` for n = 0, 1, 2, … (input axes only)."""

    min: int = attrs.field(validator=_positive)
    step: int = attrs.field(validator=_positive)

    def size(self, n: int) -> int:
        """``min + n*step``; ``n`` must be >= 0."""
        if n < 0:
            raise ValueError(f"blocksize parameter n must be >= 0 (got {n})")
        return self.min + n * self.step

    def get_n(self, s: int) -> int:
        """Smallest n with ``min + n*step >= s`` (negative when ``s < min``)."""
        return -((self.min - s) // self.step)

    def valid_size(self, s: int) -> int:
        """Smallest valid size >= ``s``."""
        return self.size(max(0, self.get_n(s)))

    def is_valid(self, s: int) -> bool:
        return s >= self.min and (s - self.min) % self.step == 0

    def __str__(self) -> str:
        return f"{self.min} + n*{self.step}"


@attrs.frozen
class SizeReference:
    """Size given by another axis: ``floor(ref_size * ref.scale / scale) + offset``."""

    tensor_id: str
    axis_id: str
    offset: int = 0

    def __str__(self) -> str:
        offset = f" {'+' if self.offset >= 0 else '-'} {abs(self.offset)}" if self.offset else ""
        return f"size of {self.tensor_id}.{self.axis_id}{offset}"


@attrs.frozen
class DataDependentSize:
    """Output size known only after inference."""

    min: int = 1
    max: int | None = None

    def __str__(self) -> str:
        return f"data dependent ({self.min}..{self.max if self.max is not None else ''})"


Size = FixedSize | ParameterizedSize | SizeReference | DataDependentSize | None
"""``None`` is a batch axis of any size."""


@attrs.frozen
class AxisShape:
    """What size math needs to know about one axis."""

    id: str
    type: AxisType
    size: Size
    scale: float = 1.0
    halo: int = attrs.field(default=0, validator=_non_negative)
    concatenable: bool = False

    @property
    def splittable(self) -> bool:
        """Whether blocking may cut this axis into blocks.

        Space and time axes are split (published descriptions write ``concatenable: false`` on
        spatial axes that are meant to be tiled, and the reference implementation tiles them);
        batch axes are concatenable by definition; index axes only when ``concatenable``;
        channel axes never.
        """
        if self.type in ("space", "time", "batch"):
            return True
        if self.type == "index":
            return self.concatenable and not isinstance(self.size, FixedSize)
        return False


def _axes_tuple(axes: Iterable[AxisShape]) -> tuple[AxisShape, ...]:
    return tuple(axes)


def _tensors_tuple(tensors: Iterable[TensorShape]) -> tuple[TensorShape, ...]:
    return tuple(tensors)


@attrs.frozen
class TensorShape:
    id: str
    axes: tuple[AxisShape, ...] = attrs.field(converter=_axes_tuple)

    @property
    def axis_ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.axes)

    def axis(self, axis_id: str) -> AxisShape:
        for a in self.axes:
            if a.id == axis_id:
                return a
        raise ShapeError(
            f"tensor {self.id!r} has no axis {axis_id!r}; its axes are {self.axis_ids}"
        )


@attrs.frozen
class ModelShape:
    """Inputs and outputs of a model, reduced to their axes."""

    inputs: tuple[TensorShape, ...] = attrs.field(converter=_tensors_tuple)
    outputs: tuple[TensorShape, ...] = attrs.field(converter=_tensors_tuple)

    def tensor(self, tensor_id: str) -> TensorShape:
        for t in (*self.inputs, *self.outputs):
            if t.id == tensor_id:
                return t
        known = [t.id for t in (*self.inputs, *self.outputs)]
        raise ShapeError(f"model has no tensor {tensor_id!r}; its tensors are {known}")

    def axis(self, key: TensorAxis) -> AxisShape:
        return self.tensor(key[0]).axis(key[1])

    def is_input(self, tensor_id: str) -> bool:
        return any(t.id == tensor_id for t in self.inputs)


# --- reading a ModelDescr -------------------------------------------------------------------


def model_shape(model: Any) -> ModelShape:
    """Read a 0.5 ``ModelDescr`` (``inputs``/``outputs`` with ``axes``) into a :class:`ModelShape`.

    Only attributes of the documented descriptor contract are used, so any object of that shape
    works.
    """
    return ModelShape(
        inputs=tuple(_tensor_spec(t) for t in model.inputs),
        outputs=tuple(_tensor_spec(t) for t in model.outputs),
    )


def _tensor_spec(tensor: Any) -> TensorShape:
    return TensorShape(id=str(tensor.id), axes=tuple(_axis_spec(a) for a in tensor.axes))


def _axis_spec(axis: Any) -> AxisShape:
    axis_type = str(axis.type)
    if axis_type == "channel":
        names = getattr(axis, "channel_names", None)
        size: Size = FixedSize(len(names) if names is not None else int(axis.size))
    else:
        size = _size_spec(getattr(axis, "size", None))
    return AxisShape(
        id=str(axis.id),
        type=axis_type,  # type: ignore[arg-type]
        size=size,
        scale=float(getattr(axis, "scale", 1.0) or 1.0),
        halo=int(getattr(axis, "halo", 0) or 0),
        concatenable=bool(getattr(axis, "concatenable", False)),
    )


def _size_spec(size: Any) -> Size:
    if size is None:
        return None
    if isinstance(size, int):
        return FixedSize(size)
    if hasattr(size, "tensor_id"):
        return SizeReference(str(size.tensor_id), str(size.axis_id), int(size.offset or 0))
    if hasattr(size, "step"):
        return ParameterizedSize(int(size.min), int(size.step))
    if hasattr(size, "max"):
        return DataDependentSize(int(size.min), None if size.max is None else int(size.max))
    raise ShapeError(f"unknown axis size {size!r}")


# --- size references --------------------------------------------------------------------------


def _fraction(x: float) -> Fraction:
    return Fraction(repr(float(x)))


def scale_ratio(model: ModelShape, key: TensorAxis) -> Fraction:
    """``ref.scale / axis.scale`` for the referencing axis ``key``: output pixels per ref pixel."""
    axis = model.axis(key)
    if not isinstance(axis.size, SizeReference):
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


def get_n(size: ParameterizedSize, s: int) -> int:
    """Smallest n with ``size.min + n*size.step >= s`` (can be negative)."""
    return size.get_n(s)


def valid_size(size: Size, s: int) -> int | None:
    """Smallest valid size >= ``s`` for a fixed, parameterized or batch size; None if none.

    A fixed size is valid only when it is >= ``s``; a batch axis of any size accepts ``s``.
    """
    if size is None:
        return s
    if isinstance(size, FixedSize):
        return size.size if size.size >= s else None
    if isinstance(size, ParameterizedSize):
        return size.valid_size(s)
    raise ShapeError(f"valid sizes of a {type(size).__name__} axis depend on other axes")


def describe_valid_sizes(size: Size, s: int | None = None) -> str:
    """Human readable valid sizes, e.g. ``64 + n*16, e.g. 496 or 512`` for ``s = 500``."""
    if isinstance(size, ParameterizedSize) and s is not None:
        upper = size.valid_size(s)
        lower = upper - size.step
        examples = f"{lower} or {upper}" if lower >= size.min else str(upper)
        return f"{size}, e.g. {examples}"
    if size is None:
        return "any"
    return str(size)


def _whole(value: object, minimum: int) -> int | None:
    """``value`` as an int if it is a whole number (Python or numpy, not bool) >= ``minimum``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
        return number if number >= minimum else None
    return None


def check_blocksize_parameter(
    value: object, model: ModelShape, *, name: str = "blocksize_parameter"
) -> BlocksizeParameter:
    """``value`` as a blocksize parameter of ``model``; :class:`InputError` naming ``name``
    when it is not a whole number >= 0 or a mapping ``{(tensor_id, axis_id): n}`` over the
    model's parameterized input axes."""
    n = _whole(value, 0)
    if n is not None:
        return n
    if isinstance(value, Mapping):
        valid = {
            (t.id, a.id) for t in model.inputs for a in t.axes if isinstance(a.size, ParameterizedSize)
        }
        checked: dict[TensorAxis, int] = {}
        for key, item in value.items():
            if key not in valid:
                raise InputError(
                    f"{name} names {key!r}, which is not a parameterized input axis of the model "
                    f"(got {_short(value)})",
                    hint=f"use keys among {sorted(valid)}" if valid else "the model has none",
                )
            n = _whole(item, 0)
            if n is None:
                raise InputError(f"{name}[{key!r}] must be a whole number >= 0 (got {item!r})")
            checked[key] = n
        return checked
    raise InputError(
        f"{name} must be a whole number n >= 0 (blocks of min + n*step) or a mapping "
        f"{{(tensor_id, axis_id): n}} (got {_short(value)})",
        hint="e.g. 0 for the smallest blocks the model takes, 2 for larger ones",
    )


def check_batch_size(value: object, *, name: str = "batch_size") -> int:
    """``value`` as a batch size (blocks per forward call); :class:`InputError` otherwise."""
    n = _whole(value, 1)
    if n is None:
        raise InputError(f"{name} must be a whole number >= 1 (got {_short(value)})")
    return n


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _n_for(ns: BlocksizeParameter, key: TensorAxis) -> int:
    if isinstance(ns, int):
        return ns
    return int(ns.get(key, 0))


def get_ns(model: ModelShape, input_sizes: Mapping[TensorAxis, int]) -> dict[TensorAxis, int]:
    """Per parameterized input axis the n of the smallest valid size >= the given size."""
    ns: dict[TensorAxis, int] = {}
    for t in model.inputs:
        for a in t.axes:
            if isinstance(a.size, ParameterizedSize) and (t.id, a.id) in input_sizes:
                ns[(t.id, a.id)] = max(0, a.size.get_n(input_sizes[(t.id, a.id)]))
    return ns


def get_batch_size(sizes: Mapping[TensorAxis, int], model: ModelShape | None = None) -> int:
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
    model: ModelShape, known: Mapping[TensorAxis, int], tensors: Iterable[TensorShape]
) -> dict[TensorAxis, int]:
    """Sizes of the referencing axes of ``tensors`` from the ``known`` sizes (plus fixed ones)."""
    out: dict[TensorAxis, int] = {}
    for t in tensors:
        for a in t.axes:
            if not isinstance(a.size, SizeReference):
                continue
            ref_key = (a.size.tensor_id, a.size.axis_id)
            ref_size = known.get(ref_key)
            if ref_size is None:
                ref_axis = model.axis(ref_key)
                if isinstance(ref_axis.size, FixedSize):
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
    model: ModelShape, ns: BlocksizeParameter = 0, batch_size: int = 1
) -> dict[TensorAxis, int]:
    """Input sizes for blocksize parameter ``ns`` and ``batch_size`` (size references resolved)."""
    sizes: dict[TensorAxis, int] = {}
    for t in model.inputs:
        for a in t.axes:
            key = (t.id, a.id)
            if a.type == "batch":
                if isinstance(a.size, FixedSize) and batch_size != a.size.size:
                    raise ShapeError(
                        f"input {t.id!r} requires batch size {a.size.size} (got {batch_size})"
                    )
                sizes[key] = batch_size
            elif isinstance(a.size, FixedSize):
                sizes[key] = a.size.size
            elif isinstance(a.size, ParameterizedSize):
                sizes[key] = a.size.size(_n_for(ns, key))
            elif isinstance(a.size, DataDependentSize):
                raise ShapeError(f"input axis {t.id}.{a.id} cannot have a data dependent size")
    sizes.update(resolve_references(model, sizes, model.inputs))
    return sizes


def output_sizes(
    model: ModelShape, inputs: Mapping[TensorAxis, int], batch_size: int | None = None
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
            elif isinstance(a.size, FixedSize):
                known[(t.id, a.id)] = a.size.size
    resolved = resolve_references(model, known, model.outputs)
    for t in model.outputs:
        for a in t.axes:
            key = (t.id, a.id)
            sizes[key] = known.get(key, resolved.get(key))
    return sizes


def fill_data_dependent_sizes(
    model: ModelShape,
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
    model: ModelShape, sample_sizes: Mapping[TensorAxis, int]
) -> dict[TensorAxis, int]:
    """Smallest valid input sizes >= the sample sizes (padding a sample to them keeps it whole).

    Raises :class:`ShapeError` naming the axis when a sample is larger than a fixed size or a
    referencing axis would come out smaller than the sample.
    """
    sizes: dict[TensorAxis, int] = {}
    for t in model.inputs:
        for a in t.axes:
            key = (t.id, a.id)
            if isinstance(a.size, SizeReference):
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


def check_input_sizes(model: ModelShape, sizes: Mapping[TensorAxis, int]) -> None:
    """Raise :class:`ShapeError` for the first input axis whose size the model does not accept."""
    resolved = resolve_references(model, sizes, model.inputs)
    for i, t in enumerate(model.inputs):
        for a in t.axes:
            key = (t.id, a.id)
            if key not in sizes:
                raise ShapeError(f"no size given for inputs[{i}] ({t.id!r}) axis {a.id!r}")
            s = sizes[key]
            if isinstance(a.size, SizeReference):
                ok = resolved[key] == s
                expected = f"{resolved[key]} ({a.size})"
            elif isinstance(a.size, ParameterizedSize):
                ok = a.size.is_valid(s)
                expected = f"{describe_valid_sizes(a.size, s)}"
            elif isinstance(a.size, FixedSize):
                ok = s == a.size.size
                expected = str(a.size)
            else:
                ok, expected = s >= 1, "any"
            if not ok:
                raise ShapeError(
                    f"inputs[{i}] ({t.id!r}) axis {a.id!r}: size {s} is not valid, valid sizes "
                    f"are {expected}"
                )


# --- halo -------------------------------------------------------------------------------------


def _input_refs(model: ModelShape) -> Iterable[tuple[TensorShape, AxisShape, SizeReference, Fraction]]:
    for t in model.outputs:
        for a in t.axes:
            if isinstance(a.size, SizeReference) and model.is_input(a.size.tensor_id):
                yield t, a, a.size, scale_ratio(model, (t.id, a.id))


def _integral(value: Fraction, what: str) -> int:
    if value.denominator != 1:
        raise ShapeError(
            f"{what} is {float(value):g}, not a whole number of pixels",
            hint="choose a halo that is a multiple of the scale ratio between the axes",
        )
    return int(value)


def input_halos(model: ModelShape) -> dict[TensorAxis, int]:
    """Halo per referenced input axis: ``halo_out * out.scale / ref.scale``, max over outputs.

    Keyed by the REFERENCED input ``(tensor_id, axis_id)``. A halo that does not map to whole
    input pixels raises :class:`ShapeError`.
    """
    halos: dict[TensorAxis, int] = {}
    for t, a, ref, ratio in _input_refs(model):
        if not a.halo:
            continue
        h = _integral(Fraction(a.halo) / ratio, f"halo of output {t.id}.{a.id} in input pixels")
        key = (ref.tensor_id, ref.axis_id)
        halos[key] = max(halos.get(key, 0), h)
    return halos


def block_halos(model: ModelShape) -> dict[TensorAxis, int]:
    """Input context per referenced input axis that blocking needs on each side of a block.

    It is :func:`input_halos` plus, for a negative size-reference offset (an output the model
    already cropped, as "valid" convolutions do), ``ceil(-offset/2)`` output pixels mapped to the
    input (rounded up). An input axis that references another input axis gets the larger of both
    halos (mapped through the reference), so both tensors are cut on the same grid; so do input
    axes of the same id and scale in different inputs.
    """
    halos = dict(input_halos(model))
    for _t, a, ref, ratio in _input_refs(model):
        key = (ref.tensor_id, ref.axis_id)
        base = Fraction(a.halo) / ratio
        crop = (-ref.offset + 1) // 2 if ref.offset < 0 else 0
        total = math.ceil(base + Fraction(crop) / ratio)
        halos[key] = max(halos.get(key, 0), total)
    links = [
        ((t.id, a.id), (a.size.tensor_id, a.size.axis_id), scale_ratio(model, (t.id, a.id)))
        for t in model.inputs
        for a in t.axes
        if isinstance(a.size, SizeReference) and model.is_input(a.size.tensor_id)
    ]
    for key, ref_key, ratio in links:
        h_ref, h = halos.get(ref_key, 0), halos.get(key, 0)
        halos[key] = max(h, math.ceil(h_ref * ratio))
        halos[ref_key] = max(h_ref, math.ceil(h / ratio))
    # inputs with an axis of the same id and scale (y of two images, say) are cut on one grid:
    # give them the same halo, or their inner regions (and so their block counts) would differ
    shared: dict[tuple[str, float], list[TensorAxis]] = {}
    for t in model.inputs:
        for a in t.axes:
            if a.type in ("space", "time", "index"):
                shared.setdefault((a.id, a.scale), []).append((t.id, a.id))
    for keys in shared.values():
        widest = max(halos.get(k, 0) for k in keys)
        for k in keys:
            halos[k] = widest
    return {k: v for k, v in halos.items() if v}


# --- block shapes -----------------------------------------------------------------------------


def block_shape(
    model: ModelShape,
    sample_sizes: Mapping[TensorAxis, int],
    ns: BlocksizeParameter = 10,
    batch_size: int | None = None,
) -> dict[TensorAxis, int]:
    """Input block shape (halo included) for blockwise prediction of one sample.

    Parameterized axes use ``ns`` but never more than the smallest valid size that holds the
    whole axis plus its halo in one block; axes that may not be split get the smallest valid
    size >= the sample. Batch axes use ``batch_size`` (default: the sample's batch size).
    """
    halos = block_halos(model)
    shape: dict[TensorAxis, int] = {}
    for t in model.inputs:
        for a in t.axes:
            key = (t.id, a.id)
            if isinstance(a.size, SizeReference):
                continue
            s = sample_sizes.get(key)
            if s is None:
                raise ShapeError(f"no size given for input {t.id!r} axis {a.id!r}")
            if a.type == "batch":
                b = s if batch_size is None else batch_size
                if isinstance(a.size, FixedSize):
                    b = a.size.size
                shape[key] = b
            elif isinstance(a.size, FixedSize):
                shape[key] = a.size.size
            elif isinstance(a.size, ParameterizedSize):
                whole = max(0, a.size.get_n(s + 2 * halos.get(key, 0)))
                n = whole if not a.splittable else min(_n_for(ns, key), whole)
                shape[key] = a.size.size(n)
    shape.update(resolve_references(model, shape, model.inputs))
    return shape
