"""Descriptions of the values a tensor holds (``data`` of a model 0.5 tensor)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

import attrs

from bioimageio_core.spec._convert import converter, describe, one_or_list, register_union, report
from bioimageio_core.spec.issues import Loc

IntervalOrRatioDType = Literal[
    "float32", "float64", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64"
]
DType = Literal[
    "float32", "float64", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
    "bool",
]  # fmt: skip

DTYPE_LIMITS: dict[str, tuple[float, float]] = {
    "float32": (-3.4028235e38, 3.4028235e38),
    "float64": (-1.7976931348623157e308, 1.7976931348623157e308),
    "uint8": (0, 2**8 - 1),
    "int8": (-(2**7), 2**7 - 1),
    "uint16": (0, 2**16 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint32": (0, 2**32 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint64": (0, 2**64 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "bool": (0, 1),
}


def _range(raw: Any) -> tuple[float | None, float | None]:
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        raise TypeError(f"must be a list of two numbers or nulls (got {describe(raw)})")
    out: list[float | None] = []
    for i, item in enumerate(raw):
        if item is None:
            out.append(None)
            continue
        value = converter.structure(item, float) if not isinstance(item, bool) else None
        if value is None:
            raise TypeError(f"must be a list of two numbers or nulls (got {describe(raw)})")
        if value in (float("inf"), float("-inf")):
            report(
                f"infinite range bound {item!r} means unbounded; write null",
                severity="warning",
                at=(i,),
            )
            value = None
        out.append(value)
    return out[0], out[1]


Range = tuple[float | None, float | None]
register_union(Range, _range)


@attrs.frozen(kw_only=True)
class IntervalOrRatioDataDescr:
    """Numbers on an interval or ratio scale (the default: float32)."""

    type: IntervalOrRatioDType = "float32"
    range: Range = (None, None)
    unit: str = "arbitrary unit"
    scale: float = 1.0
    offset: float | None = None

    def _issues(self) -> Iterator[tuple[Loc, str]]:
        lo, hi = self.range
        if lo is not None and hi is not None and lo > hi:
            yield ("range",), f"'range' must be [min, max] with min <= max (got {list(self.range)})"


Value = int | float | bool | str


def _value(raw: Any) -> Value:
    if isinstance(raw, bool | int | float | str):
        return raw
    raise TypeError(f"must be a number, boolean or string (got {describe(raw)})")


register_union(Value, _value)


@attrs.frozen(kw_only=True)
class NominalOrOrdinalDataDescr:
    """A fixed set of values (labels, classes)."""

    values: tuple[Value, ...] = attrs.field(validator=attrs.validators.min_len(1))
    type: DType = "uint8"
    unit: str | None = None

    @property
    def range(self) -> tuple[Value, Value]:
        if isinstance(self.values[0], str):
            return 0, len(self.values) - 1
        return min(self.values), max(self.values)  # type: ignore[type-var]

    def _issues(self) -> Iterator[tuple[Loc, str]]:
        kinds = {type(x) for x in self.values}
        if len(kinds) > 1 and kinds != {int, float}:
            yield ("values",), "'values' must all be of one kind (numbers, booleans or strings)"
            return
        lo, hi = DTYPE_LIMITS[self.type]
        for i, value in enumerate(self.values):
            if isinstance(value, str):
                if not self.type.startswith("uint"):
                    yield (
                        ("type",),
                        f"string values label 0..N-1 and need an unsigned integer 'type' (got {self.type!r})",
                    )
                    return
            elif (
                isinstance(value, float)
                and not self.type.startswith("float")
                and not value.is_integer()
            ):
                yield ("values", i), f"float value {value} needs a float 'type' (got {self.type!r})"
            elif isinstance(value, bool):
                if self.type != "bool" and not self.type.startswith(("uint", "int")):
                    yield (
                        ("values", i),
                        f"boolean value needs 'type' bool or an integer type (got {self.type!r})",
                    )
            elif not lo <= value <= hi:
                yield ("values", i), f"value {value} does not fit 'type' {self.type} [{lo}, {hi}]"
        if isinstance(self.values[0], str) and len(self.values) - 1 > hi:
            yield ("values",), f"{len(self.values)} labels do not fit 'type' {self.type}"


TensorDataDescr = NominalOrOrdinalDataDescr | IntervalOrRatioDataDescr
TensorData = TensorDataDescr | tuple[TensorDataDescr, ...]


def _data_descr(raw: Any) -> TensorDataDescr:
    if not isinstance(raw, Mapping):
        raise TypeError(f"must be a data description mapping (got {describe(raw)})")
    cls: type = NominalOrOrdinalDataDescr if "values" in raw else IntervalOrRatioDataDescr
    result: TensorDataDescr = converter.structure(raw, cls)
    return result


def _data(raw: Any) -> TensorData:
    result: TensorData = one_or_list(
        raw,
        tuple[TensorDataDescr, ...],
        _data_descr,
        "a data description or a non-empty list of them",
    )
    return result


register_union(TensorDataDescr, _data_descr)
register_union(TensorData, _data)


def dtype_of(data: TensorData) -> str:
    """The data type name (of the first entry for per-channel lists)."""
    first = data[0] if isinstance(data, tuple) else data
    return first.type
