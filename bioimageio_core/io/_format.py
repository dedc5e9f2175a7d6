"""What a file format module provides (:class:`FileFormat`), and picking one by suffix."""

from __future__ import annotations

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
    """What a reader returns: the (possibly lazy) array, axis ids if the file records them, and
    how to release the file."""

    array: Any
    dims: tuple[str, ...] | None = None
    close: Callable[[], None] = _noop


Reader = Callable[[FileLocation, bool], RawArray]
"""``read(location, mmap)``: open the array; ``mmap`` allows a memory map instead of a read."""
Writer = Callable[[FileLocation, Tensor], None]
Creator = Callable[[FileLocation, tuple[int, ...], np.dtype[Any], tuple[str, ...]], RawArray]
"""``create(location, shape, dtype, dims)``: a writable array in a new file."""


FileFormat = ImageIOSpec
"""One file format (the spec a plugin registers through ``bioimageio_image_io``)."""


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
