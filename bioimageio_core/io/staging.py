"""Outputs are complete or absent: every file and folder bioimageio-run writes goes through here.

A writer never writes to the output path itself:

1. :func:`stage` reserves a temporary name next to the output (in the same folder, so that the
   last step is a rename, not a copy): ``.tmp-<host>-<pid>-<random>-<output name>``. The name
   ends with the output's name, so format libraries see the suffix they expect.
2. The writer fills the temporary file (or folder: zarr stores, package folders).
3. :meth:`Staged.commit` flushes the file to disk, gives it the permissions of the file it
   replaces (a new file keeps those the user's umask gave it) and renames it to the output path
   in one step. On any error :meth:`Staged.discard` removes the temporary data, and the output
   path keeps what it held before.

Stores (HDF5 datasets, zarr arrays) carry the attribute ``bioimageio_run_complete``: False from
their creation, True once every block is written (:func:`mark_incomplete`,
:func:`mark_complete`). Readers refuse a store marked incomplete (:func:`check_complete`). This
matters where a store is written in place (an array added to an existing zarr store); a dataset
added to an existing HDF5 file is written into a copy of the file, because HDF5 files can be
left unreadable by a write that fails half way.

A killed process cannot clean up after itself: the next write into the same folder removes the
temporary data of writers that no longer run on this host and says so with an
:class:`OutputNotice` warning (:func:`remove_leftovers`).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import shutil
import socket
import stat
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import attrs

from bioimageio_core.errors import (
    BioimageioError,
    IncompleteOutputError,
    OutputError,
    OutputExistsError,
)

PathLike = str | os.PathLike[str]

TEMP_PREFIX = ".tmp-"
"""Names of temporary outputs start with this (hidden files: globs such as ``*.tif`` skip them)."""
COMPLETE_ATTR = "bioimageio_run_complete"
"""Store attribute: False while bioimageio-run writes the store, True once it is complete."""
WRITER_ATTR = "bioimageio_run_writer"
"""Store attribute naming the process writing an incomplete store (``<host>-<pid>``)."""
OVERWRITE_HINT = (
    "pass --overwrite (overwrite=True in Python) to replace it, or choose another output path"
)

_NAME_BYTES = 255
_TEMP_NAME = re.compile(r"^\.tmp-([0-9a-f]{6})-([0-9]+)-[0-9a-f]{8}-(.+)$", re.DOTALL)
_RESCAN_SECONDS = 60.0
_LARGE_FOLDER = 1000
_swept: dict[str, float] = {}
_swept_lock = threading.Lock()


class OutputNotice(UserWarning):
    """bioimageio-run removed or replaced data that an interrupted run left incomplete."""


# ---------------------------------------------------------------------------------------------
# temporary names and their writers


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def writer_id() -> str:
    """``<host>-<pid>`` of this process (the host as a short hash of its name)."""
    return f"{_host_tag()}-{os.getpid()}"


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


def is_temporary(path: PathLike) -> bool:
    """Whether ``path`` names a temporary output (an output still or never finished)."""
    return parse_temporary_name(Path(path).name) is not None


def writer_is_gone(writer: str) -> bool:
    """Whether the process ``<host>-<pid>`` has ended; False when that cannot be known (another
    host, or a platform without the check)."""
    host, _, pid_text = writer.partition("-")
    if host != _host_tag() or not pid_text.isdigit() or os.name != "posix":
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
            _remove(path)
        except OSError:
            continue
        removed.append(path)
        warnings.warn(
            f"removed {path}: incomplete data left by an interrupted run (process {parsed.pid})",
            OutputNotice,
            stacklevel=3,
        )
    return removed


# ---------------------------------------------------------------------------------------------
# errors


def exists_error(existing: Sequence[PathLike]) -> OutputExistsError:
    """The one message for outputs that exist already (every command uses it)."""
    more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
    return OutputExistsError(f"output {existing[0]} exists already{more}", hint=OVERWRITE_HINT)


def refuse_existing(paths: Iterable[PathLike], overwrite: bool) -> None:
    """Raise :class:`OutputExistsError` for paths that exist, unless ``overwrite``."""
    if overwrite:
        return
    existing = [p for p in paths if os.path.lexists(p)]
    if existing:
        raise exists_error(existing)


_REASONS: Mapping[int, tuple[str, str]] = {
    errno.ENOSPC: (
        "the disk is full (no space left on device)",
        "free space on that disk or write the output to another one",
    ),
    errno.EDQUOT: (
        "the disk quota is exceeded",
        "free space within your quota or write the output elsewhere",
    ),
    errno.EFBIG: (
        "the file would exceed the file size limit (`ulimit -f`) or the largest file the file "
        "system can hold",
        "raise the limit, or write a format stored in many files (.zarr)",
    ),
    errno.EROFS: ("the file system is read-only", "write the output to a writable folder"),
    errno.EACCES: ("permission denied", "write the output to a folder you may write to"),
    errno.EPERM: ("operation not permitted", "write the output to a folder you may write to"),
    errno.EIO: ("an input/output error of the device", "check the disk, or write elsewhere"),
    errno.ENAMETOOLONG: ("the file name is too long", "choose a shorter output name"),
}
_MESSAGE_ERRNOS: tuple[tuple[str, int], ...] = (
    ("no space left on device", errno.ENOSPC),
    ("disk quota exceeded", errno.EDQUOT),
    ("file too large", errno.EFBIG),
    ("read-only file system", errno.EROFS),
)
_ERRNO_IN_TEXT = re.compile(r"errno\s*=\s*(\d+)")
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")


def write_errno(error: BaseException) -> int | None:
    """The errno of a failed write; also found in the messages of libraries that lose it (h5py
    writes it into the text, numpy reports a short write without one)."""
    code = getattr(error, "errno", None)
    if isinstance(code, int) and code in _REASONS:
        return code
    text = str(error).lower()
    for match in _ERRNO_IN_TEXT.finditer(text):
        if int(match.group(1)) in _REASONS:
            return int(match.group(1))
    for phrase, phrase_code in _MESSAGE_ERRNOS:
        if phrase in text:
            return phrase_code
    if _SHORT_WRITE.search(text):
        return _short_write_cause()
    return code if isinstance(code, int) else None


def _short_write_cause() -> int:
    """Why a write stopped short when the library lost the errno: the file size limit when one
    is set, else (by far the most common cause) a full disk."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
        if soft != resource.RLIM_INFINITY:
            return errno.EFBIG
    except (ImportError, ValueError, OSError):
        pass
    return errno.ENOSPC


