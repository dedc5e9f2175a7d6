"""Zarr outputs written block by block (and the zarr format spec: reading is in :mod:`._zarr`).

A new store holds one array at its top, or (``*.ome.zarr``) an OME-Zarr 0.5 image with one level
``0``; ``store.zarr:path`` adds an array to an existing store (in that store's zarr format).
Every output records which chunks are finished
(:class:`~bioimageio_core.io._record.ChunkRecord`), so it can be resumed and written by several
processes at once, each writing whole chunks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bioimageio_core.errors import OutputError
from bioimageio_core.io._chunks import ChunkGrid, default_chunks
from bioimageio_core.io._deps import require
from bioimageio_core.io._format import Existing, FileFormat, OutputRequest, RawArray
from bioimageio_core.io._location import FileLocation
from bioimageio_core.io._ngff import image_attributes, ngff_name, stored_axes
from bioimageio_core.io._record import RECORD_FOLDER, ChunkRecord
from bioimageio_core.io._view import AxesView
from bioimageio_core.io._zarr import (
    DIMS_ATTR,
    FINGERPRINT_ATTR,
    OME_LEVEL,
    array_axes,
    import_zarr,
    is_ome_name,
    read_zarr,
)
from bioimageio_core.io.axes import AXIS_LETTERS
from bioimageio_core.io.staging import (
    COMPLETE_ATTR,
    final_path,
    incomplete_writer,
    mark_complete,
    mark_incomplete,
    remove_tree,
)
from bioimageio_core.tensor import Tensor


def _store_format(path: Path) -> int:
    """The zarr format (2 or 3) of the existing store at ``path`` (3 when it has no metadata)."""
    if (path / ".zgroup").exists() or (path / ".zarray").exists():
        return 2
    return 3


def _array_folder(location: FileLocation, ome: bool) -> Path:
    member = (location.member or "").strip("/")
    return location.path / member if member else location.path / (OME_LEVEL if ome else "")


def _member_folder(store: Path, member: str) -> Path | None:
    """The folder of ``member`` inside the local ``store`` (None if it would leave the store)."""
    folder = (store / member.strip("/")).resolve()
    return folder if folder.is_relative_to(store.resolve()) and folder != store.resolve() else None


class _Layout:
    """Where and how an output array is stored: its stored axes, shape and chunks."""

    def __init__(self, location: FileLocation, request: OutputRequest) -> None:
        self.location = location
        self.request = request
        self.ome = location.member is None and is_ome_name(location.path)
        dims, shape = request.dims, request.shape
        self.name = str(final_path(location.path))  # for messages: the output, not its stage
        self.stored = stored_axes(dims, shape, self.name) if self.ome else dims
        chunks = request.chunks or default_chunks(shape, request.dtype.itemsize, dims)
        if len(chunks) != len(shape) or any(int(c) < 1 for c in chunks):
            raise ValueError(f"chunks {tuple(chunks)} do not fit an array of shape {shape}")
        # an axis left out of the store has size 1: its chunk is 1 too
        self.chunks = tuple(min(int(c), max(int(s), 1)) for c, s in zip(chunks, shape, strict=True))
        by_dim = dict(zip(dims, zip(shape, self.chunks, strict=True), strict=True))
        self.stored_shape = tuple(int(by_dim[d][0]) for d in self.stored)
        self.stored_chunks = tuple(int(by_dim[d][1]) for d in self.stored)
        self.path = (location.member or "").strip("/") or (OME_LEVEL if self.ome else "")
        self.folder = _array_folder(location, self.ome)

    def names(self) -> list[str]:
        return [ngff_name(d) for d in self.stored] if self.ome else list(self.stored)

    def view(self, array: Any) -> Any:
        return AxesView(array, self.request.dims, self.stored) if self.ome else array

    def record(self) -> ChunkRecord:
        grid = ChunkGrid(self.request.shape, self.chunks)
        return ChunkRecord(self.folder / RECORD_FOLDER, grid)


def _compressors(zarr: Any, zarr_format: int) -> Any:
    """Blosc LZ4 with byte shuffling: about as small as zarr's default zstd for image data and
    several times faster to write (a prediction should not wait for its compressor)."""
    if zarr_format == 2:
        blosc = require("numcodecs", "zarr", "writing zarr v2").Blosc
        return blosc(cname="lz4", clevel=5, shuffle=blosc.SHUFFLE)
    return zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")


def _new_array(zarr: Any, layout: _Layout) -> Any:
    location, request = layout.location, layout.request
    zarr_format = _store_format(location.path) if location.member else 3
    kwargs: dict[str, Any] = {
        "shape": layout.stored_shape,
        "chunks": layout.stored_chunks,
        "dtype": request.dtype,
        "fill_value": np.zeros((), request.dtype).item(),
        "compressors": _compressors(zarr, zarr_format),
        "overwrite": True,
    }
    if zarr_format == 3:
        kwargs["dimension_names"] = layout.names()
    if location.member or layout.ome:
        root = zarr.open_group(store=str(location.path), mode="a", zarr_format=zarr_format)
        parent_path, _, name = layout.path.rpartition("/")
        parent = root.require_group(parent_path) if parent_path else root
        array = parent.create_array(name, **kwargs)
    else:
        array = zarr.create_array(store=str(location.path), zarr_format=zarr_format, **kwargs)
    if zarr_format == 2:
        array.attrs[DIMS_ATTR] = layout.names()
    if request.fingerprint is not None:
        array.attrs[FINGERPRINT_ATTR] = request.fingerprint
    mark_incomplete(array.attrs)
    if layout.ome:
        metadata = request.metadata.for_dims(request.dims) if request.metadata else None
        root.attrs.update(image_attributes(array, layout.stored, metadata, layout.path))
    return array


def _existing_array(zarr: Any, layout: _Layout) -> Any:
    """The array already at the output's place (None when there is none)."""
    if not layout.folder.is_dir():
        return None
    try:
        node = zarr.open(store=str(layout.location.path), path=layout.path, mode="r+")
    except FileNotFoundError:
        return None
    except (KeyError, ValueError, OSError) as e:
        raise OutputError(f"cannot resume {layout.name}: it is not readable zarr ({e})") from e
    return node if hasattr(node, "shape") else None


