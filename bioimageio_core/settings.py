"""Settings read from ``BIOIMAGEIO_*`` environment variables.

Settings are read when :func:`get_settings` is called, never at import time, so a test or a user
can change the environment between calls.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import attrs
import platformdirs

ENV_PREFIX = "BIOIMAGEIO_"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"environment variable {name} must be a boolean (1/0, true/false); got {raw!r}")


@attrs.frozen
class Settings:
    """Runtime settings; see :func:`get_settings` for the environment variables."""

    cache_path: Path = attrs.field(
        factory=lambda: Path(platformdirs.user_cache_dir("bioimageio-run"))
    )
    http_timeout: float = 10.0
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
    BIOIMAGEIO_PERFORM_IO_CHECKS   check that referenced files exist and match sha256 (default 1)
    BIOIMAGEIO_ALLOW_REMOTE_CODE   run model architecture code fetched from a URL (default 0)
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
        try:
            kwargs["http_timeout"] = float(raw)
        except ValueError:
            raise ValueError(
                f"environment variable {ENV_PREFIX}HTTP_TIMEOUT must be a number of seconds; got {raw!r}"
            ) from None
    if (raw := get("PERFORM_IO_CHECKS")) is not None:
        kwargs["perform_io_checks"] = _parse_bool(ENV_PREFIX + "PERFORM_IO_CHECKS", raw)
    if (raw := get("ALLOW_REMOTE_CODE")) is not None:
        kwargs["allow_remote_code"] = _parse_bool(ENV_PREFIX + "ALLOW_REMOTE_CODE", raw)
    if (raw := get("MAX_DOWNLOAD_BYTES")) is not None:
        kwargs["max_download_bytes"] = int(raw)
    if (raw := get("MAX_YAML_BYTES")) is not None:
        kwargs["max_yaml_bytes"] = int(raw)
    if (raw := get("LOAD_PLUGINS")) is not None:
        kwargs["load_plugins"] = _names(raw)
    if (raw := get("DISABLE_PLUGINS")) is not None:
        kwargs["disable_plugins"] = _names(raw)
    if (raw := env.get("KERAS_BACKEND")) is not None and raw.strip():
        kwargs["keras_backend"] = raw.strip()
    return Settings(**kwargs)  # type: ignore[arg-type]
