"""Settings read from ``BIOIMAGEIO_*`` environment variables.

Settings are read when :func:`get_settings` is called, never at import time, so a test or a user
can change the environment between calls.
"""

from __future__ import annotations

import math
import os
import string
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

import attrs
import platformdirs

from bioimageio_core.errors import SettingsError

ENV_PREFIX = "BIOIMAGEIO_"

DEFAULT_COLLECTION_HTTP_PATTERN = (
    "https://hypha.aicell.io/bioimage-io/artifacts/{bioimageio_id}/files/rdf.yaml"
)
DEFAULT_ID_MAP = "https://uk1s3.embassy.ebi.ac.uk/public-datasets/bioimage.io/id_map.json"
DEFAULT_ID_MAP_DRAFT = (
    "https://uk1s3.embassy.ebi.ac.uk/public-datasets/bioimage.io/id_map_draft.json"
)
DEFAULT_HUGGINGFACE_HTTP_PATTERN = (
    "https://huggingface.co/{repo_id}/resolve/{branch}/package/bioimageio.yaml"
)

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
    remote_request_bytes: int = 4 * 1024**2
    """Input bytes of consecutive forward calls a ``remote`` adapter sends in one request."""
    load_plugins: tuple[str, ...] | None = None
    disable_plugins: tuple[str, ...] = ()
    keras_backend: str = "torch"
    user_agent: str = "bioimageio-run"
    offline: bool = False
    collection_http_pattern: str = DEFAULT_COLLECTION_HTTP_PATTERN
    id_map: str = DEFAULT_ID_MAP
    id_map_draft: str = DEFAULT_ID_MAP_DRAFT
    resolve_draft: bool = True
    huggingface_http_pattern: str = DEFAULT_HUGGINGFACE_HTTP_PATTERN
    server_token: str | None = attrs.field(default=None, repr=False)
    """Bearer token of ``bioimageio-run serve`` (the server's and its clients'); never shown."""


def _url_setting(
    name: str, raw: str, example: str, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()
) -> str:
    """An http(s) URL (template) using the ``{fields}`` ``required`` and maybe ``optional``;
    empty disables it. Errors name the variable and show the default."""
    value = raw.strip()
    if not value:
        return ""
    variable = ENV_PREFIX + name
    split = urlsplit(value)
    if split.scheme not in ("http", "https") or not split.netloc:
        raise _malformed_url(variable, raw, "an http(s) URL, or empty to disable it", example)
    try:
        found = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
    except ValueError as e:
        raise _malformed_url(variable, raw, f"a valid URL template ({e})", example) from None
    missing = set(required) - found
    unknown = found - set(required) - set(optional)
    if missing:
        fields = ", ".join("{" + f + "}" for f in sorted(missing))
        raise _malformed_url(variable, raw, f"a URL that contains {fields}", example)
    if unknown:
        fields = ", ".join("{" + f + "}" for f in (*required, *optional)) or "no fields"
        raise _malformed_url(variable, raw, f"a URL that uses only {fields}", example)
    return value


def _malformed_url(variable: str, raw: str, expected: str, example: str) -> SettingsError:
    return SettingsError(
        f"environment variable {variable} must be {expected}; got {raw!r}",
        hint=f"fix or unset {variable} (default: {example})",
    )


