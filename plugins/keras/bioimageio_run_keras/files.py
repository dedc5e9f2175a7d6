"""Give Keras a weights file under the suffix it dispatches on (``.h5`` / ``.keras``)."""

from __future__ import annotations

import os
from pathlib import Path

from bioimageio_core.plugin import link_or_copy, sha256_of_file


def with_suffix(path: Path, suffixes: tuple[str, ...], *, cache: Path, sha256: str | None) -> Path:
    """``path`` itself when its suffix is one of ``suffixes``; else a link (or copy) in the cache.

    Keras picks its loader from the file name, while a download cache may name files otherwise.
    """
    if path.suffix.lower() in suffixes:
        return path
    key = sha256 or sha256_of_file(path)
    target = cache / "keras-weights" / key / f"weights{suffixes[0]}"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}")
    link_or_copy(path, staging)
    os.replace(staging, target)
    return target
