"""Zarr stores (extra ``zarr``, zarr-python >= 3; format v2 and v3 stores), read lazily.

Reading: ``folder.zarr`` (one array, a group with exactly one array, or an OME-Zarr image: its
full-resolution level), ``folder.zarr:path/to/array`` (an array or image inside the store) and
``image.ome.zarr:N`` (resolution level N of an OME-Zarr image). Remote stores are read through
fsspec URLs (``https://…/data.zarr``; extra ``zarr-remote``). Axes come from OME-Zarr
metadata, v3 ``dimension_names`` or the ``_ARRAY_DIMENSIONS`` attribute (v2, xarray's
convention); OME-Zarr also gives units, pixel sizes and offsets (:mod:`._ngff`).

Writing (:func:`open_output`): a new store holds one array at its top, or (``*.ome.zarr``) an
OME-Zarr 0.5 image with one level ``0``; ``store.zarr:path`` adds an array to an existing store
(in that store's zarr format). Every output records which chunks are finished
(:class:`~bioimageio_core.io._record.ChunkRecord`), so it can be resumed and written by several
processes at once, each writing whole chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bioimageio_core.errors import NetworkError, OfflineError, OutputError, SourceError
from bioimageio_core.io._chunks import ChunkGrid, default_chunks
from bioimageio_core.io._deps import MissingOptionalDependencyError, require
from bioimageio_core.io._format import Existing, FileFormat, OutputRequest, RawArray
from bioimageio_core.io._location import FileLocation
from bioimageio_core.io._metadata import ArrayMetadata
from bioimageio_core.io._ngff import (
    OmeImage,
    bioformats2raw_series,
    ngff_name,
    ome_version,
    read_image,
    stored_axes,
)
from bioimageio_core.io._record import RECORD_FOLDER, ChunkRecord
from bioimageio_core.io._view import AxesView
from bioimageio_core.io.axes import AXIS_LETTERS
from bioimageio_core.io.staging import (
    COMPLETE_ATTR,
    check_complete,
    final_path,
    incomplete_writer,
    mark_complete,
    mark_incomplete,
    remove_tree,
)
from bioimageio_core.tensor import Tensor

DIMS_ATTR = "_ARRAY_DIMENSIONS"
FINGERPRINT_ATTR = "bioimageio_run_fingerprint"
"""Array attribute: the run an output belongs to (a resume must match it)."""
OME_LEVEL = "0"
"""Path of the (only) level of OME-Zarr images bioimageio-run writes."""


def _zarr(purpose: str) -> Any:
    zarr = require("zarr", "zarr", purpose)
    if int(str(zarr.__version__).split(".")[0]) < 3:
        raise MissingOptionalDependencyError("zarr>=3", "zarr", purpose)
    return zarr


def is_ome_name(path: Path) -> bool:
    """Whether an output at ``path`` is written as an OME-Zarr image (``*.ome.zarr``)."""
    return path.name.lower().endswith(".ome.zarr")


# --------------------------------------------------------------------------------------------
# reading


def _storage_options(url: str) -> dict[str, Any]:
    """fsspec options for ``url``: our user agent and timeouts for HTTP."""
    from bioimageio_core.settings import get_settings

    settings = get_settings()
    if not url.lower().startswith(("http://", "https://")):
        return {}
    aiohttp = require("aiohttp", "zarr-remote", f"reading {url}")
    timeout = aiohttp.ClientTimeout(
        total=settings.http_total_timeout,
        sock_connect=settings.http_timeout,
        sock_read=settings.http_timeout,
    )
    return {"client_kwargs": {"timeout": timeout, "headers": {"User-Agent": settings.user_agent}}}


def _store(location: FileLocation) -> Any:
    """A read-only zarr store for ``location`` (local folder or fsspec URL)."""
    zarr = _zarr(f"reading {location}")
    if location.url is None:
        return zarr.storage.LocalStore(str(location.path), read_only=True)
    from bioimageio_core.settings import get_settings

    if get_settings().offline:
        raise OfflineError(
            f"cannot read {location}: remote stores are not read offline",
            missing=location.url,
            hint="copy the store to a local folder, or run without --offline",
        )
    require("fsspec", "zarr-remote", f"reading {location}")
    options = _storage_options(location.url)
    try:
        return zarr.storage.FsspecStore.from_url(
            location.url, storage_options=options, read_only=True
        )
    except (ImportError, ValueError) as e:
        raise SourceError(
            f"cannot open {location}: {e}",
            hint="install the fsspec implementation of this URL scheme (e.g. s3fs for s3://)",
        ) from e


def _open_node(zarr: Any, store: Any, path: str, location: FileLocation) -> Any:
    """The array or group at ``path`` in ``store`` (None when there is none)."""
    try:
        return zarr.open(store=store, path=path, mode="r")
    except FileNotFoundError:
        return None
    except (KeyError, ValueError) as e:
        raise SourceError(f"cannot open {location} as zarr: {e}") from e
    except OSError as e:
        if location.url is not None:
            raise NetworkError(f"cannot read {location}: {e}") from e
        raise SourceError(f"cannot open {location} as zarr: {e}") from e
    except Exception as e:  # aiohttp and fsspec errors of remote stores
        if location.url is not None and type(e).__module__.split(".")[0] in ("aiohttp", "fsspec"):
            raise NetworkError(f"cannot read {location}: {type(e).__name__}: {e}") from e
        raise


def _ids(names: Sequence[Any] | None, ndim: int) -> tuple[str, ...] | None:
    if names is None:
        return None
    ids = tuple(AXIS_LETTERS.get(str(n), str(n)) for n in names if n is not None)
    if len(ids) != ndim or len(set(ids)) != ndim or not all(ids):
        return None
    return ids


def _array_axes(array: Any) -> tuple[str, ...] | None:
    metadata = getattr(array, "metadata", None)
    names = getattr(metadata, "dimension_names", None)
    return _ids(names, array.ndim) or _ids(array.attrs.get(DIMS_ATTR), array.ndim)


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def _level(
    zarr: Any, store: Any, base: str, image: OmeImage, index: int, location: FileLocation
) -> RawArray:
    if not 0 <= index < len(image.paths):
        raise SourceError(
            f"{location} names resolution level {index}, but the OME-Zarr image has "
            f"{len(image.paths)} level(s) (0 = full resolution … {len(image.paths) - 1})"
        )
    array = _open_node(zarr, store, _join(base, image.paths[index]), location)
    if array is None or not hasattr(array, "shape"):
        raise SourceError(f"{location}: level {index} ({image.paths[index]!r}) is not an array")
    dims = image.dims if len(image.dims) == array.ndim else _array_axes(array)
    return _raw(array, dims, image.levels[index], location)


def _raw(
    array: Any, dims: tuple[str, ...] | None, metadata: ArrayMetadata | None, location: Any
) -> RawArray:
    check_complete(array.attrs, str(location))
    chunks = tuple(int(c) for c in array.chunks)
    return RawArray(array, dims, chunks=chunks, metadata=metadata)


def _choose_in_group(
    zarr: Any, store: Any, group: Any, base: str, location: FileLocation
) -> RawArray:
    """The array a group stands for: an OME-Zarr image's full resolution, the first image of a
    bioformats2raw layout, or the group's only array."""
    image = read_image(group, str(location))
    if image is not None:
        return _level(zarr, store, base, image, 0, location)
    if bioformats2raw_series(dict(group.attrs)):
        series = _open_node(zarr, store, _join(base, "0"), location)
        if series is not None and not hasattr(series, "shape"):
            return _choose_in_group(zarr, store, series, _join(base, "0"), location)
    arrays = sorted(name for name, _ in group.arrays())
    images = sorted(
        name for name, child in group.groups() if ome_version(dict(child.attrs)) is not None
    )
    if len(arrays) == 1 and not images:
        array = group[arrays[0]]
        return _raw(array, _array_axes(array), None, location)
    if len(images) == 1 and not arrays:
        return _choose_in_group(zarr, store, group[images[0]], _join(base, images[0]), location)
    listed = [*arrays, *(f"{name} (image)" for name in images)]
    where = location.url or location.path
    example = arrays[0] if arrays else images[0] if images else "path/to/array"
    more = "" if location.url is None else " (a remote store cannot be listed)"
    raise SourceError(
        f"{location} holds {len(arrays)} arrays and {len(images)} images at "
        f"{base or 'its top'}{more} ({', '.join(listed[:10]) or 'none'}); choose one",
        hint=f"write '{where}:{_join(base, example)}'",
    )


