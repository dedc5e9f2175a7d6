"""The per-user file cache: layout, atomic writes, sha256 of files, emptying.

Layout under ``Settings.cache_path`` (``BIOIMAGEIO_CACHE_PATH``)::

    downloads/<key>/<file name>   files fetched from URLs (key: hash of URL and expected sha256)
    unzipped/<sha256>/<member>    members extracted from zip packages (key: sha256 of the zip)
    resolved/<key>/record.json    what a source id resolved to (URL, sha256), for use offline

Only these three folders (and, while ``empty_cache`` runs, ``.<folder>.deleting-*`` next to
them) are ever written or removed, so pointing the cache at a folder that holds other data is
safe. Files are written under ``.tmp-*.part`` names and renamed into place when complete; parts
left by a killed process are removed once they are stale.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from bioimageio_core.errors import BioimageioError, SourceError
from bioimageio_core.settings import ENV_PREFIX, get_settings

CACHE_SUBDIRS = ("downloads", "unzipped", "resolved")
PART_PREFIX = ".tmp-"
PART_SUFFIX = ".part"
STALE_PART_SECONDS = 3600.0
"""A ``.tmp-*.part`` file not written to for this long belongs to a process that died."""

_CHUNK = 1024 * 1024
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")

StatKey = tuple[int, int, int, int, int]
"""(device, inode, size, mtime ns, ctime ns): changes whenever a file is replaced or written."""

_hash_memo: dict[tuple[str, StatKey], str] = {}
_hash_memo_lock = threading.Lock()
_HASH_MEMO_MAX = 4096
_swept: set[str] = set()


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


def stat_key(st: os.stat_result) -> StatKey:
    """The :data:`StatKey` of a ``stat`` result."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def cache_error(error: OSError, path: Path, action: str) -> SourceError | OSError:
    """A :class:`SourceError` saying what to do for a full disk, a read-only cache or a cache
    emptied meanwhile; other errors are returned unchanged. ``action``: "writing", "reading" …"""
    if isinstance(error, BioimageioError):
        return error
    code = error.errno
    reason = error.strerror or str(error)
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return SourceError(
            f"no room to write {path}: {reason}",
            hint=f"free disk space, run `bioimageio-run empty-cache`, or set {ENV_PREFIX}"
            "CACHE_PATH to a folder on a disk with room",
        )
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        state = "cannot be read" if action == "reading" else "is not writable"
        return SourceError(
            f"the cache folder {cache_root()} {state} ({reason}) while {action} {path}",
            hint=f"set {ENV_PREFIX}CACHE_PATH to a writable folder",
        )
    if code == errno.ENOENT:
        return SourceError(
            f"{path} was removed from the cache while {action} it (was the cache emptied "
            "meanwhile, e.g. by `bioimageio-run empty-cache`?)",
            hint="run the command again",
        )
    return error


@contextmanager
def cache_write(final: Path) -> Iterator[IO[bytes]]:
    """:func:`atomic_target` for a file in the cache, with actionable errors (:func:`cache_error`)
    for a full disk, a read-only cache or a cache emptied meanwhile; stale parts in the folder
    are swept first. Other exceptions pass through unchanged."""
    sweep_stale_parts(final.parent)
    try:
        with atomic_target(final) as f:
            yield f
    except OSError as e:
        mapped = cache_error(e, final, "writing")
        if mapped is e:
            raise
        raise mapped from None


def sweep_stale_parts(folder: Path) -> None:
    """Remove ``.tmp-*.part`` files in ``folder`` not written to for :data:`STALE_PART_SECONDS`
    (left by a killed process). Each folder is swept once per process."""
    key = str(folder)
    with _hash_memo_lock:
        if key in _swept:
            return
        if len(_swept) >= _HASH_MEMO_MAX:
            _swept.clear()
        _swept.add(key)
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if not (entry.name.startswith(PART_PREFIX) and entry.name.endswith(PART_SUFFIX)):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and (
                now - entry.stat(follow_symlinks=False).st_mtime > STALE_PART_SECONDS
            ):
                os.unlink(entry.path)
        except OSError:
            pass  # taken by another process meanwhile


def cache_key(*parts: str) -> str:
    """A short, file-system safe key for the given parts."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def safe_file_name(name: str) -> str:
    """``name`` with anything but letters, digits, ``._-`` replaced; never empty or dotted."""
    cleaned = _SAFE_NAME.sub("_", name).strip(".") or "file"
    return cleaned[:200]


def sha256_of_file(path: Path) -> str:
    """The sha256 hex digest of a file, computed once per (path, device, inode, size, mtime,
    ctime): a file replaced or written to since (even with its old size and mtime) is read
    again."""
    key = (str(path.resolve()), stat_key(path.stat()))
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
    key = (str(path.resolve()), stat_key(path.stat()))
    with _hash_memo_lock:
        _hash_memo[key] = value


def forget_hash(path: Path) -> None:
    """Drop every remembered sha256 of ``path`` (its content is in doubt)."""
    name = str(path.resolve())
    with _hash_memo_lock:
        for key in [k for k in _hash_memo if k[0] == name]:
            del _hash_memo[key]


@contextmanager
def atomic_target(final: Path) -> Iterator[IO[bytes]]:
    """Write to a temporary file next to ``final``; rename it to ``final`` only on success.

    On any exception the temporary file is removed and ``final`` is left as it was.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=PART_PREFIX, suffix=PART_SUFFIX)
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
    """Remove every cached download, extracted zip member and recorded id resolution.

    Each folder is first renamed out of the way (atomically), so a command running meanwhile
    starts a fresh folder instead of racing the removal. Returns the cache folder and the
    number of bytes freed.
    """
    root = cache_root()
    freed = 0
    leftovers = [p for kind in CACHE_SUBDIRS for p in root.glob(f".{kind}.deleting-*")]
    for kind in CACHE_SUBDIRS:
        folder = root / kind
        doomed = root / f".{kind}.deleting-{uuid.uuid4().hex[:12]}"
        try:
            folder.rename(doomed)
        except FileNotFoundError:
            continue
        except OSError:
            doomed = folder  # cannot rename (e.g. files in use on Windows): remove in place
        leftovers.append(doomed)
    for folder in leftovers:
        freed += _size_of(folder)
        _remove_tree(folder)
    with _hash_memo_lock:
        _hash_memo.clear()
        _swept.clear()
    return root, freed


def _size_of(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            total += st.st_size
    return total


def _remove_tree(folder: Path, attempts: int = 5) -> None:
    """``shutil.rmtree`` that tolerates files vanishing or appearing meanwhile."""

    def ignore_missing(function: object, path: str, exc_info: object) -> None:
        error = exc_info[1] if isinstance(exc_info, tuple) else exc_info
        if isinstance(error, FileNotFoundError):
            return
        if isinstance(error, OSError) and error.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise _Retry from error
        raise error if isinstance(error, BaseException) else OSError(path)

    for _ in range(attempts):
        try:
            shutil.rmtree(folder, onerror=ignore_missing)
            return
        except _Retry:
            continue
        except OSError as e:
            raise SourceError(
                f"cannot remove {folder}: {e.strerror or e}",
                hint="check the permissions of the cache folder",
            ) from None
    if folder.exists():
        raise SourceError(
            f"cannot remove {folder}: files keep being added to it",
            hint="stop the commands that use the cache and run `bioimageio-run empty-cache` again",
        )


class _Retry(Exception):
    pass
