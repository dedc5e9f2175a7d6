"""Read and write tensors: ``.npy``, ``.npz``, TIFF/OME-TIFF, PNG/JPEG, HDF5, zarr and OME-Zarr.

* :func:`load_tensor` reads a file into a :class:`~bioimageio_core.tensor.Tensor` (``.npy`` and
  uncompressed TIFF are memory-mapped, not copied into memory).
* :func:`open_array` opens a file without reading it; :meth:`OpenedArray.read_block` then reads
  one block at a time (zarr, OME-Zarr, HDF5, TIFF and memory maps), local or (zarr) remote.
* :func:`save_tensor` writes a tensor, recording its axes where the format can (TIFF, HDF5, zarr).
* :func:`open_output_array` creates an output in a file (``.npy`` memmap, TIFF, HDF5 dataset,
  zarr array, OME-Zarr image) written block by block (:meth:`OutputArray.write_block`); zarr
  outputs record finished chunks, can be resumed and written by several processes at once.

Outputs are complete or absent (:mod:`bioimageio_core.io.staging`): files and stores are
written under a temporary name and renamed into place when complete (a dataset added to an
existing HDF5 file: into a copy of the file); an array added to an existing zarr store is
marked incomplete until its last block is written, and such data is refused when read.

Containers take a member after ``:``: ``file.npz:name``, ``file.h5:/group/data``,
``folder.zarr:path/to/array``, ``image.ome.zarr:1`` (resolution level 1). Remote zarr stores are
fsspec URLs (``https://host/data.zarr:raw``). Axes come from the ``axes`` argument, else from the file, else
from ``expected_axes`` when the number of dimensions matches, else from
:func:`~bioimageio_core.io.axes.guess_axes`. HDF5 needs the ``hdf5`` extra, zarr the ``zarr``
extra, TIFF/PNG/JPEG the ``image`` extra.

Formats are chosen by suffix among those registered through the ``bioimageio_image_io`` plugin
hook (:func:`image_formats`): the built-in ones above and any a plugin adds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import numpy.typing as npt

from bioimageio_core.errors import BioimageioError, OfflineError, OutputExistsError, SourceError
from bioimageio_core.io._chunks import ChunkGrid, ChunkIndex, Region, normalize_region
from bioimageio_core.io._deps import MissingOptionalDependencyError
from bioimageio_core.io._format import (
    BlockAccess,
    Existing,
    FileFormat,
    OutputMode,
    OutputRequest,
    RawArray,
    lookup,
)
from bioimageio_core.io._location import FileLocation, is_url, parse_location
from bioimageio_core.io._metadata import ArrayMetadata, AxisMetadata
from bioimageio_core.io._opened import OpenedArray
from bioimageio_core.io._output import OutputArray, SharedOutput, check_output, create, save
from bioimageio_core.io._record import ChunkRecord
from bioimageio_core.io.axes import (
    AXIS_LETTERS,
    AxesLike,
    fit_to_axes,
    guess_axes,
    parse_axes,
    resolve_axes,
)
from bioimageio_core.io.builtin import BUILTIN_FORMATS
from bioimageio_core.io.staging import check_not_temporary, exists_error
from bioimageio_core.tensor import Tensor

if TYPE_CHECKING:
    from bioimageio_core.settings import Settings

FORMATS: tuple[FileFormat, ...] = BUILTIN_FORMATS
"""The built-in file formats (:func:`image_formats` adds those of plugins)."""

PathLike = str | os.PathLike[str]


def image_formats(settings: Settings | None = None) -> tuple[FileFormat, ...]:
    """Every registered file format (built-ins first, then plugins'), from the plugin registry."""
    from bioimageio_core.plugins import image_io

    return tuple(image_io(settings).values())


def supported_suffixes() -> tuple[str, ...]:
    """File suffixes :func:`load_tensor` understands (built-in and plugin formats)."""
    return tuple(s for fmt in image_formats() for s in fmt.suffixes)


def open_array(
    path: PathLike,
    axes: AxesLike | None = None,
    *,
    expected_axes: AxesLike | None = None,
    mmap: bool = True,
) -> OpenedArray:
    """Open the array at ``path`` without reading it; see the module docstring for axes.

    ``path`` may be an fsspec URL of a zarr store (``https://…/data.zarr``, ``s3://…``).
    ``mmap=False`` reads ``.npy``/TIFF files into memory instead of mapping them (read-only maps
    protect the file: write to a copy if you need to change the data in place).
    """
    location = parse_location(path)
    fmt = lookup(image_formats(), location, "read")
    if location.url is not None:
        _check_remote(fmt, location)
    else:
        if not location.path.exists():
            raise SourceError(f"{location.path} does not exist", hint="check the path")
        check_not_temporary(location.path)
    try:
        raw = fmt.read(location, mmap)
    except (BioimageioError, ImportError, MemoryError):
        raise
    except Exception as e:
        # numpy, zipfile, tifffile, h5py … raise anything from OSError to struct.error or
        # IndexError for a truncated or damaged file: the reader libraries are not ours to trust
        raise SourceError(
            f"cannot read {location} as {fmt.name}: the file is truncated or damaged "
            f"({type(e).__name__}: {e})",
            hint="write or download the file again",
        ) from e
    try:
        shape = tuple(int(s) for s in raw.array.shape)
        dims = resolve_axes(
            shape, axes, recorded=raw.dims, expected=expected_axes, source=str(location)
        )
    except BaseException:
        raw.close()
        raise
    metadata = raw.metadata
    if metadata is not None and metadata.dims != dims and len(metadata.axes) == len(dims):
        metadata = ArrayMetadata(
            tuple(attrs.evolve(a, id=d) for a, d in zip(metadata.axes, dims, strict=True)),
            name=metadata.name,
        )
    return OpenedArray(
        raw.array,
        dims,
        str(location),
        close=raw.close,
        chunks=raw.chunks,
        metadata=metadata,
        blocks=raw.blocks,
    )


def _check_remote(fmt: FileFormat, location: FileLocation) -> None:
    """Refuse remote reading of formats read from local files, and any remote read offline."""
    if not fmt.remote:
        raise SourceError(
            f"cannot read {location}: {fmt.name} files are read from local paths",
            hint="download the file first, or store the data as zarr to read it remotely",
        )
    from bioimageio_core.settings import get_settings

    if get_settings().offline:
        raise OfflineError(
            f"cannot read {location} offline",
            missing=str(location),
            hint="copy the data to a local folder, or run without --offline",
        )


def load_tensor(
    path: PathLike,
    axes: AxesLike | None = None,
    *,
    expected_axes: AxesLike | None = None,
    mmap: bool = True,
) -> Tensor:
    """Read the array at ``path`` as a Tensor (``.npy``/uncompressed TIFF: a read-only memmap)."""
    with open_array(path, axes, expected_axes=expected_axes, mmap=mmap) as opened:
        return opened.read()


def save_tensor(
    path: PathLike,
    tensor: Tensor,
    *,
    overwrite: bool = True,
    metadata: ArrayMetadata | None = None,
) -> None:
    """Write ``tensor`` to ``path`` (format by suffix; TIFF, HDF5 and zarr record the axes).

    The file appears complete or not at all. An existing file is replaced unless
    ``overwrite=False`` (then :class:`~bioimageio_core.errors.OutputExistsError`); in an
    existing HDF5 file or zarr store only the named member (``data`` by default for HDF5) is
    written (and only it is checked by ``overwrite=False``). PNG takes uint8/uint16 2D images
    with up to 4 channels; JPEG (lossy) is refused. ``metadata`` (units, pixel sizes, offsets;
    e.g. the input's ``OpenedArray.metadata``) is recorded where the format can (OME-Zarr). A
    failed write (full disk, file size limit, …) raises
    :class:`~bioimageio_core.errors.OutputError` and leaves nothing behind.
    """
    location = parse_location(path)
    save(lookup(image_formats(), location, "save"), location, tensor, overwrite, metadata)


def open_output_array(
    path: PathLike,
    shape: Sequence[int],
    dtype: npt.DTypeLike,
    axes: AxesLike,
    *,
    overwrite: bool = True,
    chunks: Sequence[int] | None = None,
    metadata: ArrayMetadata | None = None,
    resume: bool = False,
    fingerprint: str | None = None,
) -> OutputArray:
    """Create a file holding a writable array of ``shape`` and ``dtype`` (zeros) with ``axes``.

    ``.npy`` gives an ``np.memmap``, ``.tif`` a tiled TIFF (BigTIFF when it needs to be), ``.h5``
    a chunked dataset, ``.zarr`` a zarr array, ``.ome.zarr`` an OME-Zarr 0.5 image. Write blocks
    with :meth:`OutputArray.write_block` (or ``out[slices] = block``). The output appears at
    ``path`` only once it is committed: leave a ``with`` block normally, or call ``commit()``
    (``close()`` and ``finalize()`` do the same); ``discard()`` or an exception in the ``with``
    block removes it.

    ``chunks``: the chunk shape to store (zarr, HDF5; default: about 4 MB per chunk; give the
    block shape so that blocks and chunks align). ``metadata``: units, pixel sizes and offsets
    of the axes (e.g. the input's ``OpenedArray.metadata``), recorded in OME-Zarr outputs.
    ``resume``: continue an output an interrupted run left (zarr; other formats are written
    anew): its finished chunks are kept and listed by :meth:`OutputArray.done_chunks`; a
    complete output is returned as committed. ``fingerprint``: identifies the run (model,
    inputs, settings); a resume refuses an output written with another fingerprint.
    """
    location = parse_location(path)
    fmt = lookup(image_formats(), location, "create")
    shape_t = tuple(int(s) for s in shape)
    dims = parse_axes(axes)
    if len(dims) != len(shape_t):
        raise ValueError(f"shape {shape_t} and axes {dims} differ in length")
    chunks_t = None if chunks is None else tuple(int(c) for c in chunks)
    if chunks_t is not None and len(chunks_t) != len(shape_t):
        raise ValueError(f"chunks {chunks_t} and shape {shape_t} differ in length")
    dtype_np: np.dtype[Any] = np.dtype(dtype)
    request = OutputRequest(
        shape_t, dtype_np, dims, chunks=chunks_t, metadata=metadata, fingerprint=fingerprint
    )
    return create(fmt, location, request, overwrite, resume)


def check_outputs(paths: Iterable[PathLike], overwrite: bool) -> None:
    """Refuse outputs that exist already unless ``overwrite``, all named in one error.

    ``path`` may name a member (``file.h5:/data``): then that member is checked. Data an
    interrupted run left incomplete is not refused (writing replaces it).
    """
    existing: list[str] = []
    formats = image_formats()
    for path in paths:
        location = parse_location(path)
        try:
            check_output(lookup(formats, location, "save"), location, overwrite)
        except OutputExistsError:
            existing.append(str(location))
    if existing:
        raise exists_error(existing)


__all__ = [
    "AXIS_LETTERS",
    "FORMATS",
    "ArrayMetadata",
    "AxesLike",
    "AxisMetadata",
    "BlockAccess",
    "ChunkGrid",
    "ChunkIndex",
    "ChunkRecord",
    "Existing",
    "FileFormat",
    "FileLocation",
    "MissingOptionalDependencyError",
    "OpenedArray",
    "OutputArray",
    "OutputMode",
    "OutputRequest",
    "RawArray",
    "Region",
    "SharedOutput",
    "check_outputs",
    "fit_to_axes",
    "guess_axes",
    "image_formats",
    "is_url",
    "load_tensor",
    "normalize_region",
    "open_array",
    "open_output_array",
    "parse_axes",
    "parse_location",
    "resolve_axes",
    "save_tensor",
    "supported_suffixes",
]
