"""The value types size math works on: sizes, axes, tensors and models reduced to their shapes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Literal

import attrs

from bioimageio_core.errors import BioimageioError, InputError

TensorAxis = tuple[str, str]
"""``(tensor_id, axis_id)``."""

AxisType = Literal["batch", "channel", "index", "time", "space"]


class ShapeError(BioimageioError, ValueError):
    """Sizes, halos or blocks do not fit a model's axis description."""


@contextmanager
def as_input_error() -> Iterator[None]:
    """Report a :class:`ShapeError` raised inside the block as an :class:`InputError` (same
    message, location and hint): for size problems of data a user gave."""
    try:
        yield
    except ShapeError as e:
        raise InputError(e.message, loc=e.loc, hint=e.hint) from None


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