def _names(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


_PARSED: dict[str, Callable[[str, str], object]] = {
    "HTTP_TIMEOUT": _parse_seconds,
    "HTTP_TOTAL_TIMEOUT": _parse_seconds,
    "PERFORM_IO_CHECKS": _parse_bool,
    "ALLOW_REMOTE_CODE": _parse_bool,
    "MAX_DOWNLOAD_BYTES": _parse_bytes,
    "MAX_YAML_BYTES": _parse_bytes,
    "REMOTE_REQUEST_BYTES": _parse_bytes,
}
"""Variables (without the prefix) read by a parser into the setting of the same name, lower case."""


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
    BIOIMAGEIO_REMOTE_REQUEST_BYTES  input bytes of consecutive forward calls that prediction
                                   with ``--server`` sends in one request (default 4 MiB)
    BIOIMAGEIO_LOAD_PLUGINS        comma separated plugin names: load only these
    BIOIMAGEIO_DISABLE_PLUGINS     comma separated plugin names: never load these
    BIOIMAGEIO_OFFLINE             never use the network; serve everything from the cache (default 0)
    BIOIMAGEIO_COLLECTION_HTTP_PATTERN  URL of a bioimage.io id's latest description, with
                                   ``{bioimageio_id}``; empty disables this lookup
    BIOIMAGEIO_ID_MAP              URL of the id map (id, version or DOI -> source, sha256)
    BIOIMAGEIO_ID_MAP_DRAFT        URL of the id map of drafts (``<id>/draft``)
    BIOIMAGEIO_RESOLVE_DRAFT       look ids up in the draft id map too (default 1)
    BIOIMAGEIO_HUGGINGFACE_HTTP_PATTERN  URL of ``huggingface/<user>/<repo>[/<version>]``
                                   descriptions, with ``{repo_id}`` and ``{branch}``
    BIOIMAGEIO_USER_AGENT          User-Agent header of downloads (default bioimageio-run)
    KERAS_BACKEND                  backend for Keras 3 models (default torch)
    BIOIMAGEIO_SERVER_TOKEN        token of a prediction server (`serve`, `predict --server`)
    ============================== ===============================================================
    """
    env = os.environ if environ is None else environ
    kwargs: dict[str, object] = {}

    def get(name: str) -> str | None:
        return env.get(ENV_PREFIX + name)

    if (raw := get("CACHE_PATH")) is not None and raw.strip():
        kwargs["cache_path"] = Path(raw).expanduser()
    for name, parse in _PARSED.items():
        if (raw := get(name)) is not None:
            kwargs[name.lower()] = parse(ENV_PREFIX + name, raw)
    if (raw := get("LOAD_PLUGINS")) is not None:
        kwargs["load_plugins"] = _names(raw)
    if (raw := get("DISABLE_PLUGINS")) is not None:
        kwargs["disable_plugins"] = _names(raw)
    if (raw := get("OFFLINE")) is not None:
        kwargs["offline"] = _parse_bool(ENV_PREFIX + "OFFLINE", raw)
    if (raw := get("COLLECTION_HTTP_PATTERN")) is not None:
        kwargs["collection_http_pattern"] = _url_setting(
            "COLLECTION_HTTP_PATTERN", raw, DEFAULT_COLLECTION_HTTP_PATTERN, ("bioimageio_id",)
        )
    if (raw := get("ID_MAP")) is not None:
        kwargs["id_map"] = _url_setting("ID_MAP", raw, DEFAULT_ID_MAP)
    if (raw := get("ID_MAP_DRAFT")) is not None:
        kwargs["id_map_draft"] = _url_setting("ID_MAP_DRAFT", raw, DEFAULT_ID_MAP_DRAFT)
    if (raw := get("RESOLVE_DRAFT")) is not None:
        kwargs["resolve_draft"] = _parse_bool(ENV_PREFIX + "RESOLVE_DRAFT", raw)
    if (raw := get("HUGGINGFACE_HTTP_PATTERN")) is not None:
        kwargs["huggingface_http_pattern"] = _url_setting(
            "HUGGINGFACE_HTTP_PATTERN",
            raw,
            DEFAULT_HUGGINGFACE_HTTP_PATTERN,
            required=("repo_id",),
            optional=("branch",),
        )
    if (raw := get("USER_AGENT")) is not None and raw.strip():
        kwargs["user_agent"] = raw.strip()
    if (raw := get("SERVER_TOKEN")) is not None and raw.strip():
        kwargs["server_token"] = raw.strip()
    if (raw := env.get("KERAS_BACKEND")) is not None and raw.strip():
        kwargs["keras_backend"] = raw.strip()
    return Settings(**kwargs)  # type: ignore[arg-type]
