"""Safe reading of ``.zip`` packages: members never escape, sizes are bounded."""

from __future__ import annotations

import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from bioimageio_core.errors import SourceError
from bioimageio_core.settings import ENV_PREFIX, get_settings
from bioimageio_core.sources.cache import atomic_target, cache_dir, cache_key

_CHUNK = 1024 * 1024


def check_zip(path: Path, *, max_bytes: int | None = None, label: str | None = None) -> list[str]:
    """Check every member of a zip package; return the member names.

    Raises :class:`SourceError` for a file that is no zip, a member with an absolute path, a
    ``..`` component or a backslash, a symlink member, or a total size above ``max_bytes``
    (default: ``BIOIMAGEIO_MAX_DOWNLOAD_BYTES``). Messages name the zip by ``label`` (e.g. the
    reference as written in a description) when given, else by its path.
    """
    limit = get_settings().max_download_bytes if max_bytes is None else max_bytes
    where = str(path) if label is None else label
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as e:
        raise SourceError(f"cannot read zip package {where}: {e}") from None
    total = 0
    names = []
    for info in infos:
        _check_member_name(where, info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise SourceError(
                f"unsafe zip package {where}: member {info.filename!r} is a symbolic link",
                hint="repackage the model without links",
            )
        total += info.file_size
        if total > limit:
            raise SourceError(
                f"zip package {where} unpacks to more than {limit} bytes",
                hint=f"raise {ENV_PREFIX}MAX_DOWNLOAD_BYTES if the package is expected to be this large",
            )
        names.append(info.filename)
    return names


def _check_member_name(where: str, name: str) -> None:
    problem = None
    if "\\" in name:
        problem = "contains a backslash"
    elif name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        problem = "is an absolute path (it would land outside the target folder)"
    elif ".." in PurePosixPath(name).parts:
        problem = "points outside the package ('..'; it would land outside the target folder)"
    elif not [p for p in PurePosixPath(name).parts if p != "."]:
        problem = "has no file name"
    if problem is not None:
        raise SourceError(
            f"unsafe zip package {where}: member {name!r} {problem}",
            hint="only use packages from sources you trust; repackage with relative member names",
        )


def member_name(reference: str) -> str:
    """The zip member name of a relative reference (``./a/b.npy`` -> ``a/b.npy``)."""
    parts = [p for p in PurePosixPath(reference.replace("\\", "/")).parts if p not in (".", "")]
    if not parts or parts[0] == "/" or ".." in parts:
        raise SourceError(f"file reference {reference!r} cannot point into a zip package")
    return "/".join(parts)


def read_member(path: Path, name: str, max_bytes: int) -> bytes:
    """The bytes of one member, refusing more than ``max_bytes``."""
    with zipfile.ZipFile(path) as zf:
        info = _get_info(zf, path, name)
        if info.file_size > max_bytes:
            raise SourceError(f"{name} in {path} is larger than {max_bytes} bytes")
        with zf.open(info) as f:
            data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SourceError(f"{name} in {path} is larger than {max_bytes} bytes")
    return data


def extract_member(path: Path, name: str) -> Path:
    """Extract one (checked) member into the cache and return its path there.

    Extraction happens once per (zip path, mtime, size); the copy is written atomically.
    """
    check_zip(path)
    st = path.stat()
    key = cache_key(str(path.resolve()), str(st.st_mtime_ns), str(st.st_size))
    target = cache_dir("unzipped", key).joinpath(*PurePosixPath(name).parts)
    if target.is_file():
        return target
    limit = get_settings().max_download_bytes
    with zipfile.ZipFile(path) as zf:
        info = _get_info(zf, path, name)
        with zf.open(info) as src, atomic_target(target) as out:
            written = 0
            while chunk := src.read(_CHUNK):
                written += len(chunk)
                if written > limit:
                    raise SourceError(f"{name} in {path} unpacks to more than {limit} bytes")
                out.write(chunk)
    return target


def extract_all(
    path: Path, folder: Path, *, max_bytes: int | None = None, label: str | None = None
) -> Path:
    """Unpack the whole (checked, see :func:`check_zip`) zip ``path`` into ``folder``, once.

    ``folder`` is written through a staging folder next to it and renamed into place, so a
    ``folder`` that exists is complete and is returned as it is. Nothing is left behind when a
    check fails.
    """
    if folder.is_dir():
        return folder
    check_zip(path, max_bytes=max_bytes, label=label)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        with zipfile.ZipFile(path) as zf:
            zf.extractall(staging)
        try:
            staging.rename(folder)
        except OSError:  # unpacked by another process meanwhile
            if not folder.is_dir():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def _get_info(zf: zipfile.ZipFile, path: Path, name: str) -> zipfile.ZipInfo:
    try:
        return zf.getinfo(name)
    except KeyError:
        raise SourceError(f"file not found: {name} (not in zip package {path})") from None
