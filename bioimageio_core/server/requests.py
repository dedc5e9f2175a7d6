"""The JSON request bodies of the server, parsed strictly: unknown fields and wrong types are
refused (400) with the field named, so a typo never silently changes what runs."""

from __future__ import annotations

from typing import Any, TypeVar

import attrs

from bioimageio_core.server.errors import ApiError


@attrs.frozen
class ModelRequest:
    """``POST /v1/models``: which model to load, with which weight format, where."""

    package: str | None = None
    """sha256 of an uploaded package."""
    source: str | None = None
    """An http(s) URL of a description or package, or an id this server resolves."""
    weights_format: str | None = None
    devices: tuple[str, ...] | None = None


@attrs.frozen
class TestRequest(ModelRequest):
    """``POST /v1/test``."""

    stop_early: bool = False


@attrs.frozen
class ValidateRequest:
    """``POST /v1/validate``."""

    package: str | None = None
    source: str | None = None
    perform_io_checks: bool = True


_KINDS: dict[str, str] = {
    "package": "string",
    "source": "string",
    "weights_format": "string",
    "devices": "list of strings",
    "stop_early": "boolean",
    "perform_io_checks": "boolean",
}

R = TypeVar("R", ModelRequest, TestRequest, ValidateRequest)


def _value(name: str, value: Any) -> Any:
    kind = _KINDS[name]
    if value is None:
        return None
    if kind == "string" and isinstance(value, str) and value.strip():
        return value.strip()
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "list of strings" and isinstance(value, list) and all(
        isinstance(v, str) and v.strip() for v in value
    ):
        return tuple(v.strip() for v in value)
    raise ApiError(
        400, "BadRequest", f"field {name!r} must be a {kind} (got {value!r})", loc=name
    )


def parse_json(data: Any, cls: type[R]) -> R:
    """``data`` (parsed JSON) as a ``cls`` request.

    Raises:
        ApiError: 400 for anything but an object of the known fields with the right types, or
            when not exactly one of ``package`` and ``source`` is given.
    """
    fields = [f.name for f in attrs.fields(cls)]
    if not isinstance(data, dict):
        raise ApiError(400, "BadRequest", "the request body must be a JSON object")
    unknown = sorted(k for k in data if k not in fields)
    if unknown:
        raise ApiError(
            400,
            "BadRequest",
            f"unknown field(s) {unknown}; this request takes {fields}",
            loc=unknown[0],
        )
    values = {k: _value(k, v) for k, v in data.items()}
    if (values.get("package") is None) == (values.get("source") is None):
        raise ApiError(
            400,
            "BadRequest",
            "give exactly one of 'package' (the sha256 of an uploaded package) and 'source' (an "
            "http(s) URL or an id)",
        )
    request: R = cls(**{k: v for k, v in values.items() if v is not None})
    return request


__all__ = ["ModelRequest", "TestRequest", "ValidateRequest", "parse_json"]
