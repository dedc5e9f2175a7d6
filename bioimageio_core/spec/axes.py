"""Axes of model 0.5 tensors and their size kinds."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

import attrs

from bioimageio_core.spec import _validators as v
from bioimageio_core.spec._convert import KIND, converter, describe, register_union
from bioimageio_core.spec.generic import tag
from bioimageio_core.spec.issues import Loc

SpaceUnit = Literal[
    "attometer", "angstrom", "centimeter", "decimeter", "exameter", "femtometer", "foot",
    "gigameter", "hectometer", "inch", "kilometer", "megameter", "meter", "micrometer", "mile",
    "millimeter", "nanometer", "parsec", "petameter", "picometer", "terameter", "yard",
    "yoctometer", "yottameter", "zeptometer", "zettameter",
]  # fmt: skip
TimeUnit = Literal[
    "attosecond", "centisecond", "day", "decisecond", "exasecond", "femtosecond", "gigasecond",
    "hectosecond", "hour", "kilosecond", "megasecond", "microsecond", "millisecond", "minute",
    "nanosecond", "petasecond", "picosecond", "second", "terasecond", "yoctosecond",
    "yottasecond", "zeptosecond", "zettasecond",
]  # fmt: skip

_AXIS_ID = v.identifier(16, keywords=False)
_TENSOR_ID = v.identifier(32)

MAX_AXIS_SIZE = 2**20
"""Largest size, minimum, step, halo or offset magnitude of one axis (1048576). Larger values
describe no usable model; they would pass validation and only fail, out of memory, at run time."""
_SIZE = v.bounds(gt=0, le=MAX_AXIS_SIZE)


def axis_id_field(default: str) -> Any:
    return attrs.field(default=default, validator=_AXIS_ID, metadata={KIND: "axis_id"})


@attrs.frozen(kw_only=True)
class ParameterizedSize:
    """Valid sizes are ``min + n * step`` for n = 0, 1, 2, ..."""

    min: int = attrs.field(validator=_SIZE)
    step: int = attrs.field(validator=_SIZE)

    def get_size(self, n: int) -> int:
        return self.min + n * self.step

    def get_n(self, size: int) -> int:
        """The smallest n with ``get_size(n) >= size`` (negative when ``size < min``)."""
        return -((self.min - size) // self.step)

    def is_valid(self, size: int) -> bool:
        return size >= self.min and (size - self.min) % self.step == 0


@attrs.frozen(kw_only=True)
class SizeReference:
    """``size = int(ref_size * ref_axis.scale / axis.scale + offset)``."""

    tensor_id: str = attrs.field(validator=_TENSOR_ID)
    axis_id: str = attrs.field(validator=_AXIS_ID, metadata={KIND: "axis_id"})
    offset: int = attrs.field(default=0, validator=v.bounds(ge=-MAX_AXIS_SIZE, le=MAX_AXIS_SIZE))


@attrs.frozen(kw_only=True)
class DataDependentSize:
    """The size is known only after inference (output index axes only)."""

    min: int = attrs.field(default=1, validator=_SIZE)
    max: int | None = attrs.field(default=None, validator=v.bounds(gt=1))

    def _issues(self) -> Iterator[tuple[Loc, str]]:
        if self.max is not None and self.min >= self.max:
            yield ("max",), f"'max' must be > 'min' ({self.min}) (got {self.max})"

    def is_valid(self, size: int) -> bool:
        return size >= self.min and (self.max is None or size <= self.max)


InputSize = int | ParameterizedSize | SizeReference
OutputSize = int | SizeReference
IndexOutputSize = int | SizeReference | DataDependentSize


def _positive_int_size(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, int) and not 0 < value <= MAX_AXIS_SIZE:
        raise ValueError(
            f"'{attribute.name}' must be an integer > 0 and <= {MAX_AXIS_SIZE} (got {value})"
        )


setattr(
    _positive_int_size,
    v.JSON_SCHEMA,
    {"number": {"exclusiveMinimum": 0, "maximum": MAX_AXIS_SIZE}},
)


def _size_hook(allowed: tuple[type, ...], expected: str) -> Any:
    def hook(raw: Any) -> Any:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return converter.structure(raw, int)
        if isinstance(raw, Mapping):
            keys = set(raw)
            if "tensor_id" in keys or "axis_id" in keys:
                cls: type = SizeReference
            elif "step" in keys:
                cls = ParameterizedSize
            elif DataDependentSize in allowed and keys <= {"min", "max"}:
                cls = DataDependentSize
            elif ParameterizedSize in allowed and "min" in keys:
                cls = ParameterizedSize
            else:
                raise TypeError(f"must be {expected} (got {describe(raw)})")
            if cls not in allowed:
                raise TypeError(f"must be {expected} (got {describe(raw)})")
            return converter.structure(raw, cls)
        raise TypeError(f"must be {expected} (got {describe(raw)})")

    return hook


register_union(
    InputSize,
    _size_hook(
        (ParameterizedSize, SizeReference),
        "an integer > 0, a parameterized size {min, step} or a size reference {tensor_id, axis_id, offset}",
    ),
)
register_union(
    OutputSize,
    _size_hook((SizeReference,), "an integer > 0 or a size reference {tensor_id, axis_id, offset}"),
)
register_union(
    IndexOutputSize,
    _size_hook(
        (SizeReference, DataDependentSize),
        "an integer > 0, a size reference {tensor_id, axis_id, offset} or a data dependent size {min, max}",
    ),
)


def _description() -> Any:
    return attrs.field(default="", validator=v.length(max=128))


def _size() -> Any:
    """A fixed size > 0 or any other size kind the field's type allows."""
    return attrs.field(validator=_positive_int_size)


