"""The OpenAPI 3.1 description of the server's API (served at ``/v1/openapi.json``).

Written out rather than generated: the bodies are binary ``.npz`` files and plain JSON objects
that the route functions parse themselves, and a test checks that every route of the app is
described here and nothing else.
"""

from __future__ import annotations

from typing import Any

from bioimageio_core._version import __version__
from bioimageio_core.remote.protocol import (
    API_PREFIX,
    AXES_HEADER,
    CALLS_HEADER,
    MAX_CALLS,
    NPZ_MEDIA_TYPE,
)


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def _response(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": _json(schema)}


def _error(description: str) -> dict[str, Any]:
    return _response(description, "Error")


def _json_call(summary: str, request: str, responses: dict[str, Any]) -> dict[str, Any]:
    """An operation whose body is the JSON schema ``request``: ``responses``, then the errors
    every such call can answer."""
    return {
        "summary": summary,
        "requestBody": {"required": True, "content": _json(request)},
        "responses": {**responses, **_COMMON_ERRORS},
    }


_AXES_PARAMETER: dict[str, Any] = {
    "name": AXES_HEADER,
    "in": "header",
    "required": True,
    "description": "JSON object: tensor id -> list of axis ids of the array, in the model's "
    'order, e.g. {"raw": ["batch", "channel", "y", "x"]}.',
    "schema": {"type": "string"},
}
_CALLS_PARAMETER: dict[str, Any] = {
    "name": CALLS_HEADER,
    "in": "header",
    "required": False,
    "description": "How many forward calls the body holds (default 1). With more than one, the "
    "arrays of call i are the members '<i>/<tensor id>.npy'; the server checks every call, then "
    "runs them one after another, each as a request of its own would, and answers their "
    "outputs laid out alike.",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_CALLS},
}
_NPZ_BODY: dict[str, Any] = {
    NPZ_MEDIA_TYPE: {
        "schema": {
            "type": "string",
            "contentMediaType": NPZ_MEDIA_TYPE,
            "description": "numpy.savez bytes: one uncompressed '<tensor id>.npy' member per "
            "tensor; numeric dtypes only, read with allow_pickle=False.",
        }
    }
}
_SHA256_PARAMETER: dict[str, Any] = {
    "name": "sha256",
    "in": "path",
    "required": True,
    "description": "sha256 of the package's bytes (64 lower-case hex digits).",
    "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
}
_COMMON_ERRORS: dict[str, Any] = {
    "400": _error("Malformed request (body, header, field types)."),
    "401": _error("Missing or wrong bearer token."),
    "413": _error("Body larger than the server accepts (--max-request-mb / --max-upload-mb)."),
    "422": _error("The request is well formed but cannot be served: invalid model, input that "
                  "does not fit the model, a weight format the server cannot run, …"),
}
_MODEL_REFERENCE: dict[str, Any] = {
    "package": {
        "type": ["string", "null"],
        "pattern": "^[0-9a-f]{64}$",
        "description": "sha256 of an uploaded package.",
    },
    "source": {
        "type": ["string", "null"],
        "description": "http(s) URL of a description or package, or an id the server resolves.",
    },
}