def _check_matches(array: Any, layout: _Layout) -> None:
    """Refuse to resume an output that differs from what this run writes."""
    request = layout.request
    found = {
        "shape": tuple(int(s) for s in array.shape),
        "dtype": str(np.dtype(array.dtype)),
        "chunks": tuple(int(c) for c in array.chunks),
        "axes": array_axes(array) or (),
        "run": array.attrs.get(FINGERPRINT_ATTR),
    }
    wanted_axes = tuple(AXIS_LETTERS.get(n, n) for n in layout.names())
    wanted = {
        "shape": layout.stored_shape,
        "dtype": str(request.dtype),
        "chunks": layout.stored_chunks,
        "axes": wanted_axes,
        "run": request.fingerprint,
    }
    differ = [k for k in wanted if found[k] != wanted[k] and not (k == "axes" and not found[k])]
    if differ:
        what = "; ".join(f"{k} {found[k]} instead of {wanted[k]}" for k in differ)
        if "run" in differ:
            what = "it was written by a different run (model, inputs or settings differ)"
        raise OutputError(
            f"cannot resume {layout.name}: {what}",
            hint="run without resuming (with --overwrite) to write it anew, or choose another "
            "output path",
        )


def _finishers(array: Any, layout: _Layout) -> dict[str, Any]:
    location = layout.location

    def complete() -> None:
        mark_complete(array.attrs)

    def discard() -> None:
        if location.member:
            node = _member_folder(location.path, location.member)
            if node is not None:
                remove_tree(node)

    return {"complete": complete, "discard": discard}


def open_output(location: FileLocation, request: OutputRequest) -> RawArray:
    """A writable zarr array for ``request`` (see :class:`~bioimageio_core.io.OutputRequest`)."""
    zarr = import_zarr(f"writing {location}")
    layout = _Layout(location, request)
    if request.mode == "attach":
        array = _existing_array(zarr, layout)
        if array is None:
            raise OutputError(f"{layout.name} is not being written (no array at {layout.folder})")
        _check_matches(array, layout)
        return _raw_array(layout, array, request, layout.record(), finishing=False)
    if request.mode == "resume":
        array = _existing_array(zarr, layout)
        if array is not None and COMPLETE_ATTR in array.attrs:
            _check_matches(array, layout)
            complete = bool(array.attrs[COMPLETE_ATTR])
            if not complete:
                mark_incomplete(array.attrs)  # this process is its writer now
            return _raw_array(layout, array, request, layout.record(), is_complete=complete)
        if array is not None:
            raise OutputError(
                f"cannot resume {layout.name}: it holds data bioimageio-run did not start",
                hint="choose another output path, or write it anew with --overwrite",
            )
    array = _new_array(zarr, layout)
    record = layout.record()
    record.clear()
    return _raw_array(layout, array, request, record)


def _raw_array(
    layout: _Layout,
    array: Any,
    request: OutputRequest,
    record: ChunkRecord,
    *,
    finishing: bool = True,
    is_complete: bool = False,
) -> RawArray:
    """The output ``array`` for ``request``: chunks written concurrently and recorded in
    ``record``; ``finishing``: this process marks it complete or removes it (not when attached
    to another's output)."""
    return RawArray(
        layout.view(array),
        request.dims,
        chunks=layout.chunks,
        concurrent=True,
        record=record,
        metadata=request.metadata,
        is_complete=is_complete,
        **(_finishers(array, layout) if finishing else {}),
    )


def _write(location: FileLocation, tensor: Tensor) -> None:
    open_output(location, OutputRequest(tensor.shape, tensor.dtype, tensor.dims)).fill(tensor.data)


def _probe(location: FileLocation) -> Existing:
    """A member of an existing store is written in place; anything else as a whole new store."""
    if not location.path.exists():
        return Existing(False)
    zarr = import_zarr(f"writing {location}")
    member = (location.member or "").strip("/")
    if member or not is_ome_name(location.path):
        path = member
    else:
        path = OME_LEVEL
    try:
        node = zarr.open(store=str(location.path), mode="r", path=path)
    except (OSError, KeyError, ValueError) as e:
        if not member:
            return Existing(True)  # not a readable store: replaced as a whole (with overwrite)
        if isinstance(e, FileNotFoundError) or "not found" in str(e).lower():
            return Existing(False, in_place=True)
        raise OutputError(
            f"cannot write into {location.path}: it is not a readable zarr store ({e})",
            hint="choose another output path, or remove it",
        ) from None
    is_array = hasattr(node, "shape")
    writer = incomplete_writer(node.attrs) if is_array else None
    marked = is_array and COMPLETE_ATTR in node.attrs
    return Existing(True, in_place=bool(member), writer=writer, marked=marked)


ZARR = FileFormat(
    name="zarr",
    suffixes=(".zarr",),
    read=read_zarr,
    write=_write,
    has_members=True,
    directory=True,
    probe=_probe,
    open_output=open_output,
    resumable=True,
    concurrent=True,
    remote=True,
)
