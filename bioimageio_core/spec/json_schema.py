"""JSON Schemas generated from the descriptor classes (types, defaults and field constraints)."""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any, Literal, Union, get_args, get_origin

import attrs

from bioimageio_core.spec._convert import EXTRA, INTERNAL, KIND, converter
from bioimageio_core.spec._validators import JSON_SCHEMA
from bioimageio_core.spec.build import DESCR_CLASSES
from bioimageio_core.spec.processing import (
    BUILTIN_PROCESSING,
    CUSTOM,
    CustomKwargs,
    ProcessingStep,
)
from bioimageio_core.spec.weights import BUILTIN_WEIGHT_FORMATS, WeightsDescr

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

SCHEMAS: dict[str, type] = {
    f"{rtype}_v{version.replace('.', '_')}": cls
    for rtype, by_version in DESCR_CLASSES.items()
    for version, cls in by_version.items()
}
"""Schema file stem (``schemas/<stem>.json``) -> descriptor class."""


class _Generator:
    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}

    def ref(self, cls: type) -> dict[str, Any]:
        name = cls.__name__
        if name not in self.defs:
            self.defs[name] = {}  # placeholder against recursion
            self.defs[name] = self.class_schema(cls)
        return {"$ref": f"#/$defs/{name}"}

    def class_schema(self, cls: type) -> dict[str, Any]:
        if cls is WeightsDescr:
            return self.weights_schema()
        if cls is ProcessingStep:
            return self.step_schema()
        attrs.resolve_types(cls)
        properties: dict[str, Any] = {}
        required: list[str] = []
        allow_extra = False
        for f in attrs.fields(cls):
            if EXTRA in f.metadata:
                allow_extra = True
            if f.metadata.get(INTERNAL):
                continue
            schema = self.field_schema(f)
            if f.default is attrs.NOTHING:
                required.append(f.name)
            else:
                default = f.default.factory() if isinstance(f.default, attrs.Factory) else f.default  # type: ignore[arg-type]
                if not attrs.has(type(default)):
                    schema["default"] = _jsonable(default)
            properties[f.name] = schema
        out: dict[str, Any] = {"type": "object", "title": cls.__name__}
        doc = (cls.__doc__ or "").strip()
        if doc and not doc.startswith(f"{cls.__name__}("):
            out["description"] = doc.splitlines()[0]
        out["properties"] = properties
        if required:
            out["required"] = required
        out["additionalProperties"] = allow_extra
        return out

    def field_schema(self, f: attrs.Attribute[Any]) -> dict[str, Any]:
        kind = f.metadata.get(KIND)
        if kind == "version":
            base: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "number"}]}
            return {"anyOf": [base, {"type": "null"}]} if _is_optional(f.type) else base
        schema = self.type_schema(f.type)
        constraints = getattr(f.validator, JSON_SCHEMA, None)
        if constraints is None and f.validator is not None:
            for inner in getattr(f.validator, "_validators", ()):
                constraints = {**(constraints or {}), **getattr(inner, JSON_SCHEMA, {})}
        if constraints:
            _apply(schema, constraints)
        return schema

    def type_schema(self, tp: Any) -> dict[str, Any]:
        origin = get_origin(tp)
        args = get_args(tp)
        if tp is Any:
            return {}
        if tp is type(None):
            return {"type": "null"}
        if tp is str:
            return {"type": "string"}
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            return {"type": "integer"}
        if tp is float:
            return {"type": "number"}
        if origin is Literal:
            return {"enum": list(args)}
        if origin in (Union, types.UnionType):
            options = [self.type_schema(a) for a in args]
            return {"anyOf": options}
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return {"type": "array", "items": self.type_schema(args[0])}
            return {
                "type": "array",
                "prefixItems": [self.type_schema(a) for a in args],
                "minItems": len(args),
                "maxItems": len(args),
            }
        if origin in (dict, Mapping) or tp in (dict, Mapping):
            value = self.type_schema(args[1]) if len(args) == 2 else {}
            return {"type": "object", "additionalProperties": value or True}
        if isinstance(tp, type) and (attrs.has(tp) or tp in (WeightsDescr, ProcessingStep)):
            return self.ref(tp)
        raise TypeError(f"no JSON schema for type {tp!r}")  # pragma: no cover

    def weights_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "title": "WeightsDescr",
            "description": "Weights entries by weight format; unknown formats are kept (a plugin may provide them).",
            "properties": {
                name: {"anyOf": [self.ref(cls), {"type": "null"}]}
                for name, cls in sorted(BUILTIN_WEIGHT_FORMATS.items())
            },
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "properties": {"source": {"type": "string"}},
            },
        }

    def step_schema(self) -> dict[str, Any]:
        options = []
        for op_id, classes in BUILTIN_PROCESSING.items():
            if op_id == CUSTOM:  # its fields sit on the step, next to the id
                self.ref(CustomKwargs)  # documented on its own, too
                fields = self.class_schema(CustomKwargs)
                options.append(
                    {
                        **fields,
                        "properties": {"id": {"const": op_id}, **fields["properties"]},
                        "required": ["id", *fields.get("required", [])],
                    }
                )
                continue
            kwargs = [self.ref(c) for c in classes]
            options.append(
                {
                    "type": "object",
                    "properties": {
                        "id": {"const": op_id},
                        "kwargs": kwargs[0] if len(kwargs) == 1 else {"anyOf": kwargs},
                    },
                    "required": ["id"],
                    "additionalProperties": False,
                }
            )
        return {"title": "ProcessingStep", "oneOf": options}


def _is_optional(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp)


def _apply(schema: dict[str, Any], constraints: Mapping[str, Any]) -> None:
    """Attach validator constraints to the matching branch(es) of a field schema."""
    if "anyOf" in schema:
        for option in schema["anyOf"]:
            _apply(option, constraints)
        return
    kind = {"string": "string", "array": "array", "integer": "number", "number": "number"}.get(
        schema.get("type", ""), ""
    )
    if kind in constraints:
        schema.update(constraints[kind])
    elif schema.get("type") == "array" and "items" in schema:
        _apply(schema["items"], constraints)


def _jsonable(value: Any) -> Any:
    if attrs.has(type(value)):
        return converter.unstructure(value)
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def json_schema(cls: type) -> dict[str, Any]:
    """The JSON Schema of descriptor class ``cls`` (self-contained, with ``$defs``)."""
    gen = _Generator()
    top = gen.class_schema(cls)
    return {"$schema": SCHEMA_DIALECT, **top, "$defs": dict(sorted(gen.defs.items()))}


def all_schemas() -> dict[str, dict[str, Any]]:
    """Every committed schema by file stem."""
    return {stem: json_schema(cls) for stem, cls in SCHEMAS.items()}
