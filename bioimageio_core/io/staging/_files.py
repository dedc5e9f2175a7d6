"""One output file or folder written under a temporary name and moved into place when complete."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from bioimageio_core._closing import Committing
from bioimageio_core.errors import BioimageioError, OutputError
from bioimageio_core.io.staging._failures import (
    exists_error,
    is_write_failure,
    output_error,
    refuse_existing,
)
from bioimageio_core.io.staging._names import (
    PathLike,
    host_tag,
    leftovers_of,
    remove_leftovers,
    remove_path,
    temporary_path,
    writer_id,
    writer_is_gone,
)


def fsync_file(path: Path) -> None:
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


def publish_file(temp: Path, final: Path) -> None:
    """Move the finished file ``temp`` to ``final`` (flushed, with the mode of what it replaces)."""
    if final.is_dir() and not final.is_symlink():
        raise OutputError(
            f"cannot write {final}: a folder of that name exists",
            hint="choose another output path, or remove the folder",
        )
    fsync_file(temp)
    mode = _mode_of(final)
    if mode is not None:
        os.chmod(temp, mode)
    os.replace(temp, final)


def publish_dir(temp: Path, final: Path) -> None:
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
    remove_path(aside)


class StagedOutput(Committing):
    """An output written under a working name (:attr:`path`) and put in place at :attr:`final`
    by :meth:`commit`: complete or absent.

    Subclasses say how the finished output is put in place (:meth:`_publish`), how the working
    data is removed (:meth:`_remove`) and which failed writes they report as an
    :class:`OutputError` (:meth:`_output_error`).
    """

    final: Path
    path: Path
    _state: str

    def commit(self) -> Path:
        """Put the finished output in place (once); returns the output path."""
        if self._state == "committed":
            return self.final
        try:
            self._publish()
        except BaseException as e:
            self.discard()
            converted = (
                self._output_error(e)
                if isinstance(e, OSError) and not isinstance(e, BioimageioError)
                else None
            )
            if converted is not None:
                raise converted from e
            raise
        self._state = "committed"
        return self.final

    def discard(self) -> None:
        """Remove the working data (the output path is left as it was); once."""
        if self._state != "open":
            return
        self._state = "discarded"
        self._remove()

    def failed(self, error: BaseException) -> BaseException:
        """Discard, and return the error to raise for ``error`` (an :class:`OutputError` for a
        failed write, else ``error`` itself)."""
        self.discard()
        converted = self._output_error(error) if is_write_failure(error, self.path) else None
        return error if converted is None else converted

    def _publish(self) -> None:
        raise NotImplementedError

    def _remove(self) -> None:
        raise NotImplementedError

    def _output_error(self, error: BaseException) -> OutputError | None:
        """The error that says writing this output failed; None to raise ``error`` itself."""
        return output_error(self.final, error)


class Staged(StagedOutput):
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
        self.adopted_from: Path | None = None
        """The leftover this output was taken over from (:func:`adopt`), if any."""
        self._state = "open"

    @property
    def done(self) -> bool:
        """Whether the output was committed or discarded."""
        return self._state != "open"

    def _publish(self) -> None:
        if self._state == "discarded":
            raise OutputError(f"the output {self.final} was discarded and cannot be committed")
        if not self.overwrite and os.path.lexists(self.final):
            raise exists_error([self.final])
        if self.directory:
            publish_dir(self.path, self.final)
        else:
            publish_file(self.path, self.final)

    def _remove(self) -> None:
        try:
            remove_path(self.path)
        except OSError:
            pass  # a leftover is removed by the next write into this folder

    def _output_error(self, error: BaseException) -> OutputError | None:
        return output_error(self.final, error, replaced=self.replaces) if self.convert_errors else None

    def give_back(self) -> None:
        """Return adopted data to the name it had (a run that could not use it leaves it as it
        found it); other temporary data is discarded."""
        if self._state != "open":
            return
        if self.adopted_from is None:
            self.discard()
            return
        self._state = "discarded"
        try:
            os.rename(self.path, self.adopted_from)
        except OSError:
            pass  # still a leftover under this process's name: resumable once it has ended


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


def adopt(final: PathLike, *, directory: bool = False, overwrite: bool = True) -> Staged | None:
    """Take over the temporary data an interrupted run left for ``final``, to resume writing it.

    The newest leftover whose writer has ended (on this host), or whose writer ran on another
    host (which cannot be checked from here: resume only once that run has stopped), is renamed
    to a fresh temporary name of this process and returned as a :class:`Staged`; None when there
    is none (this process may take over its own leftovers, e.g. of a run it interrupted). Data
    that another running process on this host is writing raises :class:`OutputError`.
    """
    target = Path(final)
    for path, parsed in leftovers_of(target):
        writer = f"{parsed.host}-{parsed.pid}"
        if parsed.host == host_tag() and not writer_is_gone(writer) and writer != writer_id():
            raise OutputError(
                f"{target} is being written by another run (process {parsed.pid})",
                hint="wait for it to finish, or choose another output path",
            )
        if path.is_dir() != directory:
            continue
        mine = temporary_path(target)
        try:
            os.rename(path, mine)
        except FileNotFoundError:
            continue  # taken by another process meanwhile
        staged = Staged(target, mine, directory=directory, overwrite=overwrite, convert_errors=True)
        staged.adopted_from = path
        return staged
    return None


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
