"""Unpack a SavedModel zip safely, once, into the cache.

The folder is ``<cache>/tensorflow-saved-model/<sha256 of the zip>/``; it is written through a
staging folder and renamed into place, so a folder that exists is complete. Members with absolute
paths, ``..`` components or symbolic links are refused, and so is a zip that unpacks to more than
``max_bytes``.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from bioimageio_core.errors import SourceError

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_members(archive: zipfile.ZipFile, name: str, max_bytes: int) -> None:
    total = 0
    for info in archive.infolist():
        member = PurePosixPath(info.filename.replace("\\", "/"))
        if (
            member.is_absolute()
            or ".." in member.parts
            or (member.parts and ":" in member.parts[0])
        ):
            raise SourceError(
                f"refusing to unpack {name}: member {info.filename!r} would land outside the "
                "target folder",
                hint="the SavedModel zip must contain only relative paths",
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise SourceError(
                f"refusing to unpack {name}: member {info.filename!r} is a symbolic link",
                hint="zip the SavedModel folder without symbolic links",
            )
        total += info.file_size
        if total > max_bytes:
            raise SourceError(
                f"refusing to unpack {name}: it holds more than {max_bytes} bytes",
                hint="raise BIOIMAGEIO_MAX_DOWNLOAD_BYTES if the model is really that large",
            )


def unpack_saved_model(
    archive_path: Path, *, cache: Path, sha256: str | None, max_bytes: int, name: str
) -> Path:
    """The folder holding ``saved_model.pb`` from the zip ``archive_path`` (unpacked once)."""
    if archive_path.is_dir():
        return find_saved_model(archive_path, name)
    if not zipfile.is_zipfile(archive_path):
        raise SourceError(
            f"{name} is not a zip file",
            hint="tensorflow_saved_model_bundle weights are a zip of the SavedModel folder",
        )
    folder = cache / "tensorflow-saved-model" / (sha256 or sha256_of(archive_path))
    if not folder.is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        try:
            with zipfile.ZipFile(archive_path) as archive:
                _check_members(archive, name, max_bytes)
                archive.extractall(staging)
            try:
                staging.rename(folder)
            except OSError:  # unpacked by another process meanwhile
                if not folder.is_dir():
                    raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return find_saved_model(folder, name)


def find_saved_model(folder: Path, name: str) -> Path:
    """``folder`` or its single subfolder holding ``saved_model.pb``."""
    candidates = [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]
    found = [c for c in candidates if any((c / f).is_file() for f in SAVED_MODEL_FILES)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise SourceError(
            f"{name} holds no saved_model.pb (neither at its top nor in a top-level folder)",
            hint="zip the folder written by tf.saved_model.save / model.export",
        )
    raise SourceError(
        f"{name} holds several SavedModels: {[str(f.relative_to(folder)) for f in found]}",
        hint="zip exactly one SavedModel folder",
    )
