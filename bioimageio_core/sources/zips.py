"""Safe reading of ``.zip`` packages: members never escape, sizes are bounded, the index is read
once, extracted copies are keyed by the package's content and checked before each use."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import threading
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path, PurePosixPath

import attrs

from bioimageio_core.errors import SourceError
from bioimageio_core.settings import ENV_PREFIX, get_settings
from bioimageio_core.sources.cache import (
    StatKey,
    cache_dir,
    cache_error,
    cache_write,
    forget_hash,
    sha256_of_file,
    stat_key,
)

_CHUNK = 1024 * 1024
_OPEN_MAX = 4
"""Zip packages kept open (with their parsed index) at a time."""


@attrs.frozen(eq=False)
class _Package:
    """An open zip file with its checked index, valid while the file's stat key is unchanged."""

    key: StatKey
    pid: int
    zf: zipfile.ZipFile
    infos: dict[str, zipfile.ZipInfo]
    names: tuple[str, ...]
    total_size: int
    unsafe: tuple[str, str, str] | None
    """(member, problem, hint) of the first unsafe member, reported on every use."""


_packages: OrderedDict[str, _Package] = OrderedDict()
_packages_lock = threading.Lock()
_verified: dict[tuple[str, StatKey], int] = {}
"""Extracted copies known to match their member's CRC-32: (path, stat key) -> CRC-32."""
_VERIFIED_MAX = 65536


def _package(path: Path, where: str) -> _Package:
    """The open, indexed package at ``path``; its index is read again only when the file changed
    (stat key) or in a new process."""
    name = str(path.resolve())
    try:
        key = stat_key(path.stat())
    except FileNotFoundError:
        raise SourceError(
            f"zip package {where} no longer exists (moved or deleted, or the cache emptied "
            "meanwhile?)",
            hint="run the command again",
        ) from None
    except OSError as e:
        raise SourceError(f"cannot read zip package {where}: {e.strerror or e}") from None
    with _packages_lock:
        known = _packages.get(name)
        if known is not None and known.key == key and known.pid == os.getpid():
            _packages.move_to_end(name)
            return known
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise SourceError(f"cannot read zip package {where}: {e}") from None
    infos: dict[str, zipfile.ZipInfo] = {}
    unsafe: tuple[str, str, str] | None = None
    total = 0
    for info in zf.infolist():
        total += info.file_size
        if unsafe is None:
            unsafe = _member_problem(info)
        if unsafe is None and info.filename in infos:
            unsafe = (info.filename, "appears twice", "repackage the model")
        infos.setdefault(info.filename, info)
    package = _Package(key, os.getpid(), zf, infos, tuple(infos), total, unsafe)
    with _packages_lock:
        # a package dropped here is closed once no reader holds it any more
        _packages.pop(name, None)
        _packages[name] = package
        while len(_packages) > _OPEN_MAX:
            _packages.popitem(last=False)
    return package


def _member_problem(info: zipfile.ZipInfo) -> tuple[str, str, str] | None:
    name = info.filename
    hint = "only use packages from sources you trust; repackage with relative member names"
    problem = None
    if "\\" in name:
        problem = "contains a backslash"
    elif name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        problem = "is an absolute path (it would land outside the target folder)"
    elif ".." in PurePosixPath(name).parts:
        problem = "points outside the package ('..'; it would land outside the target folder)"
    elif not [p for p in PurePosixPath(name).parts if p != "."]:
        problem = "has no file name"
    elif stat.S_ISLNK(info.external_attr >> 16):
        problem = "is a symbolic link"
        hint = "repackage the model without links"
    return None if problem is None else (name, problem, hint)


def _checked(path: Path, max_bytes: int | None, label: str | None) -> _Package:
    limit = get_settings().max_download_bytes if max_bytes is None else max_bytes
    where = str(path) if label is None else label
    package = _package(path, where)
    if package.unsafe is not None:
        member, problem, hint = package.unsafe
        raise SourceError(f"unsafe zip package {where}: member {member!r} {problem}", hint=hint)
    if package.total_size > limit:
        raise SourceError(
            f"zip package {where} unpacks to more than {limit} bytes",
            hint=f"raise {ENV_PREFIX}MAX_DOWNLOAD_BYTES if the package is expected to be this large",
        )
    return package


def check_zip(path: Path, *, max_bytes: int | None = None, label: str | None = None) -> list[str]:
    """Check every member of a zip package; return the member names.

    Raises :class:`SourceError` for a file that is no zip, a member with an absolute path, a
    ``..`` component or a backslash, a symlink member, or a total size above ``max_bytes``
    (default: ``BIOIMAGEIO_MAX_DOWNLOAD_BYTES``). Messages name the zip by ``label`` (e.g. the
    reference as written in a description) when given, else by its path. The index of a package
    is read once per process while the file is unchanged.
    """
    return list(_checked(path, max_bytes, label).names)


