"""Temporary names of outputs, the processes writing them, and leftovers of ended runs."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import shutil
import socket
import threading
import time
import warnings
from pathlib import Path

import attrs

PathLike = str | os.PathLike[str]

TEMP_PREFIX = ".tmp-"
"""Names of temporary outputs start with this (hidden files: globs such as ``*.tif`` skip them)."""

_NAME_BYTES = 255
_TEMP_NAME = re.compile(r"^\.tmp-([0-9a-f]{6})-([0-9]+)-[0-9a-f]{8}-(.+)$", re.DOTALL)
_RESCAN_SECONDS = 60.0
_LARGE_FOLDER = 1000
_swept: dict[str, float] = {}
_swept_lock = threading.Lock()


class OutputNotice(UserWarning):
    """bioimageio-run removed or replaced data that an interrupted run left incomplete."""


def host_tag() -> str:
    """This host, as the short hash temporary names and writer ids carry."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def writer_id() -> str:
    """``<host>-<pid>`` of this process (the host as a short hash of its name)."""
    return f"{host_tag()}-{os.getpid()}"


def _name_part(name: str) -> str:
    """``name``, or a shorter name with the same suffix when a temporary name would be too long."""
    if len(name.encode()) + 40 <= _NAME_BYTES:
        return name
    dot = name.find(".", 1)
    suffix = name[dot:] if 0 < dot and len(name) - dot <= 32 else Path(name).suffix[:32]
    return hashlib.sha256(name.encode()).hexdigest()[:24] + suffix


def temporary_path(final: Path) -> Path:
    """A fresh temporary name for ``final`` in its folder (nothing is created)."""
    token = secrets.token_hex(4)
    return final.parent / f"{TEMP_PREFIX}{writer_id()}-{token}-{_name_part(final.name)}"


@attrs.frozen
class TemporaryName:
    """What a temporary name says: who wrote it and for which output name."""

    host: str
    pid: int
    name: str


def parse_temporary_name(name: str) -> TemporaryName | None:
    """The parts of a temporary name made by :func:`temporary_path`, None for other names."""
    m = _TEMP_NAME.match(name)
    if m is None:
        return None
    return TemporaryName(m.group(1), int(m.group(2)), m.group(3))


def leftovers_of(final: Path) -> list[tuple[Path, TemporaryName]]:
    """The temporary data in ``final``'s folder that was (or is being) written for ``final``,
    newest first (by modification time)."""
    wanted = _name_part(final.name)
    found: list[tuple[float, Path, TemporaryName]] = []
    try:
        entries = list(os.scandir(final.parent))
    except OSError:
        return []
    for entry in entries:
        if not entry.name.startswith(TEMP_PREFIX):
            continue
        parsed = parse_temporary_name(entry.name)
        if parsed is None or parsed.name != wanted:
            continue
        try:
            mtime = entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        found.append((mtime, Path(entry.path), parsed))
    found.sort(key=lambda item: item[0], reverse=True)
    return [(path, parsed) for _, path, parsed in found]


def final_path(path: PathLike) -> Path:
    """The output a temporary path is written for (``path`` itself when it is no temporary
    name): what messages about the output should name."""
    target = Path(path)
    parsed = parse_temporary_name(target.name)
    return target if parsed is None else target.parent / parsed.name


def is_temporary(path: PathLike) -> bool:
    """Whether ``path`` names a temporary output (an output still or never finished)."""
    return parse_temporary_name(Path(path).name) is not None


def writer_is_gone(writer: str) -> bool:
    """Whether the process ``<host>-<pid>`` has ended; False when that cannot be known (another
    host, or a platform without the check)."""
    host, _, pid_text = writer.partition("-")
    if host != host_tag() or not pid_text.isdigit() or os.name != "posix":
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


def remove_leftovers(folder: Path, *, force: bool = False) -> list[Path]:
    """Remove temporary outputs in ``folder`` whose writer has ended; returns what was removed.

    Each removal is reported with an :class:`OutputNotice` warning. A large folder (more than
    1000 entries) is scanned at most once a minute per process unless ``force``.
    """
    key = os.path.abspath(folder)
    now = time.monotonic()
    with _swept_lock:
        last = _swept.get(key)
        if not force and last is not None and now - last < _RESCAN_SECONDS:
            return []
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    if len(entries) > _LARGE_FOLDER:
        with _swept_lock:
            _swept[key] = now
    for entry in entries:
        if not entry.name.startswith(TEMP_PREFIX):
            continue
        parsed = parse_temporary_name(entry.name)
        if parsed is None or not writer_is_gone(f"{parsed.host}-{parsed.pid}"):
            continue
        path = Path(entry.path)
        try:
            remove_path(path)
        except OSError:
            continue
        removed.append(path)
        warnings.warn(
            f"removed {path}: incomplete data left by an interrupted run (process {parsed.pid})",
            OutputNotice,
            stacklevel=3,
        )
    return removed


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        remove_tree(path)
    else:
        path.unlink(missing_ok=True)


def remove_tree(path: Path) -> None:
    """Remove the folder ``path`` and make sure it stays removed.

    Writers with background threads (zarr) may still add files for a moment after a failure
    (and create the folder again), so the removal is repeated until the folder stays absent.
    """
    for delay in (0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8):
        time.sleep(delay)
        try:
            shutil.rmtree(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            continue
        time.sleep(0.02)
        if not os.path.lexists(path):
            return
    shutil.rmtree(path, ignore_errors=True)
