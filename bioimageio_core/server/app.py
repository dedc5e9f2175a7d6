"""The ASGI application of ``bioimageio-run serve`` (Starlette).

Routes (all under ``/v1``; the OpenAPI document at ``/v1/openapi.json`` describes them):

==========================  =====================================================================
``GET  /health``            liveness, no token needed
``GET  /info``              version, plugins, weight formats, devices, limits, loaded models
``HEAD /packages/{sha256}`` whether an uploaded package is stored
``PUT  /packages/{sha256}`` upload a package (zip), kept by the sha256 of its bytes
``POST /models``            load a model (an uploaded package or a URL/id), get its key
``GET  /models``            the loaded models
``POST /models/{key}/predict``  forward calls (one, or ``Bioimageio-Calls``): ``.npz`` in and out
``POST /test``              test a model on the server, get the summary
``POST /validate``          validate a description on the server, get the summary
==========================  =====================================================================

Blocking work (loading, forward calls, tests) runs in worker threads, so requests for different
models run in parallel; forward calls to one model wait for each other (its lock).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bioimageio_core import plugins
from bioimageio_core._version import __version__
from bioimageio_core.digest import check_input_sizes
from bioimageio_core.errors import InputError, PluginError
from bioimageio_core.remote.protocol import (
    API_PREFIX,
    API_VERSION,
    ARRAY_MEDIA_TYPES,
    AXES_HEADER,
    CALLS_HEADER,
    NPZ_MEDIA_TYPE,
    SHA256,
    PayloadError,
    decode_axes,
    decode_calls,
    decode_calls_header,
    encode_axes,
    encode_calls,
    error_body,
)
from bioimageio_core.server.config import MAX_JSON_BYTES, ServerConfig
from bioimageio_core.server.errors import ApiError, from_exception
from bioimageio_core.server.loading import ModelLoader, check_devices
from bioimageio_core.server.models import LoadSpec, ModelCache, ModelEntry, UnknownModelKey
from bioimageio_core.server.openapi import openapi_document
from bioimageio_core.server.requests import (
    ModelRequest,
    TestRequest,
    ValidateRequest,
    parse_json,
)
from bioimageio_core.server.store import PackageStore
from bioimageio_core.settings import get_settings
from bioimageio_core.shapes import ModelShape

log = logging.getLogger("bioimageio_core.server")

HEALTH_PATH = f"{API_PREFIX}/health"


class ServerState:
    """Everything the routes share: settings, the package store, the loaded models."""

    def __init__(self, config: ServerConfig, url: str) -> None:
        self.config = config
        self.url = url
        self.settings = get_settings()
        self.store = PackageStore(config.store)
        self.loader = ModelLoader(self.store, config, self.settings, url)
        self.cache = ModelCache(config.max_models, self.loader.load)
        self.in_flight = 0
        self.requests = 0
        self.started = time.time()
        self.test_lock = anyio.Lock()
        self._devices: dict[str, list[str] | str] | None = None
        self._devices_lock = threading.Lock()

    def devices(self) -> dict[str, list[str] | str]:
        """Per usable weight format: the devices its backend offers (asked once; asking may
        import a framework, so the app starts asking in the background when it starts)."""
        with self._devices_lock:
            if self._devices is None:
                self._devices = self._list_devices()
            return self._devices

    def _list_devices(self) -> dict[str, list[str] | str]:
        found: dict[str, list[str] | str] = {}
        for name, spec in plugins.weight_formats(self.settings).items():
            if spec.list_devices is None or plugins.unavailable_reason(spec) is not None:
                continue
            try:
                found[name] = list(spec.list_devices())
            except Exception as e:  # a backend that cannot list its devices is reported
                found[name] = f"cannot list devices: {type(e).__name__}: {e}"
        return found


# --- authentication and bookkeeping ------------------------------------------------------------


class Guard:
    """Checks the bearer token (everything but health) and counts requests in flight.

    A plain ASGI middleware: it adds no work to the body or the response.
    """

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state
        token = state.config.token
        self._expected = None if token is None else f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._expected is not None and scope["path"] != HEALTH_PATH:
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not _token_matches(given, self._expected):
                error = ApiError(
                    401,
                    "Unauthorized",
                    "missing or wrong token" if given else "this server needs a token",
                    hint="send the header 'Authorization: Bearer <token>' (the client reads "
                    "BIOIMAGEIO_SERVER_TOKEN)",
                    headers={"WWW-Authenticate": 'Bearer realm="bioimageio-run"'},
                )
                await _error_response(error)(scope, receive, send)
                return
        self.state.in_flight += 1
        self.state.requests += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.state.in_flight -= 1


def _token_matches(given: bytes, expected: bytes) -> bool:
    """Constant-time comparison; the scheme name is case-insensitive."""
    scheme, _, rest = given.partition(b" ")
    normalized = b"Bearer " + rest.strip() if scheme.lower() == b"bearer" else given
    return hmac.compare_digest(normalized, expected)


# --- helpers -----------------------------------------------------------------------------------


def _error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


Endpoint = Callable[[Request], Awaitable[Response]]


def _answers(endpoint: Endpoint) -> Endpoint:
    """Turn every error of ``endpoint`` into a JSON answer: ours 4xx, a bug 500 (logged)."""

    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ClientDisconnect:  # the client went away mid-request: nobody reads an answer
            log.info("%s %s: the client disconnected", request.method, request.url.path)
            return Response(status_code=400)
        except Exception as e:
            error = from_exception(e)
            if error is None:
                log.exception("internal error in %s %s", request.method, request.url.path)
                return JSONResponse(
                    error_body(
                        "InternalError",
                        f"internal server error: {type(e).__name__}: {e}",
                        hint="this is a bug of the server (or its setup); its log has details",
                    ),
                    status_code=500,
                )
            if error.status >= 500:
                log.error("%s %s: %s", request.method, request.url.path, error.message)
            return _error_response(error)

    wrapped.__name__ = endpoint.__name__
    wrapped.__doc__ = endpoint.__doc__
    return wrapped


async def _read_body(request: Request, limit: int, what: str) -> bytes:
    """The request body, refusing more than ``limit`` bytes before reading them if possible."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise ApiError(400, "BadRequest", f"Content-Length {declared!r} is not a number") from None
        if length > limit:
            raise ApiError.too_large(what, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError.too_large(what, limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def _json_body(request: Request) -> Any:
    body = await _read_body(request, MAX_JSON_BYTES, "JSON body")
    try:
        return json.loads(body)
    except ValueError as e:
        raise ApiError(
            400, "BadRequest", f"the request body is not JSON ({e})", hint="send a JSON object"
        ) from None


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.server
    return state


async def _in_thread(function: Callable[..., Any], *args: Any) -> Any:
    return await anyio.to_thread.run_sync(function, *args)


# --- endpoints ---------------------------------------------------------------------------------


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok", "version": __version__, "api_version": API_VERSION})


async def info(request: Request) -> Response:
    state = _state(request)
    registry = plugins.get_registry(state.settings)
    formats: dict[str, Any] = {}
    for name, spec in registry.weight_formats.specs.items():
        formats[str(name)] = {
            "unavailable": plugins.unavailable_reason(spec),
            "priority": spec.priority,
            "install_hint": spec.install_hint,
            "distribution": registry.distribution_of("weight_format", name),
        }
    devices = await _in_thread(state.devices)
    config = state.config
    return JSONResponse(
        {
            "name": "bioimageio-run serve",
            "version": __version__,
            "api_version": API_VERSION,
            "plugins": [
                {
                    "name": p.name,
                    "distribution": p.distribution,
                    "version": p.version,
                    "status": p.status,
                    "error": p.error,
                    "weight_formats": list(p.weight_formats),
                }
                for p in registry.infos
            ],
            "weight_formats": formats,
            "devices": {
                "configured": None if config.devices is None else list(config.devices),
                "available": devices,
            },
            "limits": {
                "max_models": config.max_models,
                "max_request_bytes": config.max_request_bytes,
                "max_upload_bytes": config.max_upload_bytes,
            },
            "allow_remote_code": state.settings.allow_remote_code,
            "models": state.cache.describe(),
            "loads": state.cache.loads,
            "evictions": state.cache.evictions,
            "in_flight": state.in_flight,
            "requests": state.requests,
            "uptime_s": round(time.time() - state.started, 3),
        }
    )


def _sha256_param(request: Request) -> str:
    sha256 = str(request.path_params["sha256"])
    if not SHA256.fullmatch(sha256):
        raise ApiError(
            400,
            "BadRequest",
            f"{sha256!r} is not a sha256 (64 lower-case hex digits)",
            hint="name a package by the sha256 of its bytes",
        )
    return sha256


async def package_exists(request: Request) -> Response:
    sha256 = _sha256_param(request)
    found = _state(request).store.has(sha256)
    return Response(status_code=200 if found else 404)


async def upload_package(request: Request) -> Response:
    state = _state(request)
    sha256 = _sha256_param(request)
    if state.store.has(sha256):
        return JSONResponse({"package": sha256, "created": False}, status_code=200)
    limit = state.config.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError.too_large("package", limit)
    await state.store.receive(sha256, request.stream(), limit)
    log.info("stored package %s", sha256)
    return JSONResponse({"package": sha256, "created": True}, status_code=201)


async def load_model(request: Request) -> Response:
    state = _state(request)
    spec = _load_spec(state, parse_json(await _json_body(request), ModelRequest))
    key = state.cache.register(spec)

    def load() -> dict[str, Any]:
        with state.cache.use(key) as entry:
            return entry.describe()

    return JSONResponse(await _in_thread(load))


async def list_models(request: Request) -> Response:
    return JSONResponse({"models": _state(request).cache.describe()})


async def predict(request: Request) -> Response:
    state = _state(request)
    key = str(request.path_params["key"])
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in ARRAY_MEDIA_TYPES:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the body has content type {media_type or '(none)'!r}; expected {NPZ_MEDIA_TYPE}",
            hint="send numpy.savez bytes with Content-Type: application/x-npz",
        )
    axes = decode_axes(request.headers.get(AXES_HEADER))
    calls = decode_calls_header(request.headers.get(CALLS_HEADER))
    body = await _read_body(request, state.config.max_request_bytes, "request body")

    def run() -> tuple[bytes, str, str]:
        started = time.perf_counter()
        inputs = decode_calls(body, calls)
        try:
            with state.cache.use(key) as entry:
                for arrays in inputs:
                    _check_inputs(entry, arrays, axes)
                outputs, computing = entry.forward_calls(inputs)
                content, output_axes = _encode_outputs(entry, outputs)
                timing = (
                    f"forward;dur={computing * 1e3:.3f}, "
                    f"server;dur={(time.perf_counter() - started) * 1e3:.3f}"
                )
                return content, output_axes, timing
        except UnknownModelKey:
            raise ApiError(
                404,
                "UnknownModel",
                f"this server knows no model {key!r}",
                hint="load it first with POST /v1/models (the key is in the answer)",
            ) from None

    content, output_axes, timing = await _in_thread(run)
    return Response(
        content,
        media_type=NPZ_MEDIA_TYPE,
        headers={AXES_HEADER: output_axes, "Server-Timing": timing},
    )


def _check_inputs(
    entry: ModelEntry,
    arrays: Mapping[str, np.ndarray[Any, Any]],
    axes: Mapping[str, tuple[str, ...]],
) -> None:
    """Refuse inputs the model cannot take, with the reason (422)."""
    spec = entry.model_spec
    expected = {t.id: t.axis_ids for t in spec.inputs}
    unknown = sorted(set(arrays) - set(expected))
    if unknown:
        raise InputError(
            f"the model has no input(s) {unknown}; its inputs are {list(expected)}"
        )
    optional = {str(t.id) for t in entry.descr.inputs if getattr(t, "optional", False)}
    missing = [tid for tid in expected if tid not in arrays and tid not in optional]
    if missing:
        raise InputError(f"input(s) {missing} are missing; the model needs {list(expected)}")
    if set(axes) != set(arrays):
        raise PayloadError(
            f"the {AXES_HEADER} header names {sorted(axes)}, the body holds {sorted(arrays)}",
            hint="give the axes of every array and of nothing else",
        )
    for tid, array in arrays.items():
        if tuple(axes[tid]) != expected[tid]:
            raise InputError(
                f"input {tid!r} has axes {list(axes[tid])}, but the model takes "
                f"{list(expected[tid])} (in this order)",
                hint="transpose the array to the model's axis order",
            )
        if array.ndim != len(expected[tid]):
            raise InputError(
                f"input {tid!r} has {array.ndim} dimensions, but its axes "
                f"{list(expected[tid])} are {len(expected[tid])}"
            )
    present = ModelShape(
        inputs=tuple(t for t in spec.inputs if t.id in arrays), outputs=spec.outputs
    )
    check_input_sizes(
        present,
        {(tid, a): int(s) for tid, arr in arrays.items() for a, s in zip(expected[tid], arr.shape, strict=True)},
    )


def _encode_outputs(
    entry: ModelEntry, outputs: Sequence[Mapping[str, np.ndarray[Any, Any]]]
) -> tuple[bytes, str]:
    """The answer's body (the outputs of each forward call, laid out as the request) and axes."""
    output_axes = {t.id: t.axis_ids for t in entry.model_spec.outputs}
    for returned in outputs:
        missing = [oid for oid in output_axes if oid not in returned]
        if missing:
            raise PluginError(
                f"the {entry.weights_format} model returned no output(s) {missing} "
                f"(it returned {sorted(returned)})"
            )
    arrays = [{oid: np.asarray(returned[oid]) for oid in output_axes} for returned in outputs]
    return encode_calls(arrays), encode_axes(output_axes)


async def test_model(request: Request) -> Response:
    state = _state(request)
    parsed = parse_json(await _json_body(request), TestRequest)
    spec = _load_spec(state, parsed)
    async with state.test_lock:  # a test loads its own models: one at a time
        summary = await _in_thread(state.loader.test, spec, parsed.stop_early)
    return JSONResponse(summary)


def _load_spec(state: ServerState, parsed: ModelRequest) -> LoadSpec:
    """The model a request names, its devices and reference checked before anything loads."""
    spec = LoadSpec(
        package=parsed.package,
        source=parsed.source,
        weights_format=parsed.weights_format,
        devices=check_devices(state.config, parsed.devices),
    )
    state.loader.check_reference(spec)
    return spec


async def validate(request: Request) -> Response:
    state = _state(request)
    parsed = parse_json(await _json_body(request), ValidateRequest)
    spec = LoadSpec(package=parsed.package, source=parsed.source, weights_format=None, devices=None)
    state.loader.check_reference(spec)
    summary = await _in_thread(state.loader.validate, spec, parsed.perform_io_checks)
    return JSONResponse(summary)


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(str(request.base_url).rstrip("/")))


