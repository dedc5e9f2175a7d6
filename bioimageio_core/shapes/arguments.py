"""User-given blocking arguments (blocksize parameter, batch size) checked against a model."""

from __future__ import annotations

import numbers
from collections.abc import Mapping

from bioimageio_core.errors import InputError
from bioimageio_core.shapes.types import ModelShape, ParameterizedSize, TensorAxis

BlocksizeParameter = int | Mapping[TensorAxis, int]
"""``n`` for every parameterized input axis, or ``{(tensor_id, axis_id): n}`` (missing: 0)."""


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
            (t.id, a.id)
            for t in model.inputs
            for a in t.axes
            if isinstance(a.size, ParameterizedSize)
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


def blocksize_n(ns: BlocksizeParameter, key: TensorAxis) -> int:
    if isinstance(ns, int):
        return ns
    return int(ns.get(key, 0))