def output_error(final: PathLike, error: BaseException, *, replaced: bool = False) -> OutputError:
    """An :class:`OutputError` saying why ``final`` could not be written and that nothing of it
    was left behind."""
    code = write_errno(error)
    reason, hint = _REASONS.get(code or -1, (getattr(error, "strerror", None) or str(error), ""))
    kept = f"; the existing {Path(final).name} is unchanged" if replaced else ""
    return OutputError(
        f"could not write {final}: {reason}. The incomplete data was removed{kept}",
        hint=hint or None,
    )


def _is_write_failure(error: BaseException, staged_path: Path) -> bool:
    """An OSError of writing the staged output (not of reading some input on the way)."""
    if not isinstance(error, OSError) or isinstance(error, BioimageioError):
        return False
    if write_errno(error) not in _REASONS:
        return False
    filename = getattr(error, "filename", None)
    if filename is None:
        return True
    if not isinstance(filename, (str, bytes, os.PathLike)):
        return True
    named = os.path.abspath(os.fsdecode(filename))
    own = os.path.abspath(staged_path)
    return named == own or named.startswith(own + os.sep)


# ---------------------------------------------------------------------------------------------
# staged files and folders


def _remove(path: Path) -> None:
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


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mode_of(path: Path) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def _publish_file(temp: Path, final: Path) -> None:
    """Move the finished file ``temp`` to ``final`` (flushed, with the mode of what it replaces)."""
    if final.is_dir() and not final.is_symlink():
        raise OutputError(
            f"cannot write {final}: a folder of that name exists",
            hint="choose another output path, or remove the folder",
        )
    _fsync(temp)
    mode = _mode_of(final)
    if mode is not None:
        os.chmod(temp, mode)
    os.replace(temp, final)


