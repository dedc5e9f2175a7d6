"""Unpack a SavedModel zip safely, once, into the cache.

The folder is ``<cache>/tensorflow-saved-model/<sha256 of the zip>/``; it is written through a
staging folder and renamed into place, so a folder that exists is complete. Members with absolute
paths, ``..`` components, backslashes or symbolic links are refused, and so is a zip that unpacks
to more than ``max_bytes`` (:func:`bioimageio_core.sources.zips.extract_all`).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from bioimageio_core.plugin import SourceError, extract_all, sha256_of_file

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


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
    folder = cache / "tensorflow-saved-model" / (sha256 or sha256_of_file(archive_path))
    extract_all(archive_path, folder, max_bytes=max_bytes, label=name)
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