def _image_if_valid(group: Any, location: FileLocation) -> OmeImage | None:
    """The OME-Zarr image of ``group``, None when it has none or its metadata is invalid (an
    array named by its path is then read without the metadata)."""
    try:
        return read_image(group, str(location))
    except SourceError:
        return None


def _read(location: FileLocation, mmap: bool) -> RawArray:
    zarr = _zarr(f"reading {location}")
    store = _store(location)
    member = (location.member or "").strip("/")
    root = _open_node(zarr, store, "", location)
    if root is None:
        raise SourceError(f"{location.url or location.path} is not a zarr store (no metadata found)")
    if member.isdigit() and not hasattr(root, "shape"):
        image = _image_if_valid(root, location)
        if image is not None:  # image.ome.zarr:N is resolution level N
            return _level(zarr, store, "", image, int(member), location)
    node = root if not member else _open_node(zarr, store, member, location)
    if node is None:
        raise SourceError(
            f"{location.url or location.path} has no array or group {member!r}",
            hint="check the path inside the store (e.g. with zarr.open_group(...).tree())",
        )
    if not hasattr(node, "shape"):
        return _choose_in_group(zarr, store, node, member, location)
    parent_path, _, name = member.rpartition("/")
    metadata: ArrayMetadata | None = None
    dims = _array_axes(node)
    if member:  # an array listed as a level of its group's OME-Zarr image gets its metadata
        parent = _open_node(zarr, store, parent_path, location)
        image = _image_if_valid(parent, location) if parent is not None else None
        if image is not None and name in image.paths:
            level = image.paths.index(name)
            metadata = image.levels[level]
            dims = image.dims if len(image.dims) == node.ndim else dims
    return _raw(node, dims, metadata, location)