def _publish_dir(temp: Path, final: Path) -> None:
    """Move the finished folder ``temp`` to ``final``; an existing ``final`` is moved aside first
    and removed once the new one is in place."""
    if not os.path.lexists(final):
        os.rename(temp, final)
        return
    mode = _mode_of(final) if final.is_dir() else None
    if mode is not None:
        os.chmod(temp, mode)
    aside = temporary_path(final)
    os.rename(final, aside)
    try:
        os.rename(temp, final)
    except BaseException:
        os.rename(aside, final)
        raise
    _remove(aside)


class Staged:
    """One output being written under a temporary name (:attr:`path`) next to :attr:`final`.

    Use it as a context manager: leaving the block normally commits, an exception discards (and
    a failed write such as a full disk becomes an :class:`OutputError` saying so).
    """

    def __init__(
        self, final: Path, path: Path, *, directory: bool, overwrite: bool, convert_errors: bool
    ) -> None:
        self.final = final
        self.path = path
        self.directory = directory
        self.overwrite = overwrite
        self.convert_errors = convert_errors
        self.replaces = os.path.lexists(final)
        self._state = "open"

    @property
    def done(self) -> bool:
        """Whether the output was committed or discarded."""
        return self._state != "open"

    def commit(self) -> Path:
        """Put the finished output in place; returns the output path."""
        if self._state == "committed":
            return self.final
        if self._state == "discarded":
            raise OutputError(f"the output {self.final} was discarded and cannot be committed")
        try:
            if not self.overwrite and os.path.lexists(self.final):
                raise exists_error([self.final])
            if self.directory:
                _publish_dir(self.path, self.final)
            else:
                _publish_file(self.path, self.final)
        except BaseException as e:
            self.discard()
            if self.convert_errors and isinstance(e, OSError) and not isinstance(e, BioimageioError):
                raise output_error(self.final, e, replaced=self.replaces) from e
            raise
        self._state = "committed"
        return self.final

    def discard(self) -> None:
        """Remove the temporary data (the output path is left as it was)."""
        if self._state != "open":
            return
        self._state = "discarded"
        try:
            _remove(self.path)
        except OSError:
            pass  # a leftover is removed by the next write into this folder

    def failed(self, error: BaseException) -> BaseException:
        """Discard, and return the error to raise for ``error`` (an :class:`OutputError` for a
        failed write, else ``error`` itself)."""
        self.discard()
        if self.convert_errors and _is_write_failure(error, self.path):
            return output_error(self.final, error, replaced=self.replaces)
        return error

    def __enter__(self) -> Staged:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.commit()
            return
        converted = self.failed(exc)
        if converted is not exc:
            raise converted from exc


def stage(
    final: PathLike,
    *,
    directory: bool = False,
    overwrite: bool = True,
    convert_errors: bool = True,
) -> Staged:
    """Reserve a temporary file (or empty folder, ``directory=True``) for the output ``final``.

    Refuses an existing ``final`` unless ``overwrite`` (:class:`OutputExistsError`), creates the
    parent folders, removes leftovers of interrupted runs in the folder. The temporary file is
    created empty with the permissions the umask gives; writers may replace or truncate it.
    ``convert_errors=False`` passes every error through unchanged (caches report their own).
    """
    target = Path(final)
    refuse_existing([target], overwrite)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(target.parent)
        path = temporary_path(target)
        if directory:
            os.mkdir(path, 0o777)
        else:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as e:
        if convert_errors and not isinstance(e, BioimageioError):
            raise output_error(target, e) from e
        raise
    return Staged(
        target, path, directory=directory, overwrite=overwrite, convert_errors=convert_errors
    )


@contextmanager
def staged_file(
    final: PathLike, *, overwrite: bool = True, convert_errors: bool = True
) -> Iterator[IO[bytes]]:
    """A binary file to write ``final`` through; in place only once the block ends normally."""
    with stage(final, overwrite=overwrite, convert_errors=convert_errors) as staged:
        with open(staged.path, "wb") as f:
            yield f


