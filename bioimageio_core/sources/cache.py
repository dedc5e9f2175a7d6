"""The per-user file cache: layout, atomic writes, sha256 of files, emptying.

Layout under ``Settings.cache_path`` (``BIOIMAGEIO_CACHE_PATH``)::

    downloads/<key>/<file name>   files fetched from URLs (key: hash of URL and expected sha256)
    unzipped/<key>/<member>       members extracted from zip packages (key: zip path, mtime, size)

Only these two folders are ever written or removed, so pointing the cache at a folder that holds
other data is safe.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from bioimageio_core.errors import SourceError
from bioimageio_core.settings import ENV_PREFIX, get_settings

CACHE_SUBDIRS = ("downloads", "unzipped")
_CHUNK = 1024 * 1024
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")

_hash_memo: dict[tuple[str, int, int], str] = {}
_hash_memo_lock = threading.Lock()
_HASH_MEMO_MAX = 4096


def cache_root() -> Path:
    """The cache folder from the settings (read now, not at import time)."""
    return get_settings().cache_path


def cache_dir(kind: str, key: str) -> Path:
    """``<cache>/<kind>/<key>``, created if missing."""
    if kind not in CACHE_SUBDIRS:
        raise ValueError(f"unknown cache kind {kind!r}")
    folder = cache_root() / kind / key
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SourceError(
            f"cannot create the cache folder {folder}: {e.strerror or e}",
            hint=f"set {ENV_PREFIX}CACHE_PATH to a writable folder",
        ) from None
    return folder


def cache_key(*parts: str) -> str:
    """A short, file-system safe key for the given parts."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def safe_file_name(name: str) -> str:
    """``name`` with anything but letters, digits, ``._-`` replaced; never empty or dotted."""
    cleaned = _SAFE_NAME.sub("_", name).strip(".") or "file"
    return cleaned[:200]


def sha256_of_file(path: Path) -> str:
    """The sha256 hex digest of a file, computed once per (path, mtime, size)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    with _hash_memo_lock:
        known = _hash_memo.get(key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    value = digest.hexdigest()
    with _hash_memo_lock:
        if len(_hash_memo) >= _HASH_MEMO_MAX:
            _hash_memo.clear()
        _hash_memo[key] = value
    return value


def remember_hash(path: Path, value: str) -> None:
    """Record the sha256 of a file just written, so it is not read again to hash it."""
    stat = path.stat()
    with _hash_memo_lock:
        _hash_memo[(str(path.resolve()), stat.st_mtime_ns, stat.st_size)] = value


@contextmanager
def atomic_target(final: Path) -> Iterator[IO[bytes]]:
    """Write to a temporary file next to ``final``; rename it to ``final`` only on success.

    On any exception the temporary file is removed and ``final`` is left as it was.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=".tmp-", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def normalize_sha256(value: str | None) -> str | None:
    """Lower-case hex digest, or None."""
    return value.strip().lower() if value else None


def empty_cache() -> tuple[Path, int]:
    """Remove every cached download and extracted zip member.

    Returns the cache folder and the number of bytes freed.
    """
    root = cache_root()
    freed = 0
    for kind in CACHE_SUBDIRS:
        folder = root / kind
        if not folder.is_dir():
            continue
        for file in folder.rglob("*"):
            if file.is_file() and not file.is_symlink():
                freed += file.stat().st_size
        shutil.rmtree(folder)
    with _hash_memo_lock:
        _hash_memo.clear()
    return root, freed
