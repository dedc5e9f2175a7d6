"""The wire format between ``bioimageio-run serve`` and its clients (numpy and json only).

Arrays travel as an uncompressed ``.npz`` body (``numpy.savez``): one ``<tensor id>.npy`` member
per tensor, read back with ``allow_pickle=False``; a request of several forward calls
(:data:`CALLS_HEADER`) holds ``<call>/<tensor id>.npy`` members. Their axes travel next to the body, as JSON in
the :data:`AXES_HEADER` header: ``{"raw": ["batch", "channel", "y", "x"]}``. Errors are JSON
bodies ``{"error": {"type", "message", "hint", "loc"}}`` with a 4xx status for anything the
client can fix. Both the server and the client import this module; it imports neither side.
"""

from __future__ import annotations

import io
import json
import math
import re
import struct
import threading
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from bioimageio_core.errors import InputError

API_VERSION = "v1"
API_PREFIX = f"/{API_VERSION}"
AXES_HEADER = "Bioimageio-Axes"
"""Request and response header: JSON object of tensor id -> list of axis ids."""
CALLS_HEADER = "Bioimageio-Calls"
"""Request header: the number of forward calls the body holds (default 1). With more than one,
call ``i``'s arrays are the members ``<i>/<tensor id>.npy``, and the answer is laid out alike."""
MAX_CALLS = 1024
"""The most forward calls one request may hold."""
NPZ_MEDIA_TYPE = "application/x-npz"
ARRAY_MEDIA_TYPES = (NPZ_MEDIA_TYPE, "application/octet-stream", "application/zip")
"""Content types a predict request may declare for its ``.npz`` body."""
TOKEN_ENV = "BIOIMAGEIO_SERVER_TOKEN"
MIN_TOKEN_LENGTH = 16
SHA256 = re.compile(r"[0-9a-f]{64}")
NUMERIC_KINDS = frozenset("biufc")
"""numpy dtype kinds accepted on the wire: bool, signed / unsigned int, float, complex."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_CALL_MEMBER = re.compile(r"(0|[1-9][0-9]*)/([A-Za-z_][A-Za-z0-9_.-]*)")
_MAX_AXES_HEADER = 16 * 1024


class PayloadError(InputError):
    """A request or response body (or header) does not follow the wire format."""


def encode_arrays(arrays: Mapping[str, np.ndarray[Any, Any]]) -> bytes:
    """An uncompressed ``.npz`` holding ``arrays`` (member ``<id>.npy`` each), as
    ``numpy.savez`` writes it (``numpy.load`` reads it)."""
    members = {name: np.asarray(array) for name, array in arrays.items()}
    for name, array in members.items():
        _check_name(name)
        _check_dtype(name, array.dtype)
    return _zip_members(members)


def encode_calls(calls: Sequence[Mapping[str, np.ndarray[Any, Any]]]) -> bytes:
    """The body of several forward calls (the :data:`CALLS_HEADER` says how many): call ``i``'s
    arrays as members ``<i>/<id>.npy``; one call is :func:`encode_arrays`'s body."""
    if len(calls) == 1:
        return encode_arrays(calls[0])
    members: dict[str, np.ndarray[Any, Any]] = {}
    for i, arrays in enumerate(calls):
        for name, array in arrays.items():
            _check_name(name)
            members[f"{i}/{name}"] = np.asarray(array)
            _check_dtype(name, members[f"{i}/{name}"].dtype)
    return _zip_members(members)