# --- errors outside the endpoints (unknown path, wrong method) ---------------------------------


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    names = {404: "NotFound", 405: "MethodNotAllowed"}
    hint = "see GET /v1/openapi.json for the endpoints" if exc.status_code in names else None
    return JSONResponse(
        error_body(names.get(exc.status_code, "HTTPError"), str(exc.detail), hint=hint),
        status_code=exc.status_code,
        headers=dict(exc.headers or {}),
    )


# --- the application ---------------------------------------------------------------------------


ROUTES: tuple[tuple[str, Endpoint, tuple[str, ...]], ...] = (
    ("/health", health, ("GET",)),
    ("/info", info, ("GET",)),
    ("/openapi.json", openapi, ("GET",)),
    ("/packages/{sha256}", package_exists, ("HEAD",)),
    ("/packages/{sha256}", upload_package, ("PUT",)),
    ("/models", load_model, ("POST",)),
    ("/models", list_models, ("GET",)),
    ("/models/{key}/predict", predict, ("POST",)),
    ("/test", test_model, ("POST",)),
    ("/validate", validate, ("POST",)),
)
"""(path below /v1, endpoint, methods): the one table the app and the OpenAPI test read."""


def create_app(config: ServerConfig, url: str | None = None) -> Starlette:
    """The ASGI app for ``config`` (checked); models are unloaded when it shuts down.

    ``url``: the address clients reach it at (default from ``config.host`` and ``port``).
    """
    config.check()
    state = ServerState(config, url or f"http://{config.host}:{config.port}")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.store.prepare()
        await _in_thread(plugins.get_registry, state.settings)
        threading.Thread(target=state.devices, name="list-devices", daemon=True).start()
        try:
            yield
        finally:
            log.info("shutting down: unloading %d model(s)", len(state.cache.describe()))
            await _in_thread(state.cache.close)

    routes = [
        Route(f"{API_PREFIX}{path}", _answers(endpoint), methods=list(methods))
        for path, endpoint, methods in ROUTES
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_exception},
    )
    app.state.server = state
    app.add_middleware(Guard, state=state)
    return app


__all__ = ["ROUTES", "Guard", "ServerState", "create_app"]
