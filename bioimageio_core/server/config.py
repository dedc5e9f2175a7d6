"""The settings of one ``bioimageio-run serve`` process (command line options, checked once)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import attrs
import platformdirs

from bioimageio_core.errors import SettingsError
from bioimageio_core.remote.protocol import MIN_TOKEN_LENGTH, TOKEN_ENV

MB = 1024 * 1024
DEFAULT_PORT = 8000
DEFAULT_MAX_MODELS = 2
DEFAULT_MAX_REQUEST_MB = 512
DEFAULT_MAX_UPLOAD_MB = 4096
DEFAULT_SHUTDOWN_TIMEOUT_S = 60.0
MAX_JSON_BYTES = 1 * MB
"""Bound of a JSON request body (model references, test and validate options)."""


def default_store() -> Path:
    """Where uploaded packages are kept by default (the user's data folder, not the cache)."""
    return Path(platformdirs.user_data_dir("bioimageio-run")) / "server-packages"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


@attrs.frozen
class ServerConfig:
    """What ``serve`` was started with; :meth:`check` refuses unsafe or impossible settings."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = attrs.field(default=None, repr=False)
    devices: tuple[str, ...] | None = None
    """Devices models run on (None: each backend's default, a GPU when it finds one)."""
    max_models: int = DEFAULT_MAX_MODELS
    max_request_bytes: int = DEFAULT_MAX_REQUEST_MB * MB
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * MB
    store: Path = attrs.field(factory=default_store)
    shutdown_timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S
    """How long SIGTERM waits for requests in flight before closing connections."""
    access_log: bool = False
    log_level: str = "info"

    def check(self) -> ServerConfig:
        """Return self, or raise :class:`SettingsError` saying what to change."""
        if self.token is not None and len(self.token) < MIN_TOKEN_LENGTH:
            raise SettingsError(
                f"the server token is {len(self.token)} characters long; use at least "
                f"{MIN_TOKEN_LENGTH}",
                hint="generate one: python -c \"import secrets; print(secrets.token_urlsafe(32))\"",
            )
        if self.token is None and not is_loopback(self.host):
            raise SettingsError(
                f"refusing to listen on {self.host} without a token: anyone who reaches it could "
                "run models on this machine",
                hint=f"set {TOKEN_ENV} (or --token), or listen on 127.0.0.1 only",
            )
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"port must be between 0 and 65535 (got {self.port})")
        if self.max_models < 1:
            raise SettingsError(f"--max-models must be at least 1 (got {self.max_models})")
        if self.max_request_bytes < 1 or self.max_upload_bytes < 1:
            raise SettingsError("request size limits must be at least 1 MB")
        return self


__all__ = [
    "DEFAULT_MAX_MODELS",
    "DEFAULT_MAX_REQUEST_MB",
    "DEFAULT_MAX_UPLOAD_MB",
    "DEFAULT_PORT",
    "MAX_JSON_BYTES",
    "MB",
    "ServerConfig",
    "default_store",
    "is_loopback",
]
