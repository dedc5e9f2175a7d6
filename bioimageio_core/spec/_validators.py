"""attrs validators with messages of the form "'field' must be ... (got ...)"."""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Sized
from typing import Any

import attrs

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]
JSON_SCHEMA = "json_schema"  # attribute of a validator: {"string"|"array"|"number": constraints}


def _annotate(check: Validator, *, min: int | None, max: int | None, kind: str) -> None:
    string: dict[str, Any] = {}
    array: dict[str, Any] = {}
    if min is not None:
        string["minLength"] = min
        array["minItems"] = min
    if max is not None:
        string["maxLength"] = max
        array["maxItems"] = max
    setattr(check, JSON_SCHEMA, {"string": string, "array": array})


def _fail(attribute: attrs.Attribute[Any], expected: str, value: Any) -> None:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    raise ValueError(f"'{attribute.name}' must be {expected} (got {text})")


def _skip(value: Any) -> bool:
    return value is None


def length(min: int | None = None, max: int | None = None) -> Validator:
    def check(_: Any, attribute: attrs.Attribute[Any], value: Sized) -> None:
        if _skip(value):
            return
        n = len(value)
        if min is not None and n < min:
            _fail(attribute, f"at least {min} long", value)
        if max is not None and n > max:
            _fail(attribute, f"at most {max} long", value)

    _annotate(check, min=min, max=max, kind="length")
    return check


def bounds(
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
) -> Validator:
    """Bounds on a number, or on every number in a tuple; ``None`` values are skipped."""

    def one(attribute: attrs.Attribute[Any], value: Any, full: Any) -> None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return
        if gt is not None and not value > gt:
            _fail(attribute, f"> {gt}", full)
        if ge is not None and not value >= ge:
            _fail(attribute, f">= {ge}", full)
        if lt is not None and not value < lt:
            _fail(attribute, f"< {lt}", full)
        if le is not None and not value <= le:
            _fail(attribute, f"<= {le}", full)

    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, tuple):
            for item in value:
                one(attribute, item, value)
        else:
            one(attribute, value, value)

    schema: dict[str, Any] = {}
    for key, bound in (
        ("exclusiveMinimum", gt),
        ("minimum", ge),
        ("exclusiveMaximum", lt),
        ("maximum", le),
    ):
        if bound is not None:
            schema[key] = bound
    setattr(check, JSON_SCHEMA, {"number": schema})
    return check


def matches(pattern: str, expected: str) -> Validator:
    regex = re.compile(pattern)

    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if _skip(value):
            return
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if isinstance(item, str) and regex.fullmatch(item) is None:
                _fail(attribute, expected, value)

    setattr(check, JSON_SCHEMA, {"string": {"pattern": f"^{pattern}$"}})
    return check


def identifier(max_length: int, *, keywords: bool = True) -> Validator:
    """A Python identifier of at most ``max_length`` characters (``keywords=False``: not ``if``,
    ``for`` …).

    The format asks for lowercase tensor ids, but published (and accepted) models use mixed case.
    """

    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if _skip(value):
            return
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if not (isinstance(item, str) and item.isidentifier() and len(item) <= max_length):
                _fail(
                    attribute,
                    f"an identifier (letters, digits, '_'; no leading digit) of at most {max_length} characters",
                    value,
                )
            if not keywords and keyword.iskeyword(item):
                _fail(attribute, "an identifier that is no Python keyword", value)

    setattr(check, JSON_SCHEMA, {"string": {"minLength": 1, "maxLength": max_length}})
    return check


SHA256 = matches(r"[0-9a-fA-F]{64}", "a SHA-256 hex digest (64 hex characters)")


VERSION_PATTERN = (
    r"v?\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?(\+[A-Za-z0-9]+(\.[A-Za-z0-9]+)*)?"
)
"""A PEP 440 version (what the format's ``Version`` type accepts), e.g. ``3.3.0``, ``2.1.0rc1``."""
_VERSION = re.compile(VERSION_PATTERN, re.IGNORECASE)


def release(version: str) -> tuple[int, ...] | None:
    """The release numbers of a PEP 440 version (``"3.1.0rc1" -> (3, 1, 0)``); None if not one."""
    text = version.strip()
    if _VERSION.fullmatch(text) is None:
        return None
    numbers = re.match(r"v?(\d+(?:\.\d+)*)", text, re.IGNORECASE)
    assert numbers is not None
    return tuple(int(n) for n in numbers.group(1).split("."))


def version_at_least(minimum: int) -> Validator:
    """A PEP 440 version (string) whose major version is at least ``minimum``."""

    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if _skip(value):
            return
        numbers = release(value) if isinstance(value, str) else None
        if numbers is None:
            _fail(attribute, "a version such as '3.3.0'", value)
        elif numbers < (minimum,):
            _fail(attribute, f"a version >= {minimum}", value)

    setattr(check, JSON_SCHEMA, {"string": {"pattern": f"^{VERSION_PATTERN}$"}})
    return check
