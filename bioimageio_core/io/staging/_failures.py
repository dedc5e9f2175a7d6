"""What went wrong writing an output, said so that a user can act on it."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from bioimageio_core.errors import BioimageioError, OutputError, OutputExistsError
from bioimageio_core.io.staging._names import PathLike

OVERWRITE_HINT = (
    "pass --overwrite (overwrite=True in Python) to replace it, or choose another output path"
)


def exists_error(existing: Sequence[PathLike]) -> OutputExistsError:
    """The one message for outputs that exist already (every command uses it)."""
    more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
    return OutputExistsError(f"output {existing[0]} exists already{more}", hint=OVERWRITE_HINT)


def refuse_existing(paths: Iterable[PathLike], overwrite: bool) -> None:
    """Raise :class:`OutputExistsError` for paths that exist, unless ``overwrite``."""
    if overwrite:
        return
    existing = [p for p in paths if os.path.lexists(p)]
    if existing:
        raise exists_error(existing)


_REASONS: Mapping[int, tuple[str, str]] = {
    errno.ENOSPC: (
        "the disk is full (no space left on device)",
        "free space on that disk or write the output to another one",
    ),
    errno.EDQUOT: (
        "the disk quota is exceeded",
        "free space within your quota or write the output elsewhere",
    ),
    errno.EFBIG: (
        "the file would exceed the file size limit (`ulimit -f`) or the largest file the file "
        "system can hold",
        "raise the limit, or write a format stored in many files (.zarr)",
    ),
    errno.EROFS: ("the file system is read-only", "write the output to a writable folder"),
    errno.EACCES: ("permission denied", "write the output to a folder you may write to"),
    errno.EPERM: ("operation not permitted", "write the output to a folder you may write to"),
    errno.EIO: ("an input/output error of the device", "check the disk, or write elsewhere"),
    errno.ENAMETOOLONG: ("the file name is too long", "choose a shorter output name"),
}
_MESSAGE_ERRNOS: tuple[tuple[str, int], ...] = (
    ("no space left on device", errno.ENOSPC),
    ("disk quota exceeded", errno.EDQUOT),
    ("file too large", errno.EFBIG),
    ("read-only file system", errno.EROFS),
)
_ERRNO_IN_TEXT = re.compile(r"errno\s*=\s*(\d+)")
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")


def write_errno(error: BaseException) -> int | None:
    """The errno of a failed write; also found in the messages of libraries that lose it (h5py
    writes it into the text, numpy reports a short write without one)."""
    code = getattr(error, "errno", None)
    if isinstance(code, int) and code in _REASONS:
        return code
    text = str(error).lower()
    for match in _ERRNO_IN_TEXT.finditer(text):
        if int(match.group(1)) in _REASONS:
            return int(match.group(1))
    for phrase, phrase_code in _MESSAGE_ERRNOS:
        if phrase in text:
            return phrase_code
    if _SHORT_WRITE.search(text):
        return _short_write_cause()
    return code if isinstance(code, int) else None


def _short_write_cause() -> int:
    """Why a write stopped short when the library lost the errno: the file size limit when one
    is set, else (by far the most common cause) a full disk."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
        if soft != resource.RLIM_INFINITY:
            return errno.EFBIG
    except (ImportError, ValueError, OSError):
        pass
    return errno.ENOSPC


def output_error(final: PathLike, error: BaseException, *, replaced: bool = False) -> OutputError:
    """An :class:`OutputError` saying why ``final`` could not be written and that nothing of it
    was left behind."""
    code = write_errno(error)
    reason, hint = _REASONS.get(code or -1, (getattr(error, "strerror", None) or str(error), ""))
    kept = f"; the existing {Path(final).name} is unchanged" if replaced else ""
    return OutputError(
        f"could not write {final}: {reason}. The incomplete data was removed{kept}",
        hint=hint or None,
    )


def is_write_failure(error: BaseException, staged_path: Path) -> bool:
    """An OSError of writing the staged output (not of reading some input on the way)."""
    if not isinstance(error, OSError) or isinstance(error, BioimageioError):
        return False
    if write_errno(error) not in _REASONS:
        return False
    filename = getattr(error, "filename", None)
    if filename is None:
        return True
    if not isinstance(filename, (str, bytes, os.PathLike)):
        return True
    named = os.path.abspath(os.fsdecode(filename))
    own = os.path.abspath(staged_path)
    return named == own or named.startswith(own + os.sep)
