"""The one cattrs converter of the descriptors, with strict hooks that report every problem.

Structuring keeps a context (current field path, collected issues, active extensions) so that every
hook can report errors and warnings at the exact location in the raw description. A failing hook
records its issue and raises ``Invalid``; the enclosing class hook keeps going with the other fields
so that all problems of a description are found in one pass.
"""

from __future__ import annotations

import contextvars
import datetime
import math
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import attrs
import cattrs

from bioimageio_core.spec.issues import Issue, Loc, Severity

T = TypeVar("T")

converter = cattrs.Converter()
"""The converter that structures raw (YAML-loaded) data into descriptors and back."""

# metadata keys on attrs fields
INTERNAL = "bioimageio_internal"  # not part of the YAML (root, extra)
EXTRA = "bioimageio_extra"  # severity for unknown keys kept in this field ("warning" | None)
ALWAYS = "bioimageio_always"  # always dumped, even when equal to the default (discriminators)
KIND = "bioimageio_kind"  # special scalar kinds: "axis_id", "axis_ids", "version", "timestamp"


class Invalid(Exception):
    """Structuring failed; the reasons are already recorded as issues in the context."""


class SpecValidationError(ValueError):
    """Raised by ``structure`` when raw data does not describe a valid instance."""

    def __init__(self, issues: tuple[Issue, ...]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


@attrs.define
class _Context:
    loc: list[str | int] = attrs.Factory(list)
    issues: list[Issue] = attrs.Factory(list)
    extensions: Any = None


_CTX: contextvars.ContextVar[_Context | None] = contextvars.ContextVar(
    "bioimageio_spec_ctx", default=None
)


@contextmanager
def structuring_context(extensions: Any = None) -> Iterator[list[Issue]]:
    """Collect the issues of one structuring run (nested calls share the outer context)."""
    outer = _CTX.get()
    if outer is not None:
        yield outer.issues
        return
    ctx = _Context(extensions=extensions)
    token = _CTX.set(ctx)
    try:
        yield ctx.issues
    finally:
        _CTX.reset(token)


def current_extensions() -> Any:
    ctx = _CTX.get()
    return None if ctx is None else ctx.extensions


def current_loc() -> Loc:
    ctx = _CTX.get()
    return () if ctx is None else tuple(ctx.loc)


def describe(value: Any) -> str:
    """A short rendering of a raw value for messages."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return text


def report(
    msg: str, *, severity: Severity = "error", type: str = "value_error", at: Loc = ()
) -> None:
    """Record an issue at the current location (plus ``at``).

    Messages starting with "must" get the field name prepended: "'size' must be ...".
    """
    ctx = _CTX.get()
    loc = (*(ctx.loc if ctx is not None else ()), *at)
    if msg.startswith("must"):
        names = [p for p in loc if isinstance(p, str)]
        field = names[-1] if names else "value"
        msg = f"'{field}' {msg}"
    issue = Issue(loc=loc, msg=msg, severity=severity, type=type)
    if ctx is not None:
        ctx.issues.append(issue)
    elif severity == "error":  # direct converter use outside ``structure``: fail right away
        raise SpecValidationError((issue,))


@contextmanager
def at(key: str | int) -> Iterator[None]:
    ctx = _CTX.get()
    if ctx is None:
        yield
        return
    ctx.loc.append(key)
    try:
        yield
    finally:
        ctx.loc.pop()


def structure_value(value: Any, tp: Any) -> Any:
    """Structure ``value`` as ``tp`` at the current location; record failures and raise Invalid."""
    try:
        return converter.structure(value, tp)
    except (Invalid, SpecValidationError):
        raise
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as e:
        report(
            str(e) or type(e).__name__,
            type="type_error" if isinstance(e, TypeError) else "value_error",
        )
        raise Invalid from None
    except cattrs.BaseValidationError as e:  # pragma: no cover - cattrs' own hooks are replaced
        report(f"invalid value: {e}")
        raise Invalid from None


def structure_at(value: Any, tp: Any, key: str | int) -> Any:
    with at(key):
        return structure_value(value, tp)


def structure(raw: Any, cls: type[T], *, extensions: Any = None) -> T:
    """Structure raw data as ``cls``; raise ``SpecValidationError`` with all errors found."""
    with structuring_context(extensions) as issues:
        try:
            result: T = structure_value(raw, cls)
        except Invalid:
            result = None  # type: ignore[assignment]
        errors = tuple(i for i in issues if i.severity == "error")
    if errors:
        raise SpecValidationError(errors)
    return result


def unstructure(obj: Any) -> Any:
    return converter.unstructure(obj)


# --------------------------------------------------------------------------- scalar hooks


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _str(v: Any, _: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"must be a string (got {describe(v)})")
    return v


def _int(v: Any, _: Any) -> int:
    if isinstance(v, float) and not isinstance(v, bool) and v.is_integer():
        return int(v)
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"must be an integer (got {describe(v)})")
    return v


def _float(v: Any, _: Any) -> float:
    if isinstance(v, str):  # YAML 1.1 reads '1e-05' (no dot) as a string
        try:
            return float(v)
        except ValueError:
            pass
    if not _is_number(v):
        raise TypeError(f"must be a number (got {describe(v)})")
    return float(v)


def _bool(v: Any, _: Any) -> bool:
    if not isinstance(v, bool):
        raise TypeError(f"must be true or false (got {describe(v)})")
    return v


def _any(v: Any, _: Any) -> Any:
    return v


converter.register_structure_hook(str, _str)
converter.register_structure_hook(int, _int)
converter.register_structure_hook(float, _float)
converter.register_structure_hook(bool, _bool)
converter.register_structure_hook_func(lambda t: t is Any, _any)


def _is_literal(t: Any) -> bool:
    return get_origin(t) is Literal


def _literal(v: Any, t: Any) -> Any:
    allowed = get_args(t)
    if not any(v == a and type(v) is type(a) for a in allowed):
        raise ValueError(
            f"must be one of {', '.join(repr(a) for a in allowed)} (got {describe(v)})"
        )
    return v


converter.register_structure_hook_func(_is_literal, _literal)


# --------------------------------------------------------------------------- containers


def _is_var_tuple(t: Any) -> bool:
    args = get_args(t)
    return get_origin(t) is tuple and len(args) == 2 and args[1] is Ellipsis


def _var_tuple(v: Any, t: Any) -> tuple[Any, ...]:
    if not isinstance(v, list | tuple):
        raise TypeError(f"must be a list (got {describe(v)})")
    item_type = get_args(t)[0]
    return _structure_items((item, item_type) for item in v)


def _is_fixed_tuple(t: Any) -> bool:
    return get_origin(t) is tuple and not _is_var_tuple(t) and len(get_args(t)) > 0


def _fixed_tuple(v: Any, t: Any) -> tuple[Any, ...]:
    args = get_args(t)
    if not isinstance(v, list | tuple) or len(v) != len(args):
        raise TypeError(f"must be a list of {len(args)} items (got {describe(v)})")
    return _structure_items(zip(v, args, strict=True))


def _structure_items(items: Iterable[tuple[Any, Any]]) -> tuple[Any, ...]:
    """Structure ``(value, type)`` pairs at indices 0, 1, …; report every invalid item."""
    out: list[Any] = []
    failed = False
    for i, (item, item_type) in enumerate(items):
        try:
            out.append(structure_at(item, item_type, i))
        except Invalid:
            failed = True
    if failed:
        raise Invalid
    return tuple(out)


def _is_mapping(t: Any) -> bool:
    return get_origin(t) in (dict, Mapping, typing.Mapping) or t in (dict, Mapping)


def _mapping(v: Any, t: Any) -> dict[str, Any]:
    if not isinstance(v, Mapping):
        raise TypeError(f"must be a mapping (got {describe(v)})")
    args = get_args(t)
    value_type = args[1] if len(args) == 2 else Any
    out: dict[str, Any] = {}
    failed = False
    for key, item in v.items():
        if not isinstance(key, str):
            with at(str(key)):
                report(f"keys must be strings (got {describe(key)})")
            failed = True
            continue
        if value_type is Any:
            out[key] = item
            continue
        try:
            out[key] = structure_at(item, value_type, key)
        except Invalid:
            failed = True
    if failed:
        raise Invalid
    return out


converter.register_structure_hook_func(_is_var_tuple, _var_tuple)
converter.register_structure_hook_func(_is_fixed_tuple, _fixed_tuple)
converter.register_structure_hook_func(_is_mapping, _mapping)


def _is_optional(t: Any) -> bool:
    return get_origin(t) in (Union, types.UnionType) and type(None) in get_args(t)


def _optional(v: Any, t: Any) -> Any:
    if v is None:
        return None
    rest = tuple(a for a in get_args(t) if a is not type(None))
    inner: Any = rest[0] if len(rest) == 1 else Union[rest]  # noqa: UP007
    return converter.structure(v, inner)


converter.register_structure_hook_func(_is_optional, _optional)


def one_or_list(raw: Any, many: Any, one: Callable[[Any], Any], expected: str) -> Any:
    """``raw`` structured as ``many`` (a variable-length tuple type) when it is a list, which must
    not be empty, else by ``one``; ``expected`` says what the field takes, for the error."""
    if isinstance(raw, list | tuple):
        result = converter.structure(raw, many)
        if not result:
            raise ValueError(f"must be {expected} (got [])")
        return result
    return one(raw)


def register_union(union: Any, hook: Callable[[Any], Any]) -> None:
    """Register a structure hook for a (non-optional) union type alias."""
    converter.register_structure_hook_func(lambda t: t == union, lambda v, _: hook(v))


# --------------------------------------------------------------------------- special kinds

_AXIS_ID_ALIASES = {"b": "batch", "t": "time", "i": "index", "c": "channel", "s": "channel"}


def normalize_axis_id(value: str) -> str:
    """An axis id as format 0.5.13+ reads it: lower case, then ``b t i c s`` -> ``batch time
    index channel channel``."""
    lower = value.lower()
    return _AXIS_ID_ALIASES.get(lower, lower)


def _axis_id(v: Any) -> str:
    value = _str(v, str)
    new = normalize_axis_id(value)
    if new != value:
        report(f"axis id '{value}' is read as '{new}'; write '{new}'", severity="warning")
    return new


def _version(v: Any) -> str:
    if _is_number(v):
        report(
            f"version written as a number ({v!r}); quote it, e.g. '{v}', to keep trailing zeros",
            severity="warning",
        )
        return str(v)
    return _str(v, str)


def _timestamp(v: Any) -> str:
    if isinstance(v, datetime.datetime | datetime.date):
        return v.isoformat()
    value = _str(v, str)
    try:
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"must be an ISO 8601 date-time (got {describe(v)})") from None
    return value


def _structure_kind(kind: str, value: Any, tp: Any) -> Any:
    if value is None and _is_optional(tp):
        return None
    if kind == "axis_id":
        return _axis_id(value)
    if kind == "axis_ids":
        if not isinstance(value, list | tuple):
            raise TypeError(f"must be a list of axis ids (got {describe(value)})")
        out = []
        for i, item in enumerate(value):
            with at(i):
                out.append(_axis_id(item))
        return tuple(out)
    if kind == "version":
        return _version(value)
    if kind == "timestamp":
        return _timestamp(value)
    raise AssertionError(f"unknown field kind {kind}")  # pragma: no cover


# --------------------------------------------------------------------------- attrs classes


def _field_default(f: attrs.Attribute[Any]) -> Any:
    if isinstance(f.default, attrs.Factory):  # type: ignore[arg-type]
        factory: Callable[[], Any] = getattr(f.default, "factory")  # noqa: B009
        return factory()
    return f.default


def _attrs_structure_factory(cls: type[Any]) -> Callable[[Any, Any], Any]:
    attrs.resolve_types(cls)
    fields = attrs.fields(cls)
    yaml_fields = [f for f in fields if not f.metadata.get(INTERNAL)]
    names = {f.name for f in yaml_fields}
    extra_field = next((f for f in fields if EXTRA in f.metadata), None)

    def hook(obj: Any, _: Any) -> Any:
        if not isinstance(obj, Mapping):
            raise TypeError(f"must be a mapping (got {describe(obj)})")
        kwargs: dict[str, Any] = {}
        failed = False
        for f in yaml_fields:
            if f.name not in obj:
                if f.default is attrs.NOTHING:
                    report(f"'{f.name}' is required", at=(f.name,), type="missing")
                    failed = True
                continue
            with at(f.name):
                try:
                    kind = f.metadata.get(KIND)
                    if kind is not None:
                        try:
                            kwargs[f.name] = _structure_kind(kind, obj[f.name], f.type)
                        except (TypeError, ValueError) as e:
                            report(str(e))
                            raise Invalid from None
                    else:
                        kwargs[f.name] = structure_value(obj[f.name], f.type)
                except Invalid:
                    failed = True
                    continue
                if f.validator is not None:
                    try:
                        f.validator(None, f, kwargs[f.name])
                    except (TypeError, ValueError) as e:
                        report(str(e))
                        failed = True
        unknown = {k: v for k, v in obj.items() if k not in names}
        if unknown:
            if extra_field is not None:
                kwargs[extra_field.name] = unknown
                severity = extra_field.metadata[EXTRA]
                if severity is not None:
                    for key in unknown:
                        report(
                            f"unknown field '{key}' (kept as is)", severity=severity, at=(str(key),)
                        )
            else:
                for key in unknown:
                    allowed = ", ".join(sorted(names))
                    report(
                        f"unknown field '{key}'; allowed fields: {allowed}",
                        at=(str(key),),
                        type="extra_forbidden",
                    )
                failed = True
        if failed:
            raise Invalid
        try:
            instance = cls(**kwargs)
        except (TypeError, ValueError) as e:
            report(str(e))
            raise Invalid from None
        check = getattr(instance, "_issues", None)
        if check is not None:
            bad = False
            for loc, msg in check():
                report(msg, at=loc)
                bad = True
            if bad:
                raise Invalid
        return instance

    def outer(obj: Any, tp: Any) -> Any:
        if _CTX.get() is not None:
            return hook(obj, tp)
        with structuring_context() as issues:
            try:
                return hook(obj, tp)
            except Invalid:
                raise SpecValidationError(tuple(issues)) from None

    return outer


def attrs_structure_hook(cls: type[Any]) -> Callable[[Any, Any], Any]:
    """The converter's own structure hook for attrs class ``cls`` (to wrap in a custom hook)."""
    return _attrs_structure_factory(cls)


_FIRST = ("format_version", "type", "name")


def _attrs_unstructure_factory(cls: type[Any]) -> Callable[[Any], Any]:
    attrs.resolve_types(cls)
    fields = attrs.fields(cls)
    yaml_fields = [f for f in fields if not f.metadata.get(INTERNAL)]
    if any(f.name == "format_version" for f in yaml_fields):
        yaml_fields.sort(key=lambda f: _FIRST.index(f.name) if f.name in _FIRST else len(_FIRST))
    extra_field = next((f for f in fields if EXTRA in f.metadata), None)

    def hook(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in yaml_fields:
            value = getattr(obj, f.name)
            if (
                not f.metadata.get(ALWAYS)
                and f.default is not attrs.NOTHING
                and _same(value, _field_default(f))
            ):
                continue
            out[f.name] = converter.unstructure(value)
        if extra_field is not None:
            for key, value in getattr(obj, extra_field.name).items():
                out.setdefault(key, value)
        return out

    return hook


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b) and not (_is_number(a) and _is_number(b)):
        return False
    try:
        return bool(a == b)
    except Exception:  # pragma: no cover - exotic values
        return False


converter.register_structure_hook_factory(attrs.has, _attrs_structure_factory)
converter.register_unstructure_hook_factory(attrs.has, _attrs_unstructure_factory)
converter.register_unstructure_hook(tuple, lambda t: [converter.unstructure(x) for x in t])
converter.register_unstructure_hook(list, lambda t: [converter.unstructure(x) for x in t])
converter.register_unstructure_hook(
    dict, lambda d: {k: converter.unstructure(v) for k, v in d.items()}
)


def finite_or_none(v: float | None) -> float | None:
    """Infinite range bounds mean "unbounded"."""
    if v is not None and math.isinf(v):
        return None
    return v