def member_name(reference: str) -> str:
    """The zip member name of a relative reference (``./a/b.npy`` -> ``a/b.npy``)."""
    parts = [p for p in PurePosixPath(reference.replace("\\", "/")).parts if p not in (".", "")]
    if not parts or parts[0] == "/" or ".." in parts:
        raise SourceError(f"file reference {reference!r} cannot point into a zip package")
    return "/".join(parts)


def read_member(path: Path, name: str, max_bytes: int) -> bytes:
    """The bytes of one member, refusing more than ``max_bytes``."""
    package = _checked(path, None, None)
    info = _get_info(package, path, name)
    if info.file_size > max_bytes:
        raise SourceError(f"{name} in {path} is larger than {max_bytes} bytes")
    try:
        with package.zf.open(info) as f:
            data = f.read(max_bytes + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise _corrupt(path, name, e) from None
    if len(data) > max_bytes:
        raise SourceError(f"{name} in {path} is larger than {max_bytes} bytes")
    return data


def zip_content_key(path: Path) -> str:
    """The cache key of a package's extracted members: the sha256 of the zip file (computed
    once per file and unchanged stat key, see :func:`~bioimageio_core.sources.cache.sha256_of_file`)."""
    return sha256_of_file(path)


def extract_member(path: Path, name: str) -> Path:
    """Extract one (checked) member into the cache and return its path there.

    Members live under ``unzipped/<sha256 of the zip>/``, so a package replaced by another
    (even of the same size and modification time) never reuses the old members. A copy already
    in the cache is handed out only after it is checked against the package's index (size and
    CRC-32): a copy that is corrupt, or that belongs to other content than the zip now holds, is
    extracted again (and the zip's sha256 computed again).
    """
    package = _checked(path, None, None)
    info = _get_info(package, path, name)
    target = _member_path(path, name)
    if _matches(target, info):
        return target
    if target.exists():  # stale or corrupt: the package may have changed, hash it again
        forget_hash(path)
        target = _member_path(path, name)
        if _matches(target, info):
            return target
    return _extract(package, path, info, target)


def _member_path(path: Path, name: str) -> Path:
    try:
        key = zip_content_key(path)
    except OSError as e:
        raise SourceError(f"cannot read zip package {path}: {e.strerror or e}") from None
    return cache_dir("unzipped", key).joinpath(*PurePosixPath(name).parts)


def _matches(target: Path, info: zipfile.ZipInfo) -> bool:
    """Whether the cached copy ``target`` has the member's size and CRC-32 (memo per stat key)."""
    try:
        key = (str(target), stat_key(target.stat()))
    except OSError:
        return False
    if key[1][2] != info.file_size:
        return False
    if _verified.get(key) == info.CRC:
        return True
    crc = 0
    try:
        with target.open("rb") as f:
            while chunk := f.read(_CHUNK):
                crc = zlib.crc32(chunk, crc)
    except OSError:
        return False
    if crc != info.CRC:
        return False
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()
    _verified[key] = crc
    return True


def _extract(package: _Package, path: Path, info: zipfile.ZipInfo, target: Path) -> Path:
    limit = get_settings().max_download_bytes
    try:
        with package.zf.open(info) as src, cache_write(target) as out:
            written = 0
            while chunk := src.read(_CHUNK):
                written += len(chunk)
                if written > limit:
                    raise SourceError(
                        f"{info.filename} in {path} unpacks to more than {limit} bytes"
                    )
                out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise _corrupt(path, info.filename, e) from None
    return target


def _corrupt(path: Path, name: str, error: BaseException) -> SourceError:
    return SourceError(
        f"member {name} of zip package {path} is corrupt ({error})",
        hint="download or copy the package again; if it keeps failing, the package itself is "
        "damaged",
    )


def extract_all(
    path: Path, folder: Path, *, max_bytes: int | None = None, label: str | None = None
) -> Path:
    """Unpack the whole (checked, see :func:`check_zip`) zip ``path`` into ``folder``, once.

    ``folder`` is written through a staging folder next to it and renamed into place, so a
    ``folder`` that exists is complete and is returned as it is. Nothing is left behind when a
    check fails or a member is corrupt.
    """
    if folder.is_dir():
        return folder
    package = _checked(path, max_bytes, label)
    where = str(path) if label is None else label
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    except OSError as e:
        raise cache_error(e, folder, "unpacking into") from None
    try:
        try:
            package.zf.extractall(staging)
        except (zipfile.BadZipFile, zlib.error, EOFError) as e:
            raise SourceError(
                f"zip package {where} is corrupt ({e})",
                hint="download or copy the package again",
            ) from None
        except OSError as e:
            raise cache_error(e, folder, "unpacking into") from None
        try:
            staging.rename(folder)
        except OSError:  # unpacked by another process meanwhile
            if not folder.is_dir():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def _get_info(package: _Package, path: Path, name: str) -> zipfile.ZipInfo:
    info = package.infos.get(name)
    if info is None:
        raise SourceError(f"file not found: {name} (not in zip package {path})")
    return info
