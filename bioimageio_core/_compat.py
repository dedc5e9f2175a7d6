"""Keyword spellings of bioimageio.core that the public functions accept next to their own.

Each function documents one spelling (``weights_format``); the other is accepted so that code
written for bioimageio.core runs unchanged.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def either_keyword(ours: T | None, theirs: T | None, *, name: str, alias: str) -> T | None:
    """The value given under ``name`` or its ``alias`` (at most one may be given, or both equal).

    Raises:
        TypeError: both are given with different values.
    """
    if theirs is None:
        return ours
    if ours is not None and ours != theirs:
        raise TypeError(
            f"got {name}={ours!r} and {alias}={theirs!r}: they are two spellings of one option, "
            f"give only {name}"
        )
    return theirs


def weights_format_keyword(weights_format: str | None, weight_format: str | None) -> str | None:
    """``weights_format``, or bioimageio.core's spelling ``weight_format``."""
    return either_keyword(weights_format, weight_format, name="weights_format", alias="weight_format")


__all__ = ["either_keyword", "weights_format_keyword"]
