"""Reproducibility tolerances (``config.bioimageio.reproducibility_tolerance``, model 0.5.13+).

Three entry kinds, told apart by ``output_ids``:

* :class:`ReproducibilityTolerance` — ``output_ids`` a list of output ids (``[]``: every output);
* :class:`ContinuousReproducibilityTolerance` — ``output_ids: any_continuous_output`` (float outputs);
* :class:`DiscreteReproducibilityTolerance` — ``output_ids: any_discrete_output`` (integer and
  boolean outputs), compared exactly (``relative_tolerance`` = ``absolute_tolerance`` = 0) with a
  budget of mismatched elements.

For one output and weight format the **first** entry that applies wins
(:func:`select_tolerance`). Without the key a model gets :data:`DEFAULT_REPRODUCIBILITY_TOLERANCE`.
Written descriptions always carry ``output_ids``, so an entry keeps its meaning when read again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

import attrs

from bioimageio_core.spec import _validators as v
from bioimageio_core.spec._convert import (
    ALWAYS,
    EXTRA,
    INTERNAL,
    Invalid,
    at,
    converter,
    describe,
    register_union,
    report,
)
from bioimageio_core.spec.issues import Loc

ANY_CONTINUOUS_OUTPUT = "any_continuous_output"
ANY_DISCRETE_OUTPUT = "any_discrete_output"
MAX_MISMATCHED_PER_MILLION = 30000

OutputKind = Literal["continuous", "discrete"]


def _extra() -> Any:
    return attrs.field(factory=dict, metadata={INTERNAL: True, EXTRA: None})


def _rtol(default: float = 1e-3) -> Any:
    return attrs.field(default=default, validator=v.bounds(ge=0, le=1e-2))


def _atol(default: float = 1e-3) -> Any:
    return attrs.field(default=default, validator=v.bounds(ge=0))


def _ppm(default: int) -> Any:
    return attrs.field(default=default, validator=v.bounds(ge=0, le=MAX_MISMATCHED_PER_MILLION))


def _always(default: Any) -> Any:
    return attrs.field(default=default, metadata={ALWAYS: True})


@attrs.frozen(kw_only=True)
class ReproducibilityTolerance:
    """Tolerance for the outputs listed in ``output_ids`` (``[]``: every output)."""

    relative_tolerance: float = _rtol()
    absolute_tolerance: float = _atol()
    mismatched_elements_per_million: int = _ppm(100)
    output_ids: tuple[str, ...] = _always(())
    weights_formats: tuple[str, ...] = ()
    extra: Mapping[str, Any] = _extra()

    def _issues(self) -> Iterator[tuple[Loc, str]]:
        for i, output_id in enumerate(self.output_ids):
            if not output_id or len(output_id) > 32:
                yield (
                    ("output_ids", i),
                    f"'output_ids' must hold tensor ids of 1 to 32 characters (got {output_id!r})",
                )


@attrs.frozen(kw_only=True)
class ContinuousReproducibilityTolerance:
    """Tolerance for every float output (``output_ids: any_continuous_output``)."""

    relative_tolerance: float = _rtol()
    absolute_tolerance: float = _atol()
    mismatched_elements_per_million: int = _ppm(100)
    output_ids: Literal["any_continuous_output"] = _always(ANY_CONTINUOUS_OUTPUT)
    weights_formats: tuple[str, ...] = ()
    extra: Mapping[str, Any] = _extra()


def _zero(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value != 0:
        raise ValueError(
            f"'{attribute.name}' must be 0: discrete outputs are compared exactly "
            f"(got {value!r}); allow mismatches with 'mismatched_elements_per_million'"
        )


setattr(_zero, v.JSON_SCHEMA, {"number": {"const": 0}})


@attrs.frozen(kw_only=True)
class DiscreteReproducibilityTolerance:
    """Exact comparison of every integer/boolean output (``output_ids: any_discrete_output``)."""

    relative_tolerance: float = attrs.field(default=0.0, validator=_zero)
    absolute_tolerance: float = attrs.field(default=0.0, validator=_zero)
    mismatched_elements_per_million: int = _ppm(1000)
    output_ids: Literal["any_discrete_output"] = _always(ANY_DISCRETE_OUTPUT)
    weights_formats: tuple[str, ...] = ()
    extra: Mapping[str, Any] = _extra()


AnyReproducibilityTolerance = (
    ReproducibilityTolerance | ContinuousReproducibilityTolerance | DiscreteReproducibilityTolerance
)

DEFAULT_REPRODUCIBILITY_TOLERANCE: tuple[AnyReproducibilityTolerance, ...] = (
    ContinuousReproducibilityTolerance(),
    DiscreteReproducibilityTolerance(),
)
"""What a model 0.5 description without ``reproducibility_tolerance`` gets."""


def _tolerance(raw: Any) -> AnyReproducibilityTolerance:
    if not isinstance(raw, Mapping):
        raise TypeError(f"must be a tolerance mapping (got {describe(raw)})")
    output_ids = raw.get("output_ids", [])
    cls: Any
    if output_ids == ANY_CONTINUOUS_OUTPUT:
        cls = ContinuousReproducibilityTolerance
    elif output_ids == ANY_DISCRETE_OUTPUT:
        cls = DiscreteReproducibilityTolerance
    elif isinstance(output_ids, list | tuple):
        cls = ReproducibilityTolerance
    else:
        with at("output_ids"):
            report(
                f"must be a list of output ids, '{ANY_CONTINUOUS_OUTPUT}' or "
                f"'{ANY_DISCRETE_OUTPUT}' (got {describe(output_ids)})"
            )
        raise Invalid
    result: AnyReproducibilityTolerance = converter.structure(raw, cls)
    return result


register_union(AnyReproducibilityTolerance, _tolerance)


def output_kind(dtype: str) -> OutputKind:
    """``"continuous"`` for float data types, ``"discrete"`` for integer and boolean ones."""
    return "continuous" if dtype.startswith("float") else "discrete"


def tolerance_applies(
    entry: AnyReproducibilityTolerance, output_id: str, dtype: str, weights_format: str
) -> bool:
    """Whether ``entry`` covers output ``output_id`` (of data type ``dtype``) for ``weights_format``."""
    if entry.weights_formats and weights_format not in entry.weights_formats:
        return False
    if isinstance(entry, ContinuousReproducibilityTolerance):
        return output_kind(dtype) == "continuous"
    if isinstance(entry, DiscreteReproducibilityTolerance):
        return output_kind(dtype) == "discrete"
    return not entry.output_ids or output_id in entry.output_ids


def select_tolerance(
    entries: tuple[AnyReproducibilityTolerance, ...],
    output_id: str,
    dtype: str,
    weights_format: str,
) -> AnyReproducibilityTolerance | None:
    """The first entry that applies to the output and weight format (None: no entry does)."""
    for entry in entries:
        if tolerance_applies(entry, output_id, dtype, weights_format):
            return entry
    return None
