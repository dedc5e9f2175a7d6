"""Parse file references with an optional member: ``file.npz:name``, ``file.h5:/group/data``."""

from __future__ import annotations

import os
from pathlib import Path

import attrs

CONTAINER_SUFFIXES = (".npz", ".h5", ".hdf5", ".hdf", ".zarr")
"""Suffixes of files that hold several arrays; a member may follow after ``:``."""

_ZARR_MARKERS = ("zarr.json", ".zarray", ".zgroup")


def is_zarr_dir(path: Path) -> bool:
    """True for a folder that is a zarr store (v2 or v3 metadata at its top)."""
    return path.is_dir() and any((path / m).exists() for m in _ZARR_MARKERS)


@attrs.frozen
class FileLocation:
    """A file (or zarr folder) and, for container formats, the member inside it."""

    path: Path
    member: str | None = None

    @property
    def suffix(self) -> str:
        """Lower-case suffix that selects the format (``.tif`` for ``.ome.tif``)."""
        if is_zarr_dir(self.path):
            return ".zarr"
        return self.path.suffix.lower()

    def __str__(self) -> str:
        return str(self.path) if self.member is None else f"{self.path}:{self.member}"


def parse_location(source: str | os.PathLike[str]) -> FileLocation:
    """Split ``source`` into a path and a member (``None`` when there is none).

    The text after the last ``:`` is a member when the whole text is not an existing path and the
    part before it names a container (``.npz``, ``.h5``, ``.hdf5``, ``.hdf``, ``.zarr`` or a zarr
    folder) or an existing file (the format then says whether it has members). A Windows drive letter (``C:\\data.npy``) is never taken for a member.
    """
    text = os.fspath(source)
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
