"""Fetch http(s) files into the cache: streamed, size bounded, atomic, sha256 checked."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from bioimageio_core.errors import HashMismatchError, SourceError
from bioimageio_core.settings import ENV_PREFIX, get_settings
from bioimageio_core.sources.cache import (
    atomic_target,
    cache_dir,
    cache_key,
    normalize_sha256,
    remember_hash,
    safe_file_name,
    sha256_of_file,
)
from bioimageio_core.sources.roots import url_file_name

_CHUNK = 256 * 1024
_META = ".meta.json"
_PROGRESS_MIN_BYTES = 4 * 1024**2


def download(url: str, *, sha256: str | None = None, max_bytes: int | None = None) -> Path:
    """Return a local path holding the content of ``url``, fetching it into the cache if needed.

    * With ``sha256`` the cached copy is reused without any request when its digest matches; a
      download whose digest differs raises :class:`HashMismatchError` and leaves nothing behind.
    * Without ``sha256`` the server is asked again, conditionally (ETag / Last-Modified), so an
      unchanged file is not transferred twice.
    * ``max_bytes`` (default ``BIOIMAGEIO_MAX_DOWNLOAD_BYTES``) bounds the size.
    """
    settings = get_settings()
    limit = settings.max_download_bytes if max_bytes is None else max_bytes
    expected = normalize_sha256(sha256)
    folder = cache_dir("downloads", cache_key(url, expected or ""))
    target = folder / safe_file_name(url_file_name(url))
    meta_path = folder / _META

    if target.is_file():
        if expected is not None:
            if sha256_of_file(target) == expected:
                return target
            target.unlink()  # a cached copy that no longer matches is never returned
    headers = {"User-Agent": settings.user_agent}
    if expected is None and target.is_file():
        headers.update(_conditional_headers(meta_path))

    import requests  # imported here: keeps `import bioimageio_core` fast

    timeout = settings.http_timeout
    hint = (
        f"check the URL and your connection; the timeout is {timeout:g} s "
        f"(set {ENV_PREFIX}HTTP_TIMEOUT to change it)"
    )
    try:
        with requests.get(
            url, stream=True, timeout=timeout, headers=headers, allow_redirects=True
        ) as response:
            if response.status_code == 304 and target.is_file():
                return target
            if response.status_code >= 400:
                raise SourceError(
                    f"could not fetch {url}: HTTP {response.status_code} {response.reason}",
                    hint="check that the URL is right and the file is published there",
                )
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise _too_large(url, int(declared), limit)
            digest = hashlib.sha256()
            with atomic_target(target) as out, _Progress(url, declared) as progress:
                written = 0
                for chunk in response.iter_content(_CHUNK):
                    written += len(chunk)
                    if written > limit:
                        raise _too_large(url, written, limit)
                    digest.update(chunk)
                    out.write(chunk)
                    progress(len(chunk))
                actual = digest.hexdigest()
                if expected is not None and actual != expected:
                    raise HashMismatchError(url, expected, actual)
            meta = {
                "url": url,
                "etag": response.headers.get("ETag"),
                "last_modified": response.headers.get("Last-Modified"),
            }
    except requests.Timeout:
        raise SourceError(f"timed out fetching {url}", hint=hint) from None
    except requests.RequestException as e:
        raise SourceError(f"could not fetch {url}: {type(e).__name__}", hint=hint) from None
    remember_hash(target, actual)
    with atomic_target(meta_path) as out:
        out.write(json.dumps(meta).encode())
    return target


def _too_large(url: str, size: int, limit: int) -> SourceError:
    return SourceError(
        f"refusing to download {url}: more than {limit} bytes (got at least {size})",
        hint=f"raise {ENV_PREFIX}MAX_DOWNLOAD_BYTES if the file is expected to be this large",
    )


def _conditional_headers(meta_path: Path) -> dict[str, str]:
    try:
        meta: Any = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return {}
    headers: dict[str, str] = {}
    if isinstance(meta, dict):
        if isinstance(etag := meta.get("etag"), str):
            headers["If-None-Match"] = etag
        if isinstance(modified := meta.get("last_modified"), str):
            headers["If-Modified-Since"] = modified
    return headers


class _Progress:
    """A tqdm progress bar for large downloads on a terminal; a no-op otherwise."""

    def __init__(self, url: str, declared: str | None) -> None:
        total = int(declared) if declared and declared.isdigit() else None
        self._bar: Any = None
        if sys.stderr.isatty() and (total is None or total >= _PROGRESS_MIN_BYTES):
            from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]

            self._bar = tqdm(
                total=total, unit="B", unit_scale=True, desc=url_file_name(url), leave=False
            )

    def __enter__(self) -> _Progress:
        return self

    def __call__(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
