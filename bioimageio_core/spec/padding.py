"""How an input is padded beyond its borders (``inputs[i].pad``, model format 0.5.8+).

The four modes are numpy's padding modes. Pad *widths* are not part of this field: they follow
from the output halos (see :mod:`bioimageio_core.shapes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from bioimageio_core.spec import _convert as c

PadMode = Literal["constant", "edge", "reflect", "symmetric"]
PAD_MODES: tuple[PadMode, ...] = ("constant", "edge", "reflect", "symmetric")


def _mode(value: str) -> Any:
    return attrs.field(default=value, metadata={c.ALWAYS: True})


@attrs.frozen(kw_only=True)
class ConstantPadding:
    """Fill with ``value`` (numpy ``constant``)."""

    mode: Literal["constant"] = _mode("constant")
    value: int | float = 0


@attrs.frozen(kw_only=True)
class EdgePadding:
    """Repeat the border value (numpy ``edge``)."""

    mode: Literal["edge"] = _mode("edge")


@attrs.frozen(kw_only=True)
class ReflectPadding:
    """Mirror without repeating the border sample (numpy ``reflect``: ``x[w] … x[1]``)."""

    mode: Literal["reflect"] = _mode("reflect")


@attrs.frozen(kw_only=True)
class SymmetricPadding:
    """Mirror with the border sample repeated (numpy ``symmetric``: ``x[w-1] … x[0]``)."""

    mode: Literal["symmetric"] = _mode("symmetric")


PadDescr = ConstantPadding | EdgePadding | ReflectPadding | SymmetricPadding

_BY_MODE: dict[str, type] = {
    "constant": ConstantPadding,
    "edge": EdgePadding,
    "reflect": ReflectPadding,
    "symmetric": SymmetricPadding,
}


def _number(raw: Any, _: Any) -> int | float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise TypeError(f"must be a number (got {c.describe(raw)})")
    return raw


c.converter.register_structure_hook_func(lambda t: t == int | float, _number)


def _pad(raw: Any) -> PadDescr:
    """Discriminate on ``mode``; a mapping without ``mode`` is constant padding."""
    if not isinstance(raw, Mapping):
        raise TypeError(
            "must be a padding description such as {mode: reflect} or {mode: constant, value: 0} "
            f"(got {c.describe(raw)})"
        )
    mode = raw.get("mode", "constant")
    cls = _BY_MODE.get(mode) if isinstance(mode, str) else None
    if cls is None:
        with c.at("mode"):
            c.report(
                f"must be one of {', '.join(repr(m) for m in PAD_MODES)} (got {c.describe(mode)})"
            )
        raise c.Invalid
    result: PadDescr = c.converter.structure(raw, cls)
    return result


c.register_union(PadDescr, _pad)


def numpy_pad_kwargs(pad: PadDescr) -> dict[str, Any]:
    """Keyword arguments for ``numpy.pad`` that apply ``pad``: ``{"mode": …[, "constant_values": …]}``."""
    if isinstance(pad, ConstantPadding):
        return {"mode": "constant", "constant_values": pad.value}
    return {"mode": pad.mode}