def _zip_members(members: Mapping[str, np.ndarray[Any, Any]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, array in members.items():
            header, data = _npy_parts(array)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            info.file_size = len(header) + data.nbytes
            with zf.open(info, "w") as member:
                member.write(header)
                member.write(data)
    return buffer.getvalue()


def _npy_parts(array: np.ndarray[Any, Any]) -> tuple[bytes, memoryview]:
    """The ``.npy`` header of ``array`` and its data as one flat view (copied only when the
    array is not contiguous). ``write_array`` into a buffer writes the data in many small
    pieces, several times slower."""
    header = io.BytesIO()
    fields = np.lib.format.header_data_from_array_1_0(array)  # type: ignore[no-untyped-call]
    try:
        np.lib.format.write_array_header_1_0(header, fields)  # type: ignore[no-untyped-call]
    except ValueError:  # a header too long for format 1.0 (a huge number of dimensions)
        header = io.BytesIO()
        np.lib.format.write_array_header_2_0(header, fields)  # type: ignore[no-untyped-call]
    flat = array.T if fields["fortran_order"] else array
    flat = np.ascontiguousarray(flat)
    return header.getvalue(), flat.reshape(-1).view(np.uint8).data


def decode_arrays(data: bytes, *, what: str = "request body") -> dict[str, np.ndarray[Any, Any]]:
    """The arrays of an ``.npz`` body, checked: stored (uncompressed) ``.npy`` members only, no
    pickled objects, numeric dtypes only.

    The zip's directory is read with :mod:`zipfile`; each member's data is copied straight out of
    ``data`` into its array (one copy, no checksum: TCP already guards the bytes).

    Raises:
        PayloadError: the body is no such ``.npz``; the message says what is wrong.
    """
    return decode_calls(data, 1, what=what)[0]


def decode_calls(
    data: bytes, calls: int, *, what: str = "request body"
) -> list[dict[str, np.ndarray[Any, Any]]]:
    """The arrays of each of ``calls`` forward calls in an ``.npz`` body (members
    ``<call>/<id>.npy``; ``<id>.npy`` for a single call), checked as by :func:`decode_arrays`.

    Raises:
        PayloadError: the body is no such ``.npz``, or a call has no member.
    """
    if calls > 1:
        expected = f"'<call>/<tensor id>.npy' members, call 0 to {calls - 1} ({CALLS_HEADER})"
        hint = "send the arrays of forward call i as members '<i>/<tensor id>.npy' (uncompressed)"
    else:
        expected = "'<tensor id>.npy' members"
        hint = "send numpy.savez(buffer, **{tensor_id: array}) bytes (uncompressed, no objects)"
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise PayloadError(f"the {what} is not an .npz archive ({e})", hint=hint) from None
    found: list[dict[str, np.ndarray[Any, Any]]] = [{} for _ in range(calls)]
    view = memoryview(data)
    with archive:
        for info in archive.infolist():
            name = info.filename
            call, key = _member(name, calls)
            if key is None:
                raise PayloadError(
                    f"the {what} holds {name!r}; expected only {expected}", hint=hint
                )
            if info.compress_type != zipfile.ZIP_STORED:
                raise PayloadError(
                    f"member {name!r} of the {what} is compressed; only uncompressed .npz "
                    "(numpy.savez, not savez_compressed) is accepted",
                    hint=hint,
                )
            if key in found[call]:
                raise PayloadError(f"the {what} holds {name!r} twice", hint=hint)
            try:
                found[call][key] = _read_npy(view, info, key)
            except PayloadError:
                raise
            except (ValueError, OSError, EOFError, struct.error) as e:
                raise PayloadError(
                    f"member {name!r} of the {what} is not a readable .npy array: "
                    f"{' '.join(str(e).split())}",
                    hint=hint,
                ) from None
    empty = [i for i, arrays in enumerate(found) if not arrays]
    if calls > 1 and empty:
        raise PayloadError(
            f"the {what} holds no member of call(s) {empty[:8]} of the {calls} its "
            f"{CALLS_HEADER} header announces",
            hint=hint,
        )
    return found


def _member(name: str, calls: int) -> tuple[int, str | None]:
    """The call and tensor id a member name stands for (``None``: a name outside the format)."""
    if not name.endswith(".npy"):
        return 0, None
    stem = name[: -len(".npy")]
    if calls == 1:
        return 0, stem if _NAME.fullmatch(stem) else None
    match = _CALL_MEMBER.fullmatch(stem)
    if match is None or int(match[1]) >= calls:
        return 0, None
    return int(match[1]), match[2]


def decode_calls_header(text: str | None) -> int:
    """The number of forward calls a :data:`CALLS_HEADER` value announces (1 when absent).

    Raises:
        PayloadError: not a whole number from 1 to :data:`MAX_CALLS`.
    """
    if text is None:
        return 1
    value = text.strip()
    if not re.fullmatch(r"[0-9]{1,6}", value) or not 1 <= int(value) <= MAX_CALLS:
        raise PayloadError(
            f"the {CALLS_HEADER} header must be a whole number from 1 to {MAX_CALLS}; "
            f"got {text[:40]!r}",
            hint="leave it out for one forward call, or send fewer calls per request",
        )
    return int(value)


_HEADER_LOCK = threading.Lock()
"""numpy parses an .npy header with ``ast.literal_eval``; CPython 3.11 can fail there with
``SystemError: AST constructor recursion depth mismatch`` when threads parse at once (a server
decodes requests in several threads), so headers are parsed one at a time."""


_LOCAL_HEADER = struct.Struct("<4s2s2sHHHLLLHH")
"""A zip member's local header (30 bytes): its name and extra field lengths are the last two."""
_LOCAL_SIGNATURE = b"PK\x03\x04"
_NPY_HEADER_BYTES = 64 * 1024
"""More than any .npy header numpy itself reads (it refuses headers over 10 000 bytes)."""


def _read_npy(data: memoryview, info: zipfile.ZipInfo, name: str) -> np.ndarray[Any, Any]:
    """The ``.npy`` array of the stored member ``info`` of ``data``: the header (format 1.0 or
    2.0) checked first, so that the data of a non-numeric dtype is never read; no pickles,
    whatever the dtype."""
    fields = _LOCAL_HEADER.unpack_from(data, info.header_offset)
    if fields[0] != _LOCAL_SIGNATURE:
        raise ValueError("its local header is missing")
    start = info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1]
    member = data[start : start + info.file_size]
    if len(member) < info.file_size:
        raise ValueError(f"the member ends after {len(member)} of {info.file_size} bytes")
    stream = io.BytesIO(member[:_NPY_HEADER_BYTES])
    version = np.lib.format.read_magic(stream)  # type: ignore[no-untyped-call]
    with _HEADER_LOCK:
        if version == (1, 0):
            header = np.lib.format.read_array_header_1_0(stream)  # type: ignore[no-untyped-call]
        elif version == (2, 0):
            header = np.lib.format.read_array_header_2_0(stream)  # type: ignore[no-untyped-call]
        else:
            raise ValueError(f".npy format version {version} (accepted: 1.0, 2.0)")
    shape: tuple[int, ...] = tuple(header[0])
    dtype: np.dtype[Any] = np.dtype(header[2])
    _check_dtype(name, dtype)
    order: Literal["C", "F"] = "F" if header[1] else "C"
    count = math.prod(shape)
    expected = count * dtype.itemsize
    got = len(member) - stream.tell()
    if got < expected:
        raise ValueError(f"the data ends after {got} of {expected} bytes")
    if got > expected:
        raise ValueError(f"{got - expected} bytes follow the array's {expected} bytes")
    if count == 0:
        return np.empty(shape, dtype=dtype, order=order)
    flat = np.frombuffer(member, dtype=dtype, count=count, offset=stream.tell())
    array: np.ndarray[Any, Any] = flat.reshape(shape, order=order).copy(order=order)
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
    "CALLS_HEADER",
    "MAX_CALLS",
    "MIN_TOKEN_LENGTH",
    "NPZ_MEDIA_TYPE",
    "NUMERIC_KINDS",
    "SHA256",
    "TOKEN_ENV",
    "PayloadError",
    "decode_arrays",
    "decode_axes",
    "decode_calls",
    "decode_calls_header",
    "encode_arrays",
    "encode_calls",
    "encode_axes",
    "error_body",
]