def openapi_document(server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI document; ``server_url`` is listed under ``servers`` when given."""
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "bioimageio-run serve",
            "version": __version__,
            "description": "Remote inference for bioimage.io models. Every endpoint but "
            "/v1/health needs 'Authorization: Bearer <token>' when the server has a token. "
            "Errors are JSON: {\"error\": {\"type\", \"message\", \"hint\", \"loc\"}}.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _SCHEMAS,
        },
        "security": [{"bearer": []}],
        "paths": _paths(),
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc


def _paths() -> dict[str, Any]:
    p = API_PREFIX
    return {
        f"{p}/health": {
            "get": {
                "summary": "Liveness (no token needed)",
                "security": [],
                "responses": {"200": _response("The server runs.", "Health")},
            }
        },
        f"{p}/info": {
            "get": {
                "summary": "Version, plugins, weight formats, devices, limits, loaded models",
                "responses": {
                    "200": _response("What the server runs.", "Info"),
                    "401": _COMMON_ERRORS["401"],
                },
            }
        },
        f"{p}/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
            }
        },
        f"{p}/packages/{{sha256}}": {
            "parameters": [_SHA256_PARAMETER],
            "head": {
                "summary": "Whether the server stores this package (check before uploading)",
                "responses": {
                    "200": {"description": "Stored."},
                    "404": {"description": "Not stored."},
                    "400": _COMMON_ERRORS["400"],
                    "401": _COMMON_ERRORS["401"],
                },
            },
            "put": {
                "summary": "Upload a package (a zip with the description and its files)",
                "requestBody": {
                    "required": True,
                    "content": {"application/zip": {"schema": {"type": "string", "contentMediaType": "application/zip"}}},
                },
                "responses": {
                    "200": _response("Already stored; nothing was read.", "Stored"),
                    "201": _response("Stored.", "Stored"),
                    **_COMMON_ERRORS,
                },
            },
        },
        f"{p}/models": {
            "get": {
                "summary": "The loaded models, least recently used first",
                "responses": {
                    "200": {
                        "description": "Loaded models.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"models": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}}},
                                }
                            }
                        },
                    },
                    "401": _COMMON_ERRORS["401"],
                },
            },
            "post": _json_call(
                "Load a model (or find it loaded); its key names it for predict",
                "ModelRequest",
                {
                    "200": _response("Loaded.", "Model"),
                    "403": _error("The model brings code and the server does not run remote code."),
                    "404": _error("Unknown package: upload it first."),
                },
            ),
        },
        f"{p}/models/{{key}}/predict": {
            "post": {
                "summary": "Forward calls (each a block or a batch of blocks)",
                "description": "Inputs after preprocessing, in the model's axis order, at sizes "
                "the model accepts; outputs before postprocessing. One forward call, or several "
                f"({CALLS_HEADER}). Calls to one model run one at a time; an evicted model is "
                "loaded again.",
                "parameters": [
                    {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}},
                    _AXES_PARAMETER,
                    _CALLS_PARAMETER,
                ],
                "requestBody": {"required": True, "content": _NPZ_BODY},
                "responses": {
                    "200": {
                        "description": f"The outputs; their axes in the {AXES_HEADER} header.",
                        "headers": {
                            AXES_HEADER: {"schema": {"type": "string"}},
                            "Server-Timing": {
                                "description": "forward;dur=<ms in the model>, "
                                "server;dur=<ms from reading the body to the answer>",
                                "schema": {"type": "string"},
                            },
                        },
                        "content": _NPZ_BODY,
                    },
                    "404": _error("Unknown model key: load the model first (POST /v1/models)."),
                    "415": _error("The body is not application/x-npz."),
                    **_COMMON_ERRORS,
                },
            }
        },
        f"{p}/test": {
            "post": _json_call(
                "Test a model on the server (reproduce its test outputs)",
                "TestRequest",
                {
                    "200": _response("The test summary (status passed or failed).", "Summary"),
                    "404": _error("Unknown package."),
                },
            )
        },
        f"{p}/validate": {
            "post": _json_call(
                "Validate a description on the server",
                "ValidateRequest",
                {
                    "200": _response("The validation summary.", "Summary"),
                    "404": _error("Unknown package."),
                },
            )
        },
    }


_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["type", "message"],
                "properties": {
                    "type": {"type": "string", "description": "e.g. InputError, UnknownModel, TooLarge"},
                    "message": {"type": "string"},
                    "hint": {"type": ["string", "null"]},
                    "loc": {"type": ["string", "null"], "description": "field path"},
                },
            }
        },
    },
    "Health": {
        "type": "object",
        "properties": {
            "status": {"const": "ok"},
            "version": {"type": "string"},
            "api_version": {"type": "string"},
        },
    },
    "Info": {
        "type": "object",
        "properties": {
            "version": {"type": "string"},
            "api_version": {"type": "string"},
            "plugins": {"type": "array", "items": {"type": "object"}},
            "weight_formats": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "unavailable": {"type": ["string", "null"], "description": "null: runs here"},
                        "priority": {"type": "integer"},
                        "install_hint": {"type": "string"},
                        "distribution": {"type": ["string", "null"]},
                    },
                },
            },
            "devices": {
                "type": "object",
                "properties": {
                    "configured": {"type": ["array", "null"], "items": {"type": "string"}},
                    "available": {"type": "object", "description": "weight format -> devices"},
                },
            },
            "limits": {"type": "object"},
            "allow_remote_code": {"type": "boolean"},
            "models": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}},
            "loads": {"type": "integer"},
            "evictions": {"type": "integer"},
            "in_flight": {"type": "integer"},
        },
    },
    "Stored": {
        "type": "object",
        "properties": {"package": {"type": "string"}, "created": {"type": "boolean"}},
    },
    "Tensor": {
        "type": "object",
        "properties": {"id": {"type": "string"}, "axes": {"type": "array", "items": {"type": "string"}}},
    },
    "Model": {
        "type": "object",
        "properties": {
            "model": {"type": "string", "description": "the key for /v1/models/{key}/predict"},
            "name": {"type": "string"},
            "weights_format": {"type": "string"},
            "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
        },
    },
    "ModelRequest": {
        "type": "object",
        "additionalProperties": False,
        "description": "Exactly one of package and source.",
        "properties": {
            **_MODEL_REFERENCE,
            "weights_format": {"type": ["string", "null"], "description": "default: the best the server runs"},
            "devices": {"type": ["array", "null"], "items": {"type": "string"}},
        },
    },
    "TestRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            **_MODEL_REFERENCE,
            "weights_format": {"type": ["string", "null"]},
            "devices": {"type": ["array", "null"], "items": {"type": "string"}},
            "stop_early": {"type": "boolean"},
        },
    },
    "ValidateRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {**_MODEL_REFERENCE, "perform_io_checks": {"type": "boolean"}},
    },
    "Summary": {
        "type": "object",
        "description": "A validation summary (as `bioimageio-run test --format json` prints it).",
        "properties": {
            "name": {"type": "string"},
            "source_name": {"type": "string"},
            "status": {"enum": ["passed", "valid-format", "failed"]},
            "details": {"type": "array", "items": {"type": "object"}},
        },
    },
}


__all__ = ["openapi_document"]
