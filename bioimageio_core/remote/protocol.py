"""The wire format between ``bioimageio-run serve`` and its clients (numpy and json only).

Arrays travel as an uncompressed ``.npz`` body (``numpy.savez``): one ``<tensor id>.npy`` member
per tensor, read back with ``allow_pickle=False``. Their axes travel next to the body, as JSON in
the :data:`AXES_HEADER` header: ``{"raw": ["batch", "channel", "y", "x"]}``. Errors are JSON
bodies ``{"error": {"type", "message", "hint", "loc"}}`` with a 4xx status for anything the
client can fix. Both the server and the client import this module; it imports neither side.
"""

from __future__ import annotations

import io
import json
import re
import threading
import zipfile
from collections.abc import Mapping, Sequence
from typing import IO, Any

import numpy as np

from bioimageio_core.errors import InputError

API_VERSION = "v1"
API_PREFIX = f"/{API_VERSION}"
AXES_HEADER = "Bioimageio-Axes"
"""Request and response header: JSON object of tensor id -> list of axis ids."""
NPZ_MEDIA_TYPE = "application/x-npz"
ARRAY_MEDIA_TYPES = (NPZ_MEDIA_TYPE, "application/octet-stream", "application/zip")
"""Content types a predict request may declare for its ``.npz`` body."""
TOKEN_ENV = "BIOIMAGEIO_SERVER_TOKEN"
MIN_TOKEN_LENGTH = 16
SHA256 = re.compile(r"[0-9a-f]{64}")
NUMERIC_KINDS = frozenset("biufc")
"""numpy dtype kinds accepted on the wire: bool, signed / unsigned int, float, complex."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_MAX_AXES_HEADER = 16 * 1024


class PayloadError(InputError):
    """A request or response body (or header) does not follow the wire format."""


def encode_arrays(arrays: Mapping[str, np.ndarray[Any, Any]]) -> bytes:
    """An uncompressed ``.npz`` holding ``arrays`` (member ``<id>.npy`` each)."""
    for name, array in arrays.items():
        _check_name(name)
        _check_dtype(name, np.asarray(array).dtype)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def decode_arrays(data: bytes, *, what: str = "request body") -> dict[str, np.ndarray[Any, Any]]:
    """The arrays of an ``.npz`` body, checked: stored (uncompressed) ``.npy`` members only, no
    pickled objects, numeric dtypes only.

    Raises:
        PayloadError: the body is no such ``.npz``; the message says what is wrong.
    """
    hint = "send numpy.savez(buffer, **{tensor_id: array}) bytes (uncompressed, no objects)"
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise PayloadError(f"the {what} is not an .npz archive ({e})", hint=hint) from None
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    with archive:
        for info in archive.infolist():
            name = info.filename
            if not name.endswith(".npy") or not _NAME.fullmatch(name[: -len(".npy")]):
                raise PayloadError(
                    f"the {what} holds {name!r}; expected only '<tensor id>.npy' members",
                    hint=hint,
                )
            if info.compress_type != zipfile.ZIP_STORED:
                raise PayloadError(
                    f"member {name!r} of the {what} is compressed; only uncompressed .npz "
                    "(numpy.savez, not savez_compressed) is accepted",
                    hint=hint,
                )
            key = name[: -len(".npy")]
            if key in arrays:
                raise PayloadError(f"the {what} holds {name!r} twice", hint=hint)
            try:
                with archive.open(info) as member:
                    arrays[key] = _read_npy(member, key)
            except PayloadError:
                raise
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
                raise PayloadError(
                    f"member {name!r} of the {what} is not a readable .npy array: "
                    f"{' '.join(str(e).split())}",
                    hint=hint,
                ) from None
    return arrays


_HEADER_LOCK = threading.Lock()
"""numpy parses an .npy header with ``ast.literal_eval``; CPython 3.11 can fail there with
``SystemError: AST constructor recursion depth mismatch`` when threads parse at once (a server
decodes requests in several threads), so headers are parsed one at a time."""


def _read_npy(member: IO[bytes], name: str) -> np.ndarray[Any, Any]:
    """One ``.npy`` array: the header (format 1.0 or 2.0) checked first, so that the data of a
    non-numeric dtype is never read; no pickles, whatever the dtype."""
    version = np.lib.format.read_magic(member)  # type: ignore[no-untyped-call]
    with _HEADER_LOCK:
        if version == (1, 0):
            header = np.lib.format.read_array_header_1_0(member)  # type: ignore[no-untyped-call]
        elif version == (2, 0):
            header = np.lib.format.read_array_header_2_0(member)  # type: ignore[no-untyped-call]
        else:
            raise ValueError(f".npy format version {version} (accepted: 1.0, 2.0)")
    shape, fortran_order, dtype = header
    _check_dtype(name, dtype)
    array = np.empty(shape, dtype=dtype, order="F" if fortran_order else "C")
    if array.size == 0:
        return array
    buffer = array.reshape(-1, order="A").data.cast("B")  # a view: the array is contiguous
    filled = 0
    while filled < buffer.nbytes:
        got = member.readinto(buffer[filled:])  # type: ignore[attr-defined]
        if not got:
            raise ValueError(f"the data ends after {filled} of {buffer.nbytes} bytes")
        filled += got
    return array


def encode_axes(axes: Mapping[str, Sequence[str]]) -> str:
    """The :data:`AXES_HEADER` value for ``axes`` (tensor id -> axis ids)."""
    return json.dumps({k: list(v) for k, v in axes.items()}, separators=(",", ":"))


def decode_axes(text: str | None) -> dict[str, tuple[str, ...]]:
    """Parse an :data:`AXES_HEADER` value.

    Raises:
        PayloadError: missing, too long, not JSON, or not an object of lists of axis ids.
    """
    example = '{"raw": ["batch", "channel", "y", "x"]}'
    if text is None:
        raise PayloadError(
            f"the {AXES_HEADER} header is missing", hint=f"send the axes of each array, e.g. {example}"
        )
    if len(text) > _MAX_AXES_HEADER:
        raise PayloadError(f"the {AXES_HEADER} header is longer than {_MAX_AXES_HEADER} characters")
    try:
        value = json.loads(text)
    except ValueError as e:
        raise PayloadError(
            f"the {AXES_HEADER} header is not JSON ({e})", hint=f"e.g. {example}"
        ) from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str)
        and isinstance(v, list)
        and all(isinstance(a, str) and _NAME.fullmatch(a) for a in v)
        for k, v in value.items()
    ):
        raise PayloadError(
            f"the {AXES_HEADER} header must map each tensor id to a list of axis ids",
            hint=f"e.g. {example}",
        )
    return {k: tuple(v) for k, v in value.items()}


def error_body(
    type_: str, message: str, *, hint: str | None = None, loc: str | None = None
) -> dict[str, Any]:
    """The JSON body of an error response."""
    return {"error": {"type": type_, "message": message, "hint": hint, "loc": loc}}


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise PayloadError(f"{name!r} is not a valid tensor id for the wire format")


def _check_dtype(name: str, dtype: np.dtype[Any]) -> None:
    if dtype.kind not in NUMERIC_KINDS or dtype.fields is not None:
        raise PayloadError(
            f"array {name!r} has dtype {dtype}; only numeric arrays (bool, int, uint, float, "
            "complex) are accepted"
        )


__all__ = [
    "API_PREFIX",
    "API_VERSION",
    "ARRAY_MEDIA_TYPES",
    "AXES_HEADER",
    "MIN_TOKEN_LENGTH",
    "NPZ_MEDIA_TYPE",
    "NUMERIC_KINDS",
    "SHA256",
    "TOKEN_ENV",
    "PayloadError",
    "decode_arrays",
    "decode_axes",
    "encode_arrays",
    "encode_axes",
    "error_body",
]