# --------------------------------------------------------------------------------------------
# writing


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
        from bioimageio_core.io._ngff import image_attributes

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
        "axes": _array_axes(array) or (),
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
    zarr = _zarr(f"writing {location}")
    layout = _Layout(location, request)
    if request.mode == "attach":
        array = _existing_array(zarr, layout)
        if array is None:
            raise OutputError(f"{layout.name} is not being written (no array at {layout.folder})")
        _check_matches(array, layout)
        return RawArray(
            layout.view(array),
            request.dims,
            chunks=layout.chunks,
            concurrent=True,
            record=layout.record(),
            metadata=request.metadata,
        )
    if request.mode == "resume":
        array = _existing_array(zarr, layout)
        if array is not None and COMPLETE_ATTR in array.attrs:
            _check_matches(array, layout)
            complete = bool(array.attrs[COMPLETE_ATTR])
            if not complete:
                mark_incomplete(array.attrs)  # this process is its writer now
            return RawArray(
                layout.view(array),
                request.dims,
                chunks=layout.chunks,
                concurrent=True,
                record=layout.record(),
                metadata=request.metadata,
                is_complete=complete,
                **_finishers(array, layout),
            )
        if array is not None:
            raise OutputError(
                f"cannot resume {layout.name}: it holds data bioimageio-run did not start",
                hint="choose another output path, or write it anew with --overwrite",
            )
    array = _new_array(zarr, layout)
    record = layout.record()
    record.clear()
    return RawArray(
        layout.view(array),
        request.dims,
        chunks=layout.chunks,
        concurrent=True,
        record=record,
        metadata=request.metadata,
        **_finishers(array, layout),
    )


def _write(location: FileLocation, tensor: Tensor) -> None:
    request = OutputRequest(tensor.shape, tensor.dtype, tensor.dims)
    raw = open_output(location, request)
    try:
        raw.array[...] = np.asarray(tensor.data)
        raw.complete()
    except BaseException:
        raw.discard()
        raise


def _probe(location: FileLocation) -> Existing:
    """A member of an existing store is written in place; anything else as a whole new store."""
    if not location.path.exists():
        return Existing(False)
    zarr = _zarr(f"writing {location}")
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
    read=_read,
    write=_write,
    has_members=True,
    directory=True,
    probe=_probe,
    open_output=open_output,
    resumable=True,
    remote=True,
)
