"""Settings read from ``BIOIMAGEIO_*`` environment variables.

Settings are read when :func:`get_settings` is called, never at import time, so a test or a user
can change the environment between calls.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import attrs
import platformdirs

from bioimageio_core.errors import SettingsError

ENV_PREFIX = "BIOIMAGEIO_"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _malformed(name, raw, "a boolean (1/0, true/false, yes/no, on/off)")


def _parse_seconds(name: str, raw: str) -> float:
    """A finite number of seconds > 0 (no NaN, no infinity: a timeout must end)."""
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise _malformed(name, raw, "a number of seconds > 0 (such as 10 or 2.5)")
    return value


def _parse_bytes(name: str, raw: str) -> int:
    """A whole number of bytes > 0 (``_`` allowed between digits, as in Python)."""
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value <= 0:
        raise _malformed(name, raw, "a whole number of bytes > 0 (such as 1073741824 for 1 GiB)")
    return value


def _malformed(name: str, raw: str, expected: str) -> SettingsError:
    return SettingsError(
        f"environment variable {name} must be {expected}; got {raw!r}",
        hint=f"fix or unset {name}",
    )


@attrs.frozen
class Settings:
    """Runtime settings; see :func:`get_settings` for the environment variables."""

    cache_path: Path = attrs.field(
        factory=lambda: Path(platformdirs.user_cache_dir("bioimageio-run"))
    )
    http_timeout: float = 10.0
    http_total_timeout: float = 3600.0
    perform_io_checks: bool = True
    allow_remote_code: bool = False
    max_download_bytes: int = 8 * 1024**3
    max_yaml_bytes: int = 16 * 1024**2
    load_plugins: tuple[str, ...] | None = None
    disable_plugins: tuple[str, ...] = ()
    keras_backend: str = "torch"
    user_agent: str = "bioimageio-run"


def _names(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def get_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Return the settings from the environment (``BIOIMAGEIO_*`` variables).

    ============================== ===============================================================
    variable                       meaning
    ============================== ===============================================================
    BIOIMAGEIO_CACHE_PATH          folder for downloaded files (default: the user cache folder)
    BIOIMAGEIO_HTTP_TIMEOUT        seconds to wait for a server (default 10)
    BIOIMAGEIO_HTTP_TOTAL_TIMEOUT  seconds one download may take in all (default 3600)
    BIOIMAGEIO_PERFORM_IO_CHECKS   check that referenced files exist and match sha256 (default 1)
    BIOIMAGEIO_ALLOW_REMOTE_CODE   run code that comes with a fetched model (default 0)
    BIOIMAGEIO_MAX_DOWNLOAD_BYTES  refuse to download or unpack more than this (default 8 GiB)
    BIOIMAGEIO_MAX_YAML_BYTES      refuse to parse a description larger than this (default 16 MiB)
    BIOIMAGEIO_LOAD_PLUGINS        comma separated plugin names: load only these
    BIOIMAGEIO_DISABLE_PLUGINS     comma separated plugin names: never load these
    KERAS_BACKEND                  backend for Keras 3 models (default torch)
    ============================== ===============================================================
    """
    env = os.environ if environ is None else environ
    kwargs: dict[str, object] = {}

    def get(name: str) -> str | None:
        return env.get(ENV_PREFIX + name)

    if (raw := get("CACHE_PATH")) is not None and raw.strip():
        kwargs["cache_path"] = Path(raw).expanduser()
    if (raw := get("HTTP_TIMEOUT")) is not None:
        kwargs["http_timeout"] = _parse_seconds(ENV_PREFIX + "HTTP_TIMEOUT", raw)
    if (raw := get("HTTP_TOTAL_TIMEOUT")) is not None:
        kwargs["http_total_timeout"] = _parse_seconds(ENV_PREFIX + "HTTP_TOTAL_TIMEOUT", raw)
    if (raw := get("PERFORM_IO_CHECKS")) is not None:
        kwargs["perform_io_checks"] = _parse_bool(ENV_PREFIX + "PERFORM_IO_CHECKS", raw)
    if (raw := get("ALLOW_REMOTE_CODE")) is not None:
        kwargs["allow_remote_code"] = _parse_bool(ENV_PREFIX + "ALLOW_REMOTE_CODE", raw)
    if (raw := get("MAX_DOWNLOAD_BYTES")) is not None:
        kwargs["max_download_bytes"] = _parse_bytes(ENV_PREFIX + "MAX_DOWNLOAD_BYTES", raw)
    if (raw := get("MAX_YAML_BYTES")) is not None:
        kwargs["max_yaml_bytes"] = _parse_bytes(ENV_PREFIX + "MAX_YAML_BYTES", raw)
    if (raw := get("LOAD_PLUGINS")) is not None:
        kwargs["load_plugins"] = _names(raw)
    if (raw := get("DISABLE_PLUGINS")) is not None:
        kwargs["disable_plugins"] = _names(raw)
    if (raw := env.get("KERAS_BACKEND")) is not None and raw.strip():
        kwargs["keras_backend"] = raw.strip()
    return Settings(**kwargs)  # type: ignore[arg-type]
