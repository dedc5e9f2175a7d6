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
from typing import Any

import attrs
import numpy as np

from bioimageio_core._closing import Committing
from bioimageio_core.errors import BioimageioError, OutputError, SourceError
from bioimageio_core.io._format import (
    Existing,
    FileFormat,
    OutputRequest,
    RawArray,
    lookup,
    output_opener,
)
from bioimageio_core.io._format import existing as existing_at
from bioimageio_core.io._location import FileLocation, parse_location
from bioimageio_core.io._metadata import ArrayMetadata
from bioimageio_core.io._opened import OpenedArray
from bioimageio_core.io.staging import (
    OutputNotice,
    Staged,
    adopt,
    exists_error,
    output_error,
    stage,
    write_errno,
    writer_id,
    writer_is_gone,
)
from bioimageio_core.plugins import image_io
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


def save(
    fmt: FileFormat,
    location: FileLocation,
    tensor: Tensor,
    overwrite: bool,
    metadata: ArrayMetadata | None = None,
) -> None:
    """Write ``tensor`` to ``location`` with ``fmt`` (see :func:`bioimageio_core.io.save_tensor`)."""
    if metadata is not None and fmt.open_output is not None:  # the writer takes metadata
        request = OutputRequest(tensor.shape, tensor.dtype, tensor.dims, metadata=metadata)
        with create(fmt, location, request, overwrite) as out:
            out.write_block(..., np.asarray(tensor.data), done=False)
        return
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


def _resume_target(
    fmt: FileFormat, location: FileLocation, overwrite: bool
) -> tuple[FileLocation, Staged | None]:
    """Where to resume writing ``location``: the output itself (a member of an existing store,
    or a finished store), the leftover of an interrupted run (taken over), or a new temporary
    store when there is nothing to resume."""
    existing = existing_at(fmt, location)
    if existing.writer and not writer_is_gone(existing.writer) and existing.writer != writer_id():
        raise OutputError(
            f"{location} is being written by another run (process "
            f"{existing.writer.partition('-')[2]})",
            hint="wait for it to finish, or choose another output path",
        )
    if existing.exists and not existing.marked:
        return _prepare(fmt, location, overwrite)  # not an output of ours: replaced, if allowed
    if existing.in_place or existing.exists:
        return location, None  # the format checks that it matches the request
    try:
        staged = adopt(location.path, directory=fmt.directory, overwrite=overwrite)
    except OSError as e:
        if isinstance(e, BioimageioError):
            raise
        raise output_error(str(location), e) from e
    if staged is not None:
        warnings.warn(
            f"resuming {location}: taking over the data an interrupted run left",
            OutputNotice,
            stacklevel=4,
        )
        return FileLocation(staged.path, location.member), staged
    return _prepare(fmt, location, overwrite)


def create(
    fmt: FileFormat,
    location: FileLocation,
    request: OutputRequest,
    overwrite: bool,
    resume: bool = False,
) -> OutputArray:
    """A writable array for ``location`` (see :func:`bioimageio_core.io.open_output_array`)."""
    opener = output_opener(fmt)
    if opener is None:
        raise SourceError(
            f"cannot stream an output into {location}: {fmt.name} cannot be written block by block",
            hint=fmt.no_write_hint,
        )
    if location.url is not None:
        raise OutputError(
            f"cannot write {location}: outputs are written to local paths",
            hint="write the output to a local folder (or a mounted file system) and copy it",
        )
    resume = resume and fmt.resumable
    if resume:
        target, staged = _resume_target(fmt, location, overwrite)
        request = attrs.evolve(request, mode="resume")
    else:
        target, staged = _prepare(fmt, location, overwrite)
        request = attrs.evolve(request, mode="create")
    try:
        raw = opener(target, request)
    except OutputError:
        if staged is not None:  # a run that does not match leaves what it found as it was
            staged.give_back()
        raise
    except BaseException as e:
        converted = staged.failed(e) if staged is not None else _in_place_error(location, e)
        if converted is e:
            raise
        raise converted from e
    finisher = _Finisher(raw, staged, location, target, fmt.name)
    finisher.fingerprint = request.fingerprint
    return OutputArray(
        raw.array,
        request.dims,
        str(location),
        close=raw.close,
        finisher=finisher,
        chunks=raw.chunks,
        metadata=raw.metadata or request.metadata,
        blocks=raw.blocks,
    )