def _scale() -> Any:
    """Physical size of one step along the axis (> 0, default 1)."""
    return attrs.field(default=1.0, validator=v.bounds(gt=0))


def _halo() -> Any:
    """Pixels of an output's border to crop on each side (>= 1)."""
    return attrs.field(validator=v.bounds(ge=1, le=MAX_AXIS_SIZE))


@attrs.frozen(kw_only=True)
class BatchAxis:
    type: Literal["batch"] = tag("batch")
    id: str = axis_id_field("batch")
    description: str = _description()
    size: Literal[1] | None = None

    concatenable = True
    scale = 1.0
    unit = None

    def _issues(self) -> Iterator[tuple[Loc, str]]:
        if self.id != "batch":
            yield ("id",), f"'id' of a batch axis must be 'batch' (got {self.id!r})"


@attrs.frozen(kw_only=True)
class ChannelAxis:
    type: Literal["channel"] = tag("channel")
    id: str = axis_id_field("channel")
    description: str = _description()
    channel_names: tuple[str, ...] = attrs.field(validator=v.length(min=1))
    """Any strings (format 0.5.8+), e.g. ``["DAPI (405nm)", "GFP"]``."""

    concatenable = False
    scale = 1.0
    unit = None

    @property
    def size(self) -> int:
        return len(self.channel_names)


@attrs.frozen(kw_only=True)
class IndexInputAxis:
    type: Literal["index"] = tag("index")
    id: str = axis_id_field("index")
    description: str = _description()
    size: InputSize = _size()
    concatenable: bool = False

    scale = 1.0
    unit = None


@attrs.frozen(kw_only=True)
class IndexOutputAxis:
    type: Literal["index"] = tag("index")
    id: str = axis_id_field("index")
    description: str = _description()
    size: IndexOutputSize = _size()

    scale = 1.0
    unit = None


@attrs.frozen(kw_only=True)
class TimeInputAxis:
    type: Literal["time"] = tag("time")
    id: str = axis_id_field("time")
    description: str = _description()
    size: InputSize = _size()
    unit: TimeUnit | None = None
    scale: float = _scale()
    concatenable: bool = False


@attrs.frozen(kw_only=True)
class TimeOutputAxis:
    type: Literal["time"] = tag("time")
    id: str = axis_id_field("time")
    description: str = _description()
    size: OutputSize = _size()
    unit: TimeUnit | None = None
    scale: float = _scale()


@attrs.frozen(kw_only=True)
class TimeOutputAxisWithHalo:
    type: Literal["time"] = tag("time")
    id: str = axis_id_field("time")
    description: str = _description()
    size: SizeReference
    halo: int = _halo()
    unit: TimeUnit | None = None
    scale: float = _scale()


@attrs.frozen(kw_only=True)
class SpaceInputAxis:
    type: Literal["space"] = tag("space")
    id: str = axis_id_field("x")
    description: str = _description()
    size: InputSize = _size()
    unit: SpaceUnit | None = None
    scale: float = _scale()
    concatenable: bool = False


@attrs.frozen(kw_only=True)
class SpaceOutputAxis:
    type: Literal["space"] = tag("space")
    id: str = axis_id_field("x")
    description: str = _description()
    size: OutputSize = _size()
    unit: SpaceUnit | None = None
    scale: float = _scale()


@attrs.frozen(kw_only=True)
class SpaceOutputAxisWithHalo:
    type: Literal["space"] = tag("space")
    id: str = axis_id_field("x")
    description: str = _description()
    size: SizeReference
    halo: int = _halo()
    unit: SpaceUnit | None = None
    scale: float = _scale()


InputAxis = BatchAxis | ChannelAxis | IndexInputAxis | TimeInputAxis | SpaceInputAxis
OutputAxis = (
    BatchAxis
    | ChannelAxis
    | IndexOutputAxis
    | TimeOutputAxis
    | TimeOutputAxisWithHalo
    | SpaceOutputAxis
    | SpaceOutputAxisWithHalo
)
AnyAxis = InputAxis | OutputAxis
WithHalo = TimeOutputAxisWithHalo | SpaceOutputAxisWithHalo

_INPUT_AXES: dict[str, type] = {
    "batch": BatchAxis,
    "channel": ChannelAxis,
    "index": IndexInputAxis,
    "time": TimeInputAxis,
    "space": SpaceInputAxis,
}
_OUTPUT_AXES: dict[str, tuple[type, type]] = {
    "batch": (BatchAxis, BatchAxis),
    "channel": (ChannelAxis, ChannelAxis),
    "index": (IndexOutputAxis, IndexOutputAxis),
    "time": (TimeOutputAxis, TimeOutputAxisWithHalo),
    "space": (SpaceOutputAxis, SpaceOutputAxisWithHalo),
}


def _axis_type(raw: Any) -> str:
    if not isinstance(raw, Mapping):
        raise TypeError(f"must be an axis mapping with a 'type' (got {describe(raw)})")
    kind = raw.get("type")
    if kind not in _INPUT_AXES:
        raise ValueError(
            f"axis 'type' must be one of 'batch', 'channel', 'index', 'time', 'space' (got {describe(kind)})"
        )
    return str(kind)


def _input_axis(raw: Any) -> Any:
    return converter.structure(raw, _INPUT_AXES[_axis_type(raw)])


def _output_axis(raw: Any) -> Any:
    plain, halo = _OUTPUT_AXES[_axis_type(raw)]
    return converter.structure(raw, halo if "halo" in raw else plain)


register_union(InputAxis, _input_axis)
register_union(OutputAxis, _output_axis)
