"""Fetch http(s) files into the cache: streamed, size bounded, atomic, sha256 checked, and
finished within a total deadline however slowly the server sends."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bioimageio_core.errors import HashMismatchError, NetworkError, OfflineError, SourceError
from bioimageio_core.settings import ENV_PREFIX, get_settings
from bioimageio_core.sources.cache import (
    cache_dir,
    cache_error,
    cache_key,
    cache_write,
    normalize_sha256,
    remember_hash,
    safe_file_name,
    sha256_of_file,
)
from bioimageio_core.sources.roots import url_file_name

_CHUNK = 256 * 1024
_META = ".meta.json"
_PROGRESS_MIN_BYTES = 4 * 1024**2
_CANCEL_GRACE_S = 5.0
"""How long a timed-out download may take to clean up (its partial file) before we return."""

T = TypeVar("T")


def download(url: str, *, sha256: str | None = None, max_bytes: int | None = None) -> Path:
    """Return a local path holding the content of ``url``, fetching it into the cache if needed.

    * With ``sha256`` the cached copy is reused without any request when its digest matches; a
      download whose digest differs raises :class:`HashMismatchError` and leaves nothing behind.
    * Without ``sha256`` the server is asked again, conditionally (ETag / Last-Modified), so an
      unchanged file is not transferred twice.
    * ``max_bytes`` (default ``BIOIMAGEIO_MAX_DOWNLOAD_BYTES``) bounds the size.
    * ``BIOIMAGEIO_HTTP_TIMEOUT`` bounds the wait for the connection and for each read,
      ``BIOIMAGEIO_HTTP_TOTAL_TIMEOUT`` the whole transfer (a server that sends one byte a second
      fails after that deadline; nothing is left in the cache).
    * Offline (``BIOIMAGEIO_OFFLINE=1``) nothing is requested: the cached copy is returned (a
      pinned one only if its digest matches), else :class:`OfflineError` names the URL.

    A server that cannot be reached or does not answer in time (connection error, timeouts, HTTP
    5xx) raises :class:`NetworkError`, unless an unpinned file is cached: that copy is returned
    with a warning.
    """
    settings = get_settings()
    limit = settings.max_download_bytes if max_bytes is None else max_bytes
    expected = normalize_sha256(sha256)
    folder = cache_dir("downloads", cache_key(url, expected or ""))
    target = folder / safe_file_name(url_file_name(url))
    meta_path = folder / _META

    try:
        if target.is_file() and expected is not None:
            if sha256_of_file(target) == expected:
                return target
            target.unlink()  # a cached copy that no longer matches is never returned
    except OSError as e:
        raise cache_error(e, target, "reading") from None
    if settings.offline:
        if target.is_file():
            return target
        raise OfflineError(f"offline: {url} is not in the cache", missing=url)
    headers = {"User-Agent": settings.user_agent}
    if expected is None and target.is_file():
        headers.update(_conditional_headers(meta_path, target))

    import requests  # imported here: keeps `import bioimageio_core` fast

    timeout = settings.http_timeout
    total = settings.http_total_timeout
    hint = (
        f"check the URL and your connection; the timeout is {timeout:g} s per read and "
        f"{total:g} s in all (set {ENV_PREFIX}HTTP_TIMEOUT / {ENV_PREFIX}HTTP_TOTAL_TIMEOUT "
        "to change them)"
    )
    transfer = _Transfer()

    def fetch() -> tuple[str, dict[str, Any]] | None:
        with requests.get(
            url, stream=True, timeout=timeout, headers=headers, allow_redirects=True
        ) as response:
            transfer.response = response
            transfer.check()
            if response.status_code == 304 and target.is_file():
                return None
            if response.status_code >= 500:  # the server cannot answer now
                raise NetworkError(
                    f"could not fetch {url}: HTTP {response.status_code} {response.reason}",
                    hint=hint,
                )
            if response.status_code >= 400:
                raise SourceError(
                    f"could not fetch {url}: HTTP {response.status_code} {response.reason}",
                    hint="check that the URL is right and the file is published there",
                )
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise _too_large(url, int(declared), limit)
            digest = hashlib.sha256()
            with cache_write(target) as out, _Progress(url, declared) as progress:
                written = 0
                for chunk in response.iter_content(_CHUNK):
                    transfer.check()
                    written += len(chunk)
                    if written > limit:
                        raise _too_large(url, written, limit)
                    digest.update(chunk)
                    out.write(chunk)
                    progress(len(chunk))
                transfer.check()
                actual = digest.hexdigest()
                if expected is not None and actual != expected:
                    raise HashMismatchError(url, expected, actual)
            meta = {
                "url": url,
                "sha256": actual,
                "etag": response.headers.get("ETag"),
                "last_modified": response.headers.get("Last-Modified"),
            }
            return actual, meta

    try:
        result = transfer.run(fetch, total)
    except _Cancelled:
        return _stale_copy(target, expected, _deadline_error(url, total, hint))
    except NetworkError as e:  # HTTP 5xx
        return _stale_copy(target, expected, e)
    except requests.Timeout:
        return _stale_copy(target, expected, NetworkError(f"timed out fetching {url}", hint=hint))
    except requests.RequestException as e:
        if transfer.cancelled.is_set():
            return _stale_copy(target, expected, _deadline_error(url, total, hint))
        error = NetworkError(f"could not fetch {url}: {type(e).__name__}", hint=hint)
        return _stale_copy(target, expected, error)
    if result is None:
        return target
    actual, meta = result
    try:
        remember_hash(target, actual)
        with cache_write(meta_path) as out:
            out.write(json.dumps(meta).encode())
    except OSError as e:
        raise cache_error(e, target, "writing") from None
    return target


def _deadline_error(url: str, total: float, hint: str) -> NetworkError:
    return NetworkError(f"timed out fetching {url}: not complete after {total:g} s", hint=hint)


def _stale_copy(target: Path, expected: str | None, error: NetworkError) -> Path:
    """The cached copy of an unpinned file when its server cannot be reached (with a warning);
    otherwise raise ``error``."""
    if expected is None and target.is_file():
        warnings.warn(f"{error.message}; using the copy cached earlier", stacklevel=3)
        return target
    raise error from None


class _Cancelled(Exception):
    """The total deadline passed (raised in the transfer thread, reported by the caller)."""


class _Transfer:
    """Runs one fetch in a worker thread so that a total deadline holds in every phase.

    At the deadline the response's socket is shut down (which ends a blocking read at once)
    and the worker, checking :attr:`cancelled` between reads, stops and removes its partial
    file. A server that stalls before sending its headers keeps the daemon worker waiting
    (bounded by the per-read timeout per byte), but the caller gets its error in time.
    """

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.response: Any = None

    def check(self) -> None:
        if self.cancelled.is_set():
            raise _Cancelled()

    def run(self, work: Callable[[], T], total: float) -> T:
        outcome: list[Any] = []
        done = threading.Event()

        def target() -> None:
            try:
                outcome.append((True, work()))
            except BaseException as e:  # handed to the caller
                outcome.append((False, e))
            finally:
                done.set()

        worker = threading.Thread(target=target, name="bioimageio-download", daemon=True)
        worker.start()
        try:
            finished = done.wait(total)
        except BaseException:  # KeyboardInterrupt: stop the transfer as well
            self._cancel()
            raise
        if not finished:
            self._cancel()
            if self.response is not None:  # the shut-down read ends at once: let it clean up
                done.wait(_CANCEL_GRACE_S)
            raise _Cancelled()
        ok, value = outcome[0]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def _cancel(self) -> None:
        self.cancelled.set()
        raw = getattr(self.response, "raw", None)
        shutdown = getattr(raw, "shutdown", None)
        try:
            if callable(shutdown):
                shutdown()  # urllib3 >= 2.3: ends a blocking read from another thread
            elif raw is not None:
                raw.close()
        except Exception:
            pass  # already closed or released


def _too_large(url: str, size: int, limit: int) -> SourceError:
    return SourceError(
        f"refusing to download {url}: more than {limit} bytes (got at least {size})",
        hint=f"raise {ENV_PREFIX}MAX_DOWNLOAD_BYTES if the file is expected to be this large",
    )


def _conditional_headers(meta_path: Path, target: Path) -> dict[str, str]:
    """If-None-Match / If-Modified-Since for the cached copy ``target``; none (so the file is
    fetched again) when the copy no longer has the sha256 recorded when it was downloaded."""
    try:
        meta: Any = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return {}
    headers: dict[str, str] = {}
    if isinstance(meta, dict):
        recorded = meta.get("sha256")
        try:
            if isinstance(recorded, str) and sha256_of_file(target) != recorded:
                return {}  # damaged since: ask for the whole file
        except OSError:
            return {}
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


_HEAD_REFUSED = (403, 405, 501)
"""Answers to HEAD after which a ranged GET is tried (servers that do not allow HEAD)."""


def check_url(url: str) -> str:
    """Check that ``url`` can be fetched without downloading it; returns how it was checked.

    A HEAD request; when the server refuses HEAD, a GET of the first byte only (``Range:
    bytes=0-0``, the connection is closed before any further content is read). The timeouts of
    :func:`download` apply (per read and in all).

    Offline (``BIOIMAGEIO_OFFLINE=1``) nothing is requested: "in the cache (offline)" or "not
    looked up (offline)".

    Raises:
        SourceError: the server answers with an error status or cannot be reached in time.
    """
    import requests

    settings = get_settings()
    if settings.offline:  # no request: a copy in the cache counts, else it stays unchecked
        folder = settings.cache_path / "downloads" / cache_key(url, "")
        cached = folder / safe_file_name(url_file_name(url))
        return "in the cache (offline)" if cached.is_file() else "not looked up (offline)"
    headers = {"User-Agent": settings.user_agent}
    timeout, total = settings.http_timeout, settings.http_total_timeout
    hint = (
        f"check the URL and your connection; the timeout is {timeout:g} s per read and "
        f"{total:g} s in all (set {ENV_PREFIX}HTTP_TIMEOUT / {ENV_PREFIX}HTTP_TOTAL_TIMEOUT "
        "to change them)"
    )
    transfer = _Transfer()

    def probe() -> tuple[int, str, str | None]:
        with requests.head(url, timeout=timeout, headers=headers, allow_redirects=True) as head:
            if head.status_code < 400:
                return head.status_code, head.reason, "HEAD request"
            if head.status_code not in _HEAD_REFUSED:
                return head.status_code, head.reason, None
        transfer.check()
        ranged = {**headers, "Range": "bytes=0-0"}
        with requests.get(
            url, stream=True, timeout=timeout, headers=ranged, allow_redirects=True
        ) as response:
            transfer.response = response
            ok = response.status_code < 400
            return response.status_code, response.reason, "GET of the first byte" if ok else None

    try:
        status, reason, how = transfer.run(probe, total)
    except _Cancelled:
        raise SourceError(f"timed out checking {url}: no answer after {total:g} s", hint=hint) from None
    except requests.Timeout:
        raise SourceError(f"timed out checking {url}", hint=hint) from None
    except requests.RequestException as e:
        raise SourceError(f"could not reach {url}: {type(e).__name__}", hint=hint) from None
    if how is not None:
        return how
    raise SourceError(
        f"{url} cannot be fetched: HTTP {status} {reason}",
        hint="check that the URL is right and the file is published there",
    )
