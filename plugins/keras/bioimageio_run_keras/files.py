"""Give Keras a weights file under the suffix it dispatches on (``.h5`` / ``.keras``)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def with_suffix(path: Path, suffixes: tuple[str, ...], *, cache: Path, sha256: str | None) -> Path:
    """``path`` itself when its suffix is one of ``suffixes``; else a link (or copy) in the cache.

    Keras picks its loader from the file name, while a download cache may name files otherwise.
    """
    if path.suffix.lower() in suffixes:
        return path
    key = sha256 or sha256_of(path)
    target = cache / "keras-weights" / key / f"weights{suffixes[0]}"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}")
    try:
        os.link(path, staging)
    except OSError:
        shutil.copyfile(path, staging)
    os.replace(staging, target)
    return target
