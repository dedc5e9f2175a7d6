"""HTTP client of ``bioimageio-run serve``: keep-alive connections, bearer token, retries with
backoff.

Only the standard library's ``http.client`` is used (:mod:`bioimageio_core.remote.transport`:
one persistent connection per thread, the fixed cost per forward call kept small). Every
failure becomes one of our errors with a message a user can act on:
:class:`~bioimageio_core.errors.ServerError` for an unreachable server, a refused token or an
answer outside the wire format; the server's own errors keep their kind where the core has it
(``InputError``, ``PluginError``, ``SourceError`` …).
"""

from __future__ import annotations

import http.client
import json as json_lib
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import attrs
import numpy as np

from bioimageio_core import errors
from bioimageio_core._closing import Closing
from bioimageio_core.errors import BioimageioError, ServerError
from bioimageio_core.references import is_http_url
from bioimageio_core.remote.protocol import (
    API_PREFIX,
    API_VERSION,
    AXES_HEADER,
    CALLS_HEADER,
    MAX_CALLS,
    NPZ_MEDIA_TYPE,
    TOKEN_ENV,
    PayloadError,
    decode_axes,
    decode_calls,
    encode_axes,
    encode_calls,
)
from bioimageio_core.remote.transport import (
    ConnectFailed,
    Connections,
    Dropped,
    ReadTimeout,
    Response,
)
from bioimageio_core.settings import Settings, get_settings
from bioimageio_core.sources.cache import sha256_of_file

DEFAULT_RETRIES = 4
DEFAULT_BACKOFF_S = 0.25
MAX_BACKOFF_S = 4.0

Body = bytes | Callable[[], "IO[bytes] | bytes"] | None
"""A request body: bytes, or a function giving a fresh body per attempt (a file from its start)."""

_KEPT_TYPES: dict[str, type[BioimageioError]] = {
    "InputError": errors.InputError,
    "PayloadError": errors.InputError,
    "PluginError": errors.PluginError,
    "UnsupportedWeightFormatError": errors.UnsupportedWeightFormatError,
    "SourceError": errors.SourceError,
    "HashMismatchError": errors.SourceError,
}
"""Server error types raised on the client as the same kind of core error."""


class UnknownModelError(ServerError):
    """The server does not know the model key (it restarted, or the key is wrong)."""


@attrs.frozen
class ModelRef:
    """How the server finds a model: an uploaded package (its sha256) or a source it resolves
    itself (an http(s) URL or a bioimage.io id)."""

    package: str | None = None
    source: str | None = None

    def to_json(self) -> dict[str, str]:
        return {"package": self.package} if self.package is not None else {"source": str(self.source)}

    def __str__(self) -> str:
        return f"package {self.package}" if self.package is not None else str(self.source)


@attrs.frozen
class RemoteWeightFormat:
    """One weight format as the server reports it."""

    name: str
    reason: str | None
    """None when the server can run it, else why not."""
    priority: int = 100
    install_hint: str = ""
    distribution: str | None = None


@attrs.frozen
class ServerInfo:
    """``GET /v1/info``: what the server runs."""

    url: str
    version: str
    weight_formats: Mapping[str, RemoteWeightFormat]
    devices: Mapping[str, Any]
    raw: Mapping[str, Any]

    def runnable(self) -> list[str]:
        """The weight formats the server can run, by priority."""
        usable = [f for f in self.weight_formats.values() if f.reason is None]
        return [f.name for f in sorted(usable, key=lambda f: (f.priority, f.name))]


@attrs.frozen
class RemoteModel:
    """A model the server has loaded (``POST /v1/models``)."""

    key: str
    weights_format: str
    name: str
    inputs: Mapping[str, tuple[str, ...]]
    """Input tensor id -> axis ids, in description order."""
    outputs: Mapping[str, tuple[str, ...]]


def normalize_server_url(url: str) -> str:
    """``url`` without trailing slashes; refuses anything but an http(s) URL."""
    text = url.strip().rstrip("/")
    if not is_http_url(text):
        raise errors.InputError(
            f"{url!r} is not the URL of a server",
            hint="give it as http://HOST:PORT (the address `bioimageio-run serve` prints)",
        )
    return text


