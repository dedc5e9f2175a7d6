"""Parse file references with an optional member: ``file.npz:name``, ``file.h5:/group/data``.

Remote stores are fsspec URLs (``https://host/data.zarr``, ``s3://bucket/data.zarr:raw``): their
``FileLocation`` carries the ``url``, and ``path`` is the URL's path (for suffixes and names).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import attrs

CONTAINER_SUFFIXES = (".npz", ".h5", ".hdf5", ".hdf", ".zarr")
"""Suffixes of files that hold several arrays; a member may follow after ``:``."""

_ZARR_MARKERS = ("zarr.json", ".zarray", ".zgroup")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def is_zarr_dir(path: Path) -> bool:
    """True for a folder that is a zarr store (v2 or v3 metadata at its top)."""
    return path.is_dir() and any((path / m).exists() for m in _ZARR_MARKERS)


def is_url(text: str | os.PathLike[str]) -> bool:
    """Whether ``text`` is a URL with a scheme other than ``file:`` (``https://``, ``s3://``…)."""
    value = os.fspath(text)
    return bool(_URL.match(value)) and not value.lower().startswith("file://")


@attrs.frozen
class FileLocation:
    """A file (or zarr folder) and, for container formats, the member inside it.

    ``url`` is set for remote locations (then ``path`` is only the URL's path part).
    """

    path: Path
    member: str | None = None
    url: str | None = None

    @property
    def suffix(self) -> str:
        """Lower-case suffix that selects the format (``.tif`` for ``.ome.tif``)."""
        if self.url is None and is_zarr_dir(self.path):
            return ".zarr"
        return self.path.suffix.lower()

    @property
    def is_remote(self) -> bool:
        return self.url is not None

    def __str__(self) -> str:
        where = self.url if self.url is not None else str(self.path)
        return where if self.member is None else f"{where}:{self.member}"


def _parse_url(text: str) -> FileLocation:
    parts = urlsplit(text)
    path_part = parts.path
    member: str | None = None
    if ":" in path_part:
        left, right = path_part.rsplit(":", 1)
        if Path(left).suffix.lower() in CONTAINER_SUFFIXES:
            path_part, member = left, right or None
    url = parts._replace(path=path_part).geturl()
    return FileLocation(Path(unquote(path_part) or "/"), member, url=url.rstrip("/"))


def parse_location(source: str | os.PathLike[str]) -> FileLocation:
    """Split ``source`` into a path and a member (``None`` when there is none).

    The text after the last ``:`` is a member when the whole text is not an existing path and the
    part before it names a container (``.npz``, ``.h5``, ``.hdf5``, ``.hdf``, ``.zarr`` or a zarr
    folder) or an existing file (the format then says whether it has members). A Windows drive
    letter (``C:\\data.npy``) is never taken for a member. URLs (``https://…/data.zarr:raw``)
    give a remote location; ``file://`` URLs a local path.
    """
    text = os.fspath(source)
    if is_url(text):
        return _parse_url(text)
    if text.lower().startswith("file://"):
        text = unquote(urlsplit(text).path)
    path = Path(text)
    if path.exists() or ":" not in text:
        return FileLocation(path)
    left, member = text.rsplit(":", 1)
    left_path = Path(left)
    if left and (
        left_path.suffix.lower() in CONTAINER_SUFFIXES
        or left_path.is_file()
        or is_zarr_dir(left_path)
    ):
        return FileLocation(left_path, member or None)
    return FileLocation(path)
