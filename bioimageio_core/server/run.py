"""Run the server with uvicorn: bind, announce the address, serve until SIGTERM / Ctrl-C.

On SIGTERM or SIGINT uvicorn stops accepting connections, lets requests in flight finish (at
most ``shutdown_timeout_s``), then the app's shutdown unloads every model.
"""

from __future__ import annotations

import copy
import logging
import os
import socket
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from bioimageio_core._version import __version__
from bioimageio_core.errors import SettingsError
from bioimageio_core.remote.protocol import API_PREFIX
from bioimageio_core.server.app import create_app
from bioimageio_core.server.config import ServerConfig

log = logging.getLogger("bioimageio_core.server")

ENVIRONMENT_DEFAULTS: Mapping[str, str] = {"BIOIMAGEIO_ONNX_ALLOW_SPINNING": "0"}
"""Backend settings ``serve`` changes unless its environment sets them. onnxruntime's spinning
threads would hold the cores between forward calls, away from the event loop, the request
threads and, on one machine, the clients (docs/benchmarks.md, 8 and 17)."""


def apply_environment_defaults(environ: MutableMapping[str, str] | None = None) -> None:
    """Set each of :data:`ENVIRONMENT_DEFAULTS` that ``environ`` (the process's) lacks."""
    target = os.environ if environ is None else environ
    for name, value in ENVIRONMENT_DEFAULTS.items():
        target.setdefault(name, value)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (port 0: a free port)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise SettingsError(f"cannot resolve host {host!r}: {e}", hint="give an address such as 127.0.0.1") from None
    family, _, proto, _, address = infos[0]
    # the protocol number matters: asyncio sets TCP_NODELAY only on sockets whose proto is
    # IPPROTO_TCP, and without it a keep-alive answer stalls ~40 ms (Nagle + delayed ACK)
    sock = socket.socket(family, socket.SOCK_STREAM, proto or socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise SettingsError(
            f"cannot listen on {host}:{port}: {e.strerror or e}",
            hint="choose another --port (0 picks a free one), or stop what uses this one",
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, scheme: str = "http") -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in str(host) else str(host)
    return f"{scheme}://{shown}:{port}"


def _log_config(level: str) -> dict[str, Any]:
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["bioimageio_core.server"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def serve(
    config: ServerConfig,
    *,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> None:
    """Serve until stopped (blocks). Prints ``listening on <url>`` to standard error once the
    socket is bound."""
    sock = bind(config.check().host, config.port)
    apply_environment_defaults()
    try:
        scheme = "https" if ssl_certfile else "http"
        address = url_of(sock, scheme)
        uvicorn_config = uvicorn.Config(
            create_app(config, address),
            log_level=config.log_level,
            log_config=_log_config(config.log_level),
            access_log=config.access_log,
            timeout_graceful_shutdown=max(1, round(config.shutdown_timeout_s)),
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            server_header=False,
        )
        server = uvicorn.Server(uvicorn_config)
        print(
            f"bioimageio-run serve {__version__}: listening on {address} "
            f"(API {address}{API_PREFIX}, OpenAPI {address}{API_PREFIX}/openapi.json)",
            file=sys.stderr,
            flush=True,
        )
        server.run(sockets=[sock])
    finally:
        sock.close()
    log.info("stopped")


__all__ = ["ENVIRONMENT_DEFAULTS", "apply_environment_defaults", "bind", "serve", "url_of"]
