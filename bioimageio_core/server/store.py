"""Uploaded packages, kept by the sha256 of their bytes (``<store>/<sha256>.zip``).

A package is written under a temporary name while it arrives, its digest compared with the one
the client announced, its zip checked (no unsafe members, a description inside), then renamed
into place: a package in the store is always complete and valid as a zip.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio.to_thread

from bioimageio_core.errors import SourceError
from bioimageio_core.server.errors import ApiError
from bioimageio_core.sources.resolve import find_yaml_name
from bioimageio_core.sources.zips import check_zip

_PART = ".upload-"
_FLUSH_BYTES = 4 * 1024 * 1024


class PackageStore:
    """The folder of uploaded packages."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, sha256: str) -> Path:
        return self.folder / f"{sha256}.zip"

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def prepare(self) -> None:
        """Create the folder and remove uploads a killed server left behind."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SourceError(
                f"cannot create the package store {self.folder}: {e.strerror or e}",
                hint="give a writable folder with --store",
            ) from None
        for part in self.folder.glob(f"{_PART}*"):
            part.unlink(missing_ok=True)

    async def receive(self, sha256: str, chunks: AsyncIterator[bytes], max_bytes: int) -> None:
        """Store the package streamed in ``chunks`` whose digest must be ``sha256``.

        Raises:
            ApiError: too large (413), digest mismatch (400), not a valid package (422).
        """
        part = self.folder / f"{_PART}{uuid.uuid4().hex}.part"
        digest = hashlib.sha256()
        size = 0
        pending: list[bytes] = []
        pending_size = 0
        try:
            with part.open("wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise ApiError.too_large("package", max_bytes)
                    digest.update(chunk)
                    pending.append(chunk)
                    pending_size += len(chunk)
                    if pending_size >= _FLUSH_BYTES:
                        await anyio.to_thread.run_sync(out.write, b"".join(pending))
                        pending, pending_size = [], 0
                if pending:
                    await anyio.to_thread.run_sync(out.write, b"".join(pending))
            actual = digest.hexdigest()
            if actual != sha256:
                raise ApiError(
                    400,
                    "HashMismatch",
                    f"the uploaded package has sha256 {actual}, not {sha256} as the URL says",
                    hint="PUT the package to /v1/packages/<sha256 of its bytes>",
                )
            await anyio.to_thread.run_sync(_check_package, part)
            os.replace(part, self.path(sha256))
        finally:
            part.unlink(missing_ok=True)


def _check_package(path: Path) -> None:
    """A safe zip holding a description, or :class:`ApiError` 422."""
    try:
        names = check_zip(path, label="the uploaded package")
        find_yaml_name(names, where="the uploaded package")
    except SourceError as e:
        raise ApiError(422, "InvalidPackage", e.message, hint=e.hint) from None


__all__ = ["PackageStore"]
