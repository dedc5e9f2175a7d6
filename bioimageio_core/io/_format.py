"""What a file format module provides (:class:`FileFormat`), and picking one by suffix."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

import attrs
import numpy as np

from bioimageio_core.errors import SourceError
from bioimageio_core.hookspecs import ImageIOSpec
from bioimageio_core.io._chunks import Region
from bioimageio_core.io._location import FileLocation
from bioimageio_core.io._metadata import ArrayMetadata
from bioimageio_core.io._opened import _noop
from bioimageio_core.tensor import Tensor

if TYPE_CHECKING:
    from bioimageio_core.io._record import ChunkRecord


class BlockAccess(Protocol):
    """Reads and writes one block of an array without touching the rest of the file.

    Formats whose plain indexing would keep the whole file resident (memory maps) provide one;
    for the others indexing the array is already block by block.
    """

    def read(self, region: Region) -> np.ndarray[Any, Any]:
        """A new in-memory array with the elements of ``region``."""
        ...

    def write(self, region: Region, data: np.ndarray[Any, Any]) -> None:
        """Store ``data`` (of the region's shape) at ``region``."""
        ...


@attrs.frozen(eq=False)
class RawArray:
    """What a reader or creator returns: the (possibly lazy) array, axis ids if the file records
    them, and how to release the file.

    Creators of stores that carry a completion marker also say how to mark the array complete
    (after its last block) and how to remove it again (after a failure).

    Optional facts: ``chunks`` (the storage chunk shape, so that blocks can be planned on it),
    ``metadata`` (units, pixel sizes and offsets of the axes), ``blocks`` (block reads and writes
    that keep memory bounded, where indexing ``array`` would not). Creators also say whether
    other processes may write chunks at the same time (``concurrent``), give the output's
    per-chunk completion ``record`` when it keeps one, and set ``is_complete`` when a resumed
    output turned out to be complete already.
    """

    array: Any
    dims: tuple[str, ...] | None = None
    close: Callable[[], None] = _noop
    complete: Callable[[], None] = _noop
    discard: Callable[[], None] = _noop
    chunks: tuple[int, ...] | None = None
    metadata: ArrayMetadata | None = None
    blocks: BlockAccess | None = None
    concurrent: bool = False
    record: ChunkRecord | None = None
    is_complete: bool = False

    def fill(self, data: Any) -> None:
        """Write the whole array at once and mark it complete; after a failure it is removed."""
        try:
            self.array[...] = np.asarray(data)
            self.complete()
        except BaseException:
            self.discard()
            raise


OutputMode = Literal["create", "resume", "attach"]
"""How :class:`OutputRequest` opens an output: ``create`` a new array; ``resume`` an array an
interrupted run left (checked to match, its finished chunks kept; created when there is none);
``attach`` to an array another process is writing (to write chunks of it from here)."""


@attrs.frozen
class OutputRequest:
    """What an output array must be: passed to ``ImageIOSpec.open_output``.

    ``chunks``: the chunk shape to store (None: the format's choice); ``metadata``: the axes'
    units, scales and offsets to record where the format can (OME-Zarr); ``fingerprint``: a text
    identifying the run (model, inputs, settings), recorded in resumable outputs so that a resume
    never mixes the chunks of two different runs.
    """

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    dims: tuple[str, ...]
    chunks: tuple[int, ...] | None = None
    metadata: ArrayMetadata | None = None
    fingerprint: str | None = None
    mode: OutputMode = "create"


@attrs.frozen
class Existing:
    """What a write to a location would find there.

    ``exists``: the data the write replaces (the file, folder, or the member of a container).
    ``in_place``: the location is a member of an existing container (zarr store) that is
    written into directly; otherwise the whole file or folder is written anew under a
    temporary name, starting from a copy of the existing file when ``copy`` (a member added to
    an HDF5 file: HDF5 files are not safe to change in place). ``writer``: set when the existing
    data is marked incomplete (the process that was writing it, ``""`` if unknown). ``marked``:
    the existing data carries bioimageio-run's completion marker (complete or not), so that a
    resumed run may continue or reuse it.
    """

    exists: bool
    in_place: bool = False
    writer: str | None = None
    copy: bool = False
    marked: bool = False


Reader = Callable[[FileLocation, bool], RawArray]
"""``read(location, mmap)``: open the array; ``mmap`` allows a memory map instead of a read."""
Writer = Callable[[FileLocation, Tensor], None]
Creator = Callable[[FileLocation, tuple[int, ...], np.dtype[Any], tuple[str, ...]], RawArray]
"""``create(location, shape, dtype, dims)``: a writable array in a new file."""
OutputOpener = Callable[[FileLocation, OutputRequest], RawArray]
"""``open_output(location, request)``: a writable array as ``request`` says (see
:class:`OutputRequest`)."""
Prober = Callable[[FileLocation], Existing]
"""``probe(location)``: what writing ``location`` would find (see :class:`Existing`)."""


FileFormat = ImageIOSpec
"""One file format (the spec a plugin registers through ``bioimageio_image_io``)."""


def output_opener(fmt: FileFormat) -> OutputOpener | None:
    """How ``fmt`` opens outputs written block by block: its ``open_output``, else its simpler
    ``create`` (which ignores chunks, metadata and resuming), else None."""
    if fmt.open_output is not None:
        return fmt.open_output
    create = fmt.create
    if create is None:
        return None

    def open_with_create(location: FileLocation, request: OutputRequest) -> RawArray:
        return create(location, request.shape, request.dtype, request.dims)

    return open_with_create


def existing(fmt: FileFormat, location: FileLocation) -> Existing:
    """What writing ``location`` would find (the whole file or folder unless ``fmt.probe``)."""
    if fmt.probe is not None:
        return fmt.probe(location)
    return Existing(os.path.lexists(location.path))


def lookup(formats: Sequence[FileFormat], location: FileLocation, action: str) -> FileFormat:
    """Return the format for ``location`` or raise a :class:`SourceError` listing the suffixes."""
    suffix = location.suffix
    for fmt in formats:
        if suffix in fmt.suffixes:
            if location.member is not None and not fmt.has_members:
                raise SourceError(
                    f"cannot {action} {location}: {fmt.name} files hold one array, so "
                    f"':{location.member}' cannot select a member",
                    hint="remove the ':' part, or use .npz, .h5 or .zarr for named arrays",
                )
            return fmt
    remote = [fmt for fmt in formats if fmt.remote]
    if location.url is not None and len(remote) == 1 and not location.path.suffix:
        return remote[0]  # a store URL without a suffix (s3://bucket/dataset)
    known = sorted({s for fmt in formats for s in fmt.suffixes})
    raise SourceError(
        f"cannot {action} {location}: unknown file suffix {suffix or '(none)'!r}",
        hint=f"supported suffixes are {', '.join(known)} (and zarr folders)",
    )
