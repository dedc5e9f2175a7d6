"""Zarr stores (extra ``zarr``, zarr-python >= 3; format v2 and v3 stores), read lazily.

``folder.zarr`` (one array, a group with exactly one array, or an OME-Zarr image: its
full-resolution level), ``folder.zarr:path/to/array`` (an array or image inside the store) and
``image.ome.zarr:N`` (resolution level N of an OME-Zarr image). Remote stores are read through
fsspec URLs (``https://…/data.zarr``; extra ``zarr-remote``). Axes come from OME-Zarr
metadata, v3 ``dimension_names`` or the ``_ARRAY_DIMENSIONS`` attribute (v2, xarray's
convention); OME-Zarr also gives units, pixel sizes and offsets (:mod:`._ngff`). Writing is in
:mod:`._zarr_output`, which also defines the format.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bioimageio_core.errors import NetworkError, OfflineError, SourceError
from bioimageio_core.io._deps import MissingOptionalDependencyError, require
from bioimageio_core.io._format import RawArray
from bioimageio_core.io._location import FileLocation
from bioimageio_core.io._metadata import ArrayMetadata
from bioimageio_core.io._ngff import (
    OmeImage,
    bioformats2raw_series,
    ome_version,
    read_image,
)
from bioimageio_core.io.axes import AXIS_LETTERS
from bioimageio_core.io.staging import (
    check_complete,
)
from bioimageio_core.settings import get_settings

DIMS_ATTR = "_ARRAY_DIMENSIONS"
FINGERPRINT_ATTR = "bioimageio_run_fingerprint"
"""Array attribute: the run an output belongs to (a resume must match it)."""
OME_LEVEL = "0"
"""Path of the (only) level of OME-Zarr images bioimageio-run writes."""


def import_zarr(purpose: str) -> Any:
    """zarr-python >= 3, or an error naming the extra to install."""
    zarr = require("zarr", "zarr", purpose)
    if int(str(zarr.__version__).split(".")[0]) < 3:
        raise MissingOptionalDependencyError("zarr>=3", "zarr", purpose)
    return zarr


def is_ome_name(path: Path) -> bool:
    """Whether an output at ``path`` is written as an OME-Zarr image (``*.ome.zarr``)."""
    return path.name.lower().endswith(".ome.zarr")


def _storage_options(url: str) -> dict[str, Any]:
    """fsspec options for ``url``: our user agent and timeouts for HTTP."""
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
    zarr = import_zarr(f"reading {location}")
    if location.url is None:
        return zarr.storage.LocalStore(str(location.path), read_only=True)
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


def array_axes(array: Any) -> tuple[str, ...] | None:
    """The axis ids a zarr array records (v3 ``dimension_names``, v2 ``_ARRAY_DIMENSIONS``)."""
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
    dims = image.dims if len(image.dims) == array.ndim else array_axes(array)
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
        return _raw(array, array_axes(array), None, location)
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


def read_zarr(location: FileLocation, mmap: bool) -> RawArray:
    """The array ``location`` names (see the module docstring), opened lazily."""
    zarr = import_zarr(f"reading {location}")
    store = _store(location)
    member = (location.member or "").strip("/")
    root = _open_node(zarr, store, "", location)
    if root is None:
        raise SourceError(
            f"{location.url or location.path} is not a zarr store (no metadata found)"
        )
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
    dims = array_axes(node)
    if member:  # an array listed as a level of its group's OME-Zarr image gets its metadata
        parent = _open_node(zarr, store, parent_path, location)
        image = _image_if_valid(parent, location) if parent is not None else None
        if image is not None and name in image.paths:
            level = image.paths.index(name)
            metadata = image.levels[level]
            dims = image.dims if len(image.dims) == node.ndim else dims
    return _raw(node, dims, metadata, location)
