"""The package a client uploads to a server: reproducible, so that it is uploaded once.

The same model gives the same bytes (and so the same sha256, the server's key for it) on every
run: members in a fixed order, a fixed timestamp and permissions, stored uncompressed (weights
hardly compress, and the server reads members without inflating them).
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from bioimageio_core.loading import dump_yaml
from bioimageio_core.packaging import PACKAGE_YAML_NAME, plan_package

if TYPE_CHECKING:
    from bioimageio_core.spec import ModelDescr

_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_MODE = 0o644 << 16


def _member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_DATE_TIME)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = _MODE
    return info


def write_upload_package(descr: ModelDescr, path: Path) -> Path:
    """Write ``descr`` and every file it references to the zip ``path`` (reproducibly).

    Files are fetched through the normal sources (sha256 checked) as for
    :func:`bioimageio_core.save_bioimageio_package`.
    """
    plan = plan_package(descr)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(_member(PACKAGE_YAML_NAME), dump_yaml(plan.data).encode("utf-8"))
        for f in plan.files:
            large = f.local_path.stat().st_size >= zipfile.ZIP64_LIMIT
            with (
                f.local_path.open("rb") as src,
                archive.open(_member(f.name), "w", force_zip64=large) as dst,
            ):
                shutil.copyfileobj(src, dst, 1024 * 1024)
    return path


@contextmanager
def upload_package(descr: ModelDescr) -> Iterator[Path]:
    """A reproducible package of ``descr`` in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bioimageio-upload-") as folder:
        yield write_upload_package(descr, Path(folder) / "package.zip")


__all__ = ["upload_package", "write_upload_package"]
