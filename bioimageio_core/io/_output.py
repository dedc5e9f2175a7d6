"""Writing tensors to files, complete or absent (see :mod:`bioimageio_core.io.staging`).

A whole file or store is written under a temporary name and renamed into place when complete (a
dataset added to an existing HDF5 file: into a copy of it); an array added to an existing zarr
store is written in place and carries a completion marker that is set last.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import attrs
import numpy as np

from bioimageio_core.errors import BioimageioError, OutputError, SourceError
from bioimageio_core.io._format import Existing, FileFormat, RawArray
from bioimageio_core.io._format import existing as existing_at
from bioimageio_core.io._location import FileLocation
from bioimageio_core.io._opened import OpenedArray
from bioimageio_core.io.staging import (
    OutputNotice,
    Staged,
    exists_error,
    output_error,
    stage,
    write_errno,
    writer_is_gone,
)
from bioimageio_core.tensor import Tensor


def check_output(fmt: FileFormat, location: FileLocation, overwrite: bool) -> Existing:
    """Refuse to write ``location`` when it holds a complete output and not ``overwrite``.

    Data marked incomplete by a run that has ended is never refused (it is replaced); data
    that another running process is writing always is.
    """
    existing = existing_at(fmt, location)
    if not existing.exists:
        return existing
    if existing.writer is not None:
        if existing.writer and not writer_is_gone(existing.writer):
            raise OutputError(
                f"{location} is being written by another run (process "
                f"{existing.writer.partition('-')[2]})",
                hint="wait for it to finish, or choose another output path",
            )
        return existing
    if not overwrite:
        raise exists_error([str(location)])
    return existing


def _prepare(
    fmt: FileFormat, location: FileLocation, overwrite: bool
) -> tuple[FileLocation, Staged | None]:
    """Where to write ``location``: a temporary file or folder, or (a member of an existing
    container) the location itself."""
    existing = check_output(fmt, location, overwrite)
    if existing.writer is not None:
        warnings.warn(
            f"replacing {location}: incomplete data left by an interrupted run",
            OutputNotice,
            stacklevel=4,
        )
    if existing.in_place:
        return location, None
    staged = stage(
        location.path,
        directory=fmt.directory,
        overwrite=overwrite or existing.exists or existing.copy,
    )
    if existing.copy:
        try:
            shutil.copyfile(location.path, staged.path)
        except BaseException as e:
            converted = staged.failed(e)
            if converted is e:
                raise
            raise converted from e
    return FileLocation(staged.path, location.member), staged


def _in_place_error(location: FileLocation, error: BaseException) -> BaseException:
    if isinstance(error, OSError) and not isinstance(error, BioimageioError):
        if write_errno(error) is not None:
            return output_error(str(location), error)
    return error


def save(fmt: FileFormat, location: FileLocation, tensor: Tensor, overwrite: bool) -> None:
    """Write ``tensor`` to ``location`` with ``fmt`` (see :func:`bioimageio_core.io.save_tensor`)."""
    if fmt.write is None:
        raise SourceError(
            f"cannot save {location}: writing {fmt.name} is not supported", hint=fmt.no_write_hint
        )
    target, staged = _prepare(fmt, location, overwrite)
    if staged is None:
        try:
            fmt.write(target, tensor)
        except BaseException as e:  # the format removed its incomplete member
            converted = _in_place_error(location, e)
            if converted is e:
                raise
            raise converted from e
        return
    with staged:
        fmt.write(target, tensor)


def create(
    fmt: FileFormat,
    location: FileLocation,
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    dims: tuple[str, ...],
    overwrite: bool,
) -> OutputArray:
    """A writable array for ``location`` (see :func:`bioimageio_core.io.open_output_array`)."""
    if fmt.create is None:
        raise SourceError(
            f"cannot stream an output into {location}: {fmt.name} cannot be written block by block",
            hint=fmt.no_write_hint,
        )
    target, staged = _prepare(fmt, location, overwrite)
    try:
        raw = fmt.create(target, shape, dtype, dims)
    except BaseException as e:
        converted = staged.failed(e) if staged is not None else _in_place_error(location, e)
        if converted is e:
            raise
        raise converted from e
    finisher = _Finisher(raw, staged, location)
    return OutputArray(raw.array, dims, str(location), close=raw.close, finisher=finisher)


class _Finisher:
    """Commits or discards one output array: marker, file, rename."""

    def __init__(self, raw: RawArray, staged: Staged | None, location: FileLocation) -> None:
        self.raw = raw
        self.staged = staged
        self.location = location
        self.state = "open"

    def commit(self, flush: Callable[[], None]) -> Path:
        if self.state == "committed":
            return self.location.path
        if self.state == "discarded":
            raise OutputError(f"the output {self.location} was discarded and cannot be finished")
        try:
            flush()
            self.raw.complete()
            self.raw.close()
        except BaseException as e:
            converted = self.fail(e)
            if converted is e:
                raise
            raise converted from e
        if self.staged is not None:
            self.staged.commit()
        self.state = "committed"
        return self.location.path

    def discard(self) -> None:
        if self.state != "open":
            return
        self.state = "discarded"
        for step in (self.raw.discard, self.raw.close):
            try:
                step()
            except Exception:  # the data is removed below or is marked incomplete
                pass
        if self.staged is not None:
            self.staged.discard()

    def fail(self, error: BaseException) -> BaseException:
        """Discard after ``error``; the error to raise for it."""
        self.discard()
        if self.staged is not None:
            return self.staged.failed(error)
        return _in_place_error(self.location, error)


@attrs.frozen(eq=False)
class OutputArray(OpenedArray):
    """An output array being written block by block; complete or absent.

    Until :meth:`commit` the data lives under a temporary name (or, inside an existing HDF5 file
    or zarr store, carries a marker saying it is incomplete). :meth:`commit` (also
    :meth:`close`, or leaving a ``with`` block normally) marks it complete and moves it into
    place; :meth:`discard` (or an exception in the ``with`` block) removes it.
    """

    _finisher: _Finisher = attrs.field(kw_only=True, alias="finisher")

    @property
    def path(self) -> Path:
        """The output path (the file or store, without a member)."""
        return self._finisher.location.path

    @property
    def committed(self) -> bool:
        return self._finisher.state == "committed"

    def commit(self) -> Path:
        """Mark the array complete and put it in place; returns the output path."""
        return self._finisher.commit(self.flush)

    def discard(self) -> None:
        """Remove the incomplete output (an existing file at the output path stays as it was)."""
        self._finisher.discard()

    def close(self) -> None:
        """Finish the output: the same as :meth:`commit` unless it was discarded."""
        if self._finisher.state == "open":
            self.commit()

    def __enter__(self) -> OutputArray:
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
        converted = self._finisher.fail(exc)
        if converted is not exc:
            raise converted from exc
