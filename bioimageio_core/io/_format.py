"""What a file format module provides (:class:`FileFormat`), and picking one by suffix."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np

from bioimageio_core.errors import SourceError
from bioimageio_core.hookspecs import ImageIOSpec
from bioimageio_core.io._location import FileLocation
from bioimageio_core.io._opened import _noop
from bioimageio_core.tensor import Tensor


@attrs.frozen(eq=False)
class RawArray:
    """What a reader or creator returns: the (possibly lazy) array, axis ids if the file records
    them, and how to release the file.

    Creators of stores that carry a completion marker also say how to mark the array complete
    (after its last block) and how to remove it again (after a failure)."""

    array: Any
    dims: tuple[str, ...] | None = None
    close: Callable[[], None] = _noop
    complete: Callable[[], None] = _noop
    discard: Callable[[], None] = _noop


@attrs.frozen
class Existing:
    """What a write to a location would find there.

    ``exists``: the data the write replaces (the file, folder, or the member of a container).
    ``in_place``: the location is a member of an existing container (zarr store) that is
    written into directly; otherwise the whole file or folder is written anew under a
    temporary name, starting from a copy of the existing file when ``copy`` (a member added to
    an HDF5 file: HDF5 files are not safe to change in place). ``writer``: set when the existing
    data is marked incomplete (the process that was writing it, ``""`` if unknown).
    """

    exists: bool
    in_place: bool = False
    writer: str | None = None
    copy: bool = False


Reader = Callable[[FileLocation, bool], RawArray]
"""``read(location, mmap)``: open the array; ``mmap`` allows a memory map instead of a read."""
Writer = Callable[[FileLocation, Tensor], None]
Creator = Callable[[FileLocation, tuple[int, ...], np.dtype[Any], tuple[str, ...]], RawArray]
"""``create(location, shape, dtype, dims)``: a writable array in a new file."""
Prober = Callable[[FileLocation], Existing]
"""``probe(location)``: what writing ``location`` would find (see :class:`Existing`)."""


FileFormat = ImageIOSpec
"""One file format (the spec a plugin registers through ``bioimageio_image_io``)."""


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
    known = sorted({s for fmt in formats for s in fmt.suffixes})
    raise SourceError(
        f"cannot {action} {location}: unknown file suffix {suffix or '(none)'!r}",
        hint=f"supported suffixes are {', '.join(known)} (and zarr folders)",
    )