class ServerClient(Closing):
    """Talks to one server. Use as a context manager (or call :meth:`close`).

    ``token`` defaults to ``BIOIMAGEIO_SERVER_TOKEN``. Requests that fail to connect (refused,
    reset, DNS) are retried ``retries`` times, waiting ``backoff_s``, twice that, … (at most
    4 s); so is a 503 answer (a server starting or stopping). Every request is idempotent. A
    kept-alive connection the server closed while idle is replaced at once (no retry counted).
    Safe to use from several threads (each has its own connection).
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        settings: Settings | None = None,
        retries: int = DEFAULT_RETRIES,
        backoff_s: float = DEFAULT_BACKOFF_S,
    ) -> None:
        self.url = normalize_server_url(url)
        self.settings = settings or get_settings()
        self.token = token if token is not None else self.settings.server_token
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        self.max_request_bytes: int | None = None
        """The server's bound on a request body (known after :meth:`info`)."""
        self.last_timing: dict[str, float] = {}
        """Milliseconds the server reported for the last forward call (``Server-Timing``:
        ``forward`` in the model, ``server`` from reading the body to the answer)."""
        self._headers = {"User-Agent": self.settings.user_agent}
        if self.token:
            self._headers["Authorization"] = f"Bearer {self.token}"
        self._connections = Connections(
            self.url,
            connect_timeout_s=self.settings.http_timeout,
            read_timeout_s=self.settings.http_total_timeout,
        )

    def close(self) -> None:
        """Close every connection (a later request opens a new one)."""
        self._connections.close()

    # --- endpoints ------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /v1/health`` (no token needed)."""
        return self._json(self._request("GET", "/health"))

    def info(self) -> ServerInfo:
        """``GET /v1/info``; checks that the server speaks this client's API version."""
        data = self._json(self._request("GET", "/info"))
        if data.get("api_version") != API_VERSION:
            raise ServerError(
                f"the server at {self.url} speaks API {data.get('api_version')!r}, this client "
                f"{API_VERSION!r}",
                hint="use the same bioimageio-run version on both sides",
            )
        limit = (data.get("limits") or {}).get("max_request_bytes")
        self.max_request_bytes = int(limit) if isinstance(limit, int) else None
        formats = {
            name: RemoteWeightFormat(
                name=name,
                reason=entry.get("unavailable"),
                priority=int(entry.get("priority", 100)),
                install_hint=str(entry.get("install_hint") or ""),
                distribution=entry.get("distribution"),
            )
            for name, entry in (data.get("weight_formats") or {}).items()
        }
        return ServerInfo(
            url=self.url,
            version=str(data.get("version")),
            weight_formats=formats,
            devices=dict(data.get("devices") or {}),
            raw=data,
        )

    def has_package(self, sha256: str) -> bool:
        """``HEAD /v1/packages/{sha256}``: whether the server stores this package."""
        response = self._request("HEAD", f"/packages/{sha256}", ok=(200, 404))
        return response.status_code == 200

    def upload_package(self, path: Path, sha256: str) -> None:
        """``PUT /v1/packages/{sha256}`` with the zip at ``path`` (streamed)."""

        def body() -> IO[bytes]:
            handle = path.open("rb")
            opened.append(handle)
            return handle

        opened: list[IO[bytes]] = []
        try:
            self._request(
                "PUT",
                f"/packages/{sha256}",
                body=body,
                headers={
                    "Content-Type": "application/zip",
                    "Content-Length": str(path.stat().st_size),
                },
                ok=(200, 201),
            )
        finally:
            for handle in opened:
                handle.close()

    def ensure_package(self, path: Path) -> str:
        """Upload the package at ``path`` unless the server has it already; its sha256."""
        sha256 = sha256_of_file(path)
        if not self.has_package(sha256):
            self.upload_package(path, sha256)
        return sha256

    def load_model(
        self,
        ref: ModelRef,
        *,
        weights_format: str | None = None,
        devices: Sequence[str] | None = None,
    ) -> RemoteModel:
        """``POST /v1/models``: the server loads the model (or finds it loaded)."""
        payload: dict[str, Any] = {**ref.to_json(), "weights_format": weights_format}
        if devices:
            payload["devices"] = list(devices)
        data = self._json(self._request("POST", "/models", json=payload))
        try:
            return RemoteModel(
                key=str(data["model"]),
                weights_format=str(data["weights_format"]),
                name=str(data.get("name", "")),
                inputs={t["id"]: tuple(t["axes"]) for t in data["inputs"]},
                outputs={t["id"]: tuple(t["axes"]) for t in data["outputs"]},
            )
        except (KeyError, TypeError) as e:
            raise self._unexpected(f"its model description lacks {e}") from None

    def predict(
        self,
        key: str,
        arrays: Mapping[str, np.ndarray[Any, Any]],
        axes: Mapping[str, Sequence[str]],
    ) -> dict[str, np.ndarray[Any, Any]]:
        """``POST /v1/models/{key}/predict``: one forward call on the server."""
        return self.predict_calls(key, [arrays], axes)[0]

    def predict_calls(
        self,
        key: str,
        calls: Sequence[Mapping[str, np.ndarray[Any, Any]]],
        axes: Mapping[str, Sequence[str]],
    ) -> list[dict[str, np.ndarray[Any, Any]]]:
        """``POST /v1/models/{key}/predict`` with several forward calls in one request: the
        server runs them one after another, each as :meth:`predict` would; their outputs in
        order. Calls that do not fit in one request (the server's limits) go in several."""
        if len(calls) > MAX_CALLS:
            return self.predict_calls(key, calls[:MAX_CALLS], axes) + self.predict_calls(
                key, calls[MAX_CALLS:], axes
            )
        body = encode_calls(calls)
        if self.max_request_bytes is not None and len(body) > self.max_request_bytes:
            if len(calls) > 1:  # in two requests
                half = len(calls) // 2
                return self.predict_calls(key, calls[:half], axes) + self.predict_calls(
                    key, calls[half:], axes
                )
            raise errors.InputError(
                f"one forward call would send {len(body) / 2**20:.1f} MB, but the server at "
                f"{self.url} accepts at most {self.max_request_bytes / 2**20:.1f} MB per request",
                hint="predict blockwise with smaller blocks (--blocksize) or fewer per call "
                "(--batch-size), or start the server with a larger --max-request-mb",
            )
        headers = {"Content-Type": NPZ_MEDIA_TYPE, AXES_HEADER: encode_axes(axes)}
        if len(calls) > 1:
            headers[CALLS_HEADER] = str(len(calls))
        response = self._request("POST", f"/models/{key}/predict", body=body, headers=headers)
        self.last_timing = _server_timing(response.headers.get("Server-Timing", ""))
        try:
            decode_axes(response.headers.get(AXES_HEADER))
            return decode_calls(response.content, len(calls), what="server's answer")
        except PayloadError as e:
            raise self._unexpected(e.message) from None

    def test(self, ref: ModelRef, **options: Any) -> dict[str, Any]:
        """``POST /v1/test``: the server tests the model; the summary as JSON."""
        payload = {**ref.to_json(), **{k: v for k, v in options.items() if v is not None}}
        return self._json(self._request("POST", "/test", json=payload))

    def validate(self, ref: ModelRef, *, perform_io_checks: bool = True) -> dict[str, Any]:
        """``POST /v1/validate``: the server validates the description; the summary as JSON."""
        payload = {**ref.to_json(), "perform_io_checks": perform_io_checks}
        return self._json(self._request("POST", "/validate", json=payload))

    # --- transport ------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        body: Body = None,
        headers: Mapping[str, str] | None = None,
        ok: Sequence[int] = (200,),
    ) -> Response:
        sent = dict(self._headers)
        if json is not None:
            body = json_lib.dumps(json, separators=(",", ":")).encode()
            sent["Content-Type"] = "application/json"
        if headers:
            sent.update(headers)
        full = f"{API_PREFIX}{path}"
        attempt = 0
        while True:
            data = body() if callable(body) else body
            try:
                response = self._connections.request(method, full, body=data, headers=sent)
            except Dropped as e:
                if e.reused:
                    continue  # an idle connection the server closed: a fresh one, at once
                if attempt >= self.retries:
                    raise self._unreachable(attempt, _reason(e.reason)) from None
            except ConnectFailed as e:
                if attempt >= self.retries:
                    raise self._unreachable(attempt, str(e)) from None
            except ReadTimeout:
                raise ServerError(
                    f"the server at {self.url} did not answer {method} {path} within "
                    f"{self.settings.http_total_timeout:g} s",
                    hint="raise BIOIMAGEIO_HTTP_TOTAL_TIMEOUT, or send smaller blocks",
                ) from None
            except http.client.HTTPException as e:
                raise ServerError(
                    f"request to {self.url}{full} failed: {type(e).__name__}: {e}",
                    hint="is it a `bioimageio-run serve` server?",
                ) from None
            else:
                if response.status_code in ok:
                    return response
                if response.status_code != 503 or attempt >= self.retries:
                    raise self._error(response)
            time.sleep(min(MAX_BACKOFF_S, self.backoff_s * 2**attempt))
            attempt += 1

    def _unreachable(self, attempt: int, reason: str) -> ServerError:
        return ServerError(
            f"cannot reach the server at {self.url} ({attempt + 1} tries): {reason}",
            hint="check the URL and that `bioimageio-run serve` runs there",
        )

    def _json(self, response: Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            raise self._unexpected("its answer is not JSON") from None
        if not isinstance(data, dict):
            raise self._unexpected("its answer is not a JSON object")
        return data

    def _unexpected(self, what: str) -> ServerError:
        return ServerError(
            f"the server at {self.url} answered something unexpected: {what}",
            hint="is it a `bioimageio-run serve` server of the same version as this client?",
        )

    def _error(self, response: Response) -> BioimageioError:
        status = response.status_code
        try:
            detail = response.json()["error"]
            type_ = str(detail.get("type") or "")
            message = str(detail.get("message") or "")
            hint = detail.get("hint")
            loc = detail.get("loc")
        except (ValueError, KeyError, TypeError, AttributeError):
            type_, message, hint, loc = "", response.text[:500].strip(), None, None
        if status == 401:
            if not self.token:
                return ServerError(
                    f"the server at {self.url} needs a token",
                    status=status,
                    hint=f"set {TOKEN_ENV} to the token the server was started with",
                )
            return ServerError(
                f"the server at {self.url} refused the token",
                status=status,
                hint=f"set {TOKEN_ENV} to the token the server was started with",
            )
        text = f"{message or f'HTTP {status}'} (server {self.url})"
        if status == 404 and type_ == "UnknownModel":
            return UnknownModelError(text, status=status, hint=hint)
        kept = _KEPT_TYPES.get(type_)
        if kept is not None and 400 <= status < 500:
            return kept(text, loc=loc, hint=hint)
        return ServerError(text, status=status, loc=loc, hint=hint)


def _server_timing(header: str) -> dict[str, float]:
    """``{"forward": 12.5, …}`` from a ``Server-Timing`` header (unparsable parts left out)."""
    timing: dict[str, float] = {}
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "dur":
                try:
                    timing[name.strip()] = float(value)
                except ValueError:
                    pass
    return timing


def _reason(error: BaseException) -> str:
    """The innermost reason of a connection error, in one line."""
    cause: BaseException = error
    while cause.__context__ is not None and not isinstance(cause, OSError):
        cause = cause.__context__
    text = " ".join(str(cause).split())
    if "Connection refused" in text or isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    return text or type(error).__name__


__all__ = [
    "DEFAULT_BACKOFF_S",
    "DEFAULT_RETRIES",
    "ModelRef",
    "RemoteModel",
    "RemoteWeightFormat",
    "ServerClient",
    "ServerInfo",
    "UnknownModelError",
    "normalize_server_url",
]