def attach(shared: SharedOutput, fmt: FileFormat) -> OutputArray:
    """Open ``shared`` for writing chunks of it from this process (see
    :meth:`SharedOutput.open`)."""
    opener = output_opener(fmt)
    if opener is None:
        raise OutputError(f"{shared.location}: {fmt.name} outputs cannot be shared")
    target = FileLocation(Path(shared.target), shared.member)
    request = OutputRequest(
        shared.shape,
        np.dtype(shared.dtype),
        shared.dims,
        chunks=shared.chunks,
        fingerprint=shared.fingerprint,
        mode="attach",
    )
    raw = opener(target, request)
    if not raw.concurrent:
        raw.close()
        raise OutputError(f"{shared.location}: {fmt.name} outputs have a single writer")
    finisher = _Finisher(raw, None, parse_location(shared.location), target, fmt.name)
    finisher.attached = True
    finisher.shared = True
    return OutputArray(
        raw.array,
        shared.dims,
        shared.location,
        close=raw.close,
        finisher=finisher,
        chunks=raw.chunks,
        blocks=raw.blocks,
    )


@attrs.define(eq=False, slots=False)
class _Finisher:
    """Commits or discards one output array: record, marker, file, rename."""

    raw: RawArray
    staged: Staged | None
    location: FileLocation
    target: FileLocation
    format_name: str
    state: str = attrs.field(init=False)
    attached: bool = attrs.field(default=False, init=False)
    """Writes chunks of an output another process owns: never commits or discards it."""
    shared: bool = attrs.field(default=False, init=False)
    """Other processes may write chunks too: every block must be chunk-aligned."""
    fingerprint: str | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        self.state = "committed" if self.raw.is_complete else "open"

    def commit(self, flush: Callable[[], None]) -> Path:
        if self.attached:
            self._release(flush)
            return self.location.path
        if self.state == "committed":
            if self.raw.is_complete:
                self.raw.close()
            return self.location.path
        if self.state == "discarded":
            raise OutputError(f"the output {self.location} was discarded and cannot be finished")
        try:
            flush()
            if self.raw.record is not None:
                self.raw.record.clear()
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

    def _release(self, flush: Callable[[], None]) -> None:
        if self.state == "open":
            self.state = "released"
            flush()
            self.raw.close()

    def discard(self) -> None:
        if self.state != "open":
            return
        if self.attached:  # the owner decides; this process only stops writing
            self.state = "released"
            self.raw.close()
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
class OutputArray(OpenedArray, Committing):
    """An output array being written block by block; complete or absent.

    Until :meth:`commit` the data lives under a temporary name (or, inside an existing HDF5 file
    or zarr store, carries a marker saying it is incomplete). :meth:`commit` (also
    :meth:`close`, or leaving a ``with`` block normally) marks it complete and moves it into
    place; :meth:`discard` (or an exception in the ``with`` block) removes it.

    Out-of-core writers use :meth:`write_block` (one block in, nothing of the file kept in
    memory) on blocks planned on :attr:`chunk_grid`. Outputs that keep a per-chunk completion
    record (:attr:`resumable`: zarr) remember which chunks are finished (:meth:`mark_done`,
    :meth:`done_chunks`), so that a rerun with ``resume=True`` skips them; :meth:`finalize`
    checks that every chunk is finished before committing. Outputs that several processes may
    write at once (:attr:`concurrent`: zarr) hand out a picklable :meth:`shared` handle; each
    process then writes whole chunks of its own. Threads of one process may call
    :meth:`write_block` at the same time for disjoint blocks (zarr: chunk-aligned blocks, as
    for processes; the other formats serialise where they must).
    """

    _finisher: _Finisher = attrs.field(kw_only=True, alias="finisher")

    @property
    def path(self) -> Path:
        """The output path (the file or store, without a member)."""
        return self._finisher.location.path

    @property
    def committed(self) -> bool:
        return self._finisher.state == "committed"

    @property
    def resumable(self) -> bool:
        """Whether finished chunks are recorded in the output (a rerun can resume it)."""
        return self._finisher.raw.record is not None

    @property
    def concurrent(self) -> bool:
        """Whether several processes may write chunks of this output at the same time."""
        return self._finisher.raw.concurrent

    def _check_writable(self) -> None:
        state = self._finisher.state
        if state == "committed":
            raise OutputError(f"{self.location} is complete already; it is not written again")
        if state != "open":
            raise OutputError(f"{self.location} was {state} and is no longer written here")

    def write_block(self, key: Any, data: Any, *, done: bool = True, owned: bool = False) -> None:
        """Write ``data`` (the block's shape) at ``key`` (slices per axis, ``...`` allowed).

        Nothing of the file stays in memory afterwards. With ``done`` (the default) the chunks
        the block covers entirely are then recorded as finished (:meth:`mark_done`). When the
        output is shared between processes the block must consist of whole chunks, unless
        ``owned``: the caller writes every chunk the block touches alone (no other process
        writes any of them), e.g. a task that writes several blocks of one chunk.
        """
        self._check_writable()
        region = self.region(key)
        if self._finisher.shared and not owned:
            self.chunk_grid.check_aligned(region, str(self.location))
        block = np.asarray(data)
        expected = tuple(r.stop - r.start for r in region)
        if block.shape != expected:
            raise ValueError(
                f"block of shape {block.shape} does not fit region "
                f"[{', '.join(f'{r.start}:{r.stop}' for r in region)}] of {self.location} "
                f"(shape {expected})"
            )
        if self._blocks is not None:
            self._blocks.write(region, block)
        else:
            self.array[region] = block
        if done:
            self.mark_done(region)

    def mark_done(self, key: Any) -> None:
        """Record the chunks that ``key`` covers entirely as finished (their data must be
        written); nothing happens for outputs without a record."""
        record = self._finisher.raw.record
        if record is None:
            return
        if self._finisher.state == "committed":
            return
        record.mark(self.chunk_grid.covered(self.region(key)))

    def done_chunks(self) -> frozenset[tuple[int, ...]]:
        """The chunks recorded as finished (every chunk once the output is complete; none for
        outputs without a record)."""
        if self._finisher.state == "committed":
            return frozenset(self.chunk_grid.indices())
        record = self._finisher.raw.record
        return frozenset() if record is None else record.done()

    def is_done(self, key: Any) -> bool:
        """Whether every chunk the block ``key`` touches is finished (a resumed run skips it)."""
        region = self.region(key)
        done = self.done_chunks()
        return all(index in done for index in self.chunk_grid.touched(region))

    def missing_chunks(self) -> list[tuple[int, ...]]:
        """The chunks not recorded as finished, in C order."""
        done = self.done_chunks()
        return [index for index in self.chunk_grid.indices() if index not in done]

    def shared(self) -> SharedOutput:
        """A picklable handle other processes open (:meth:`SharedOutput.open`) to write chunks
        of this output; from now on every block must be chunk-aligned. Only this object commits.

        Raises:
            OutputError: the format has a single writer (npy, TIFF, HDF5).
        """
        if not self.concurrent:
            raise OutputError(
                f"{self.location} cannot be written by several processes: "
                f"{self._finisher.format_name} files have a single writer",
                hint="write a zarr store (.zarr, .ome.zarr) to write from several processes",
            )
        self._check_writable()
        self._finisher.shared = True
        target = self._finisher.target
        return SharedOutput(
            location=str(self.location),
            target=str(target.path),
            member=target.member,
            shape=self.shape,
            dtype=self.dtype.str,
            dims=self.dims,
            chunks=self.chunk_grid.chunks,
            fingerprint=self._finisher.fingerprint,
        )

    def finalize(self) -> Path:
        """Check that every chunk is recorded as finished, then :meth:`commit`.

        Raises:
            OutputError: chunks are missing (the output stays incomplete: write them, or
                discard it). Outputs without a record are committed as they are.
        """
        if self._finisher.raw.record is not None and self._finisher.state == "open":
            missing = self.missing_chunks()
            if missing:
                raise OutputError(
                    f"cannot finalize {self.location}: {len(missing)} of "
                    f"{self.chunk_grid.n_chunks} chunks are not written (first: {missing[0]})",
                    hint="write the missing blocks (a resumed run does), or discard the output",
                )
        return self.commit()

    def commit(self) -> Path:
        """Mark the array complete and put it in place; returns the output path.

        An output opened from another process (:meth:`SharedOutput.open`) is only released."""
        return self._finisher.commit(self.flush)

    def discard(self) -> None:
        """Remove the incomplete output (an existing file at the output path stays as it was)."""
        self._finisher.discard()

    def release(self) -> None:
        """Stop writing here without finishing: the incomplete output and its record of written
        chunks stay as they are, so that a resumed run (``resume=True``) continues them (outputs
        without a record are discarded)."""
        if self._finisher.raw.record is None:
            self._finisher.discard()
            return
        self._finisher._release(self.flush)

    def close(self) -> None:
        """Finish the output: the same as :meth:`commit` unless it was discarded."""
        if self._finisher.state == "open":
            self.commit()

    def failed(self, error: BaseException) -> BaseException:
        """Discard after ``error`` (leaving a ``with`` block with it); the error to raise for it."""
        return self._finisher.fail(error)


@attrs.frozen
class SharedOutput:
    """What another process needs to write chunks of an output (picklable; see
    :meth:`OutputArray.shared`).

    ``location`` is the output as named; ``target`` where it is written until it is complete.
    """

    location: str
    target: str
    member: str | None
    shape: tuple[int, ...]
    dtype: str
    dims: tuple[str, ...]
    chunks: tuple[int, ...]
    fingerprint: str | None = None

    def open(self) -> OutputArray:
        """The output, writable from this process: write whole chunks with
        :meth:`OutputArray.write_block` (they are recorded as finished), then :meth:`close`
        (which releases, never commits: the process that created the output commits it)."""
        formats = tuple(image_io().values())
        fmt = lookup(formats, parse_location(self.location), "write")
        return attach(self, fmt)