def write_bytes(final: PathLike, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``final`` (complete or not at all); returns ``final`` as a Path."""
    with staged_file(final, overwrite=overwrite) as f:
        f.write(data)
    return Path(final)


def write_text(
    final: PathLike, text: str, *, overwrite: bool = True, encoding: str = "utf-8"
) -> Path:
    """Write ``text`` to ``final`` (complete or not at all); returns ``final`` as a Path."""
    return write_bytes(final, text.encode(encoding), overwrite=overwrite)


def copy_file(source: PathLike, final: PathLike, *, overwrite: bool = True) -> Path:
    """Copy the file ``source`` to ``final`` (complete or not at all); returns ``final``."""
    with staged_file(final, overwrite=overwrite) as out, open(source, "rb") as src:
        shutil.copyfileobj(src, out, 1024 * 1024)
    return Path(final)


class StagedFolder:
    """A folder of files written together (a model package), complete or absent.

    Files are written into :attr:`path`, a working folder. :meth:`commit` renames a new folder
    into place; into an existing folder it moves the files one by one, the ``descriptions``
    (``rdf.yaml`` …) last and after removing the old ones, so a folder holding a description
    holds every file of it.
    """

    def __init__(
        self, final: Path, path: Path, *, existing: bool, overwrite: bool, descriptions: tuple[str, ...]
    ) -> None:
        self.final = final
        self.path = path
        self.existing = existing
        self.overwrite = overwrite
        self.descriptions = descriptions
        self._state = "open"

    def taken_names(self) -> set[str]:
        """Lower-case names a new file must not take: those in the working folder and, for an
        existing output folder without ``overwrite``, those in the output folder."""
        names = {n.lower() for n in os.listdir(self.path)}
        if self.existing and not self.overwrite:
            names |= {n.lower() for n in os.listdir(self.final) if n != self.path.name}
        return names

    def check_names(self, names: Iterable[str]) -> None:
        """Refuse (unless ``overwrite``) when the output folder holds any of ``names`` or a
        description."""
        if not self.existing or self.overwrite:
            return
        wanted = list(dict.fromkeys([*self.descriptions, *names]))
        existing = [self.final / n for n in wanted if os.path.lexists(self.final / n)]
        if existing:
            raise exists_error(existing)

    def commit(self) -> Path:
        """Put every file of the working folder in place; returns the output folder."""
        if self._state == "committed":
            return self.final
        try:
            names = sorted(os.listdir(self.path))
            if self.existing:
                self.check_names(names)
                for old in self.descriptions:
                    if os.path.lexists(self.final / old):
                        (self.final / old).unlink()
                ordered = [n for n in names if n not in self.descriptions]
                ordered += [n for n in names if n in self.descriptions]
                for name in ordered:
                    source, target = self.path / name, self.final / name
                    if source.is_dir():
                        _publish_dir(source, target)
                    else:
                        _publish_file(source, target)
                os.rmdir(self.path)
            else:
                for name in names:
                    if (self.path / name).is_file():
                        _fsync(self.path / name)
                try:
                    os.rename(self.path, self.final)
                except OSError as e:
                    if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
                        raise exists_error([self.final]) from None
                    raise
        except BaseException as e:
            self.discard()
            if isinstance(e, OSError) and not isinstance(e, BioimageioError):
                raise output_error(self.final, e) from e
            raise
        self._state = "committed"
        return self.final

    def discard(self) -> None:
        """Remove the working folder; the output folder keeps what it held."""
        if self._state != "open":
            return
        self._state = "discarded"
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> StagedFolder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.commit()
            return
        self.discard()
        if _is_write_failure(exc, self.path):
            raise output_error(self.final, exc) from exc


def stage_folder(
    final: PathLike, *, overwrite: bool = True, descriptions: Sequence[str] = ()
) -> StagedFolder:
    """A working folder for the folder output ``final`` (see :class:`StagedFolder`).

    A new folder is staged next to ``final``; an existing one gets its working folder inside
    (hidden), so nothing is written outside it.
    """
    target = Path(final)
    if os.path.lexists(target) and not target.is_dir():
        raise OutputError(
            f"cannot write the folder {target}: a file of that name exists",
            hint="choose another output path",
        )
    existing = target.is_dir()
    try:
        if existing:
            remove_leftovers(target)
            path = temporary_path(target / target.name)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            remove_leftovers(target.parent)
            path = temporary_path(target)
        os.mkdir(path, 0o777)
    except OSError as e:
        raise output_error(target, e) from e
    return StagedFolder(
        target, path, existing=existing, overwrite=overwrite, descriptions=tuple(descriptions)
    )


def preallocate(path: PathLike) -> None:
    """Reserve the disk space of a file to be written through a memory map.

    Writing into a memory map of a sparse file on a full disk kills the process (SIGBUS);
    reserved space makes a full disk fail here, as an ``OSError`` (ENOSPC), before any block is
    written. File systems that cannot reserve space are left as they are.
    """
    if not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        if size:
            os.posix_fallocate(fd, 0, size)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS):
            raise
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# completion markers of stores written in place


def mark_incomplete(attrs: MutableMapping[str, Any]) -> None:
    """Mark a store (its attributes) as being written by this process."""
    attrs[COMPLETE_ATTR] = False
    attrs[WRITER_ATTR] = writer_id()


def mark_complete(attrs: MutableMapping[str, Any]) -> None:
    """Mark a store complete (call after its last block is written)."""
    attrs[COMPLETE_ATTR] = True
    if WRITER_ATTR in attrs:
        del attrs[WRITER_ATTR]


def incomplete_writer(attrs: Mapping[str, Any]) -> str | None:
    """The writer (``<host>-<pid>``, or ``""`` if unknown) of a store marked incomplete; None
    for a complete store or one bioimageio-run did not write."""
    value = attrs.get(COMPLETE_ATTR)
    if value is None or bool(value):
        return None
    writer = attrs.get(WRITER_ATTR, "")
    return writer.decode() if isinstance(writer, bytes) else str(writer)


def check_complete(attrs: Mapping[str, Any], location: str) -> None:
    """Raise :class:`IncompleteOutputError` when the store at ``location`` is marked incomplete."""
    writer = incomplete_writer(attrs)
    if writer is None:
        return
    raise incomplete_error(location, writer)


def incomplete_error(location: str, writer: str) -> IncompleteOutputError:
    """The error for reading a store that is marked incomplete by ``writer``."""
    if writer and not writer_is_gone(writer):
        return IncompleteOutputError(
            f"{location} is incomplete: bioimageio-run is still writing it (process "
            f"{writer.partition('-')[2]})",
            hint="wait for that run to finish",
        )
    return IncompleteOutputError(
        f"{location} is incomplete: the run writing it was interrupted",
        hint="run the command again (it replaces the incomplete data) or delete it",
    )


def check_not_temporary(path: PathLike) -> None:
    """Refuse to read a temporary output (:class:`IncompleteOutputError`)."""
    parsed = parse_temporary_name(Path(path).name)
    if parsed is None:
        return
    raise incomplete_error(str(path), f"{parsed.host}-{parsed.pid}")


__all__ = [
    "COMPLETE_ATTR",
    "OVERWRITE_HINT",
    "TEMP_PREFIX",
    "WRITER_ATTR",
    "OutputNotice",
    "Staged",
    "StagedFolder",
    "TemporaryName",
    "check_complete",
    "check_not_temporary",
    "copy_file",
    "exists_error",
    "incomplete_error",
    "incomplete_writer",
    "is_temporary",
    "mark_complete",
    "mark_incomplete",
    "output_error",
    "parse_temporary_name",
    "preallocate",
    "refuse_existing",
    "remove_leftovers",
    "remove_tree",
    "stage",
    "stage_folder",
    "staged_file",
    "temporary_path",
    "write_bytes",
    "write_errno",
    "write_text",
]
