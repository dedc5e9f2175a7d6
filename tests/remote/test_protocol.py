"""The wire format: .npz bodies with numeric arrays only, and the axes header."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from concurrently import run_concurrently
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bioimageio_core.errors import InputError
from bioimageio_core.remote.protocol import (
    CALLS_HEADER,
    MAX_CALLS,
    PayloadError,
    decode_arrays,
    decode_axes,
    decode_calls,
    decode_calls_header,
    encode_arrays,
    encode_axes,
    encode_calls,
)

dtypes = st.sampled_from(
    ["bool", "uint8", "int16", "uint16", "int32", "int64", "float16", "float32", "float64",
     "complex64", ">f4", ">i2"]
)
arrays = dtypes.flatmap(
    lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=4, max_side=5))
)
names = st.from_regex(r"[a-z_][a-z0-9_]{0,11}", fullmatch=True)


@given(st.dictionaries(names, arrays, min_size=1, max_size=3))
def test_arrays_round_trip_exactly(values: dict[str, np.ndarray[Any, Any]]) -> None:
    decoded = decode_arrays(encode_arrays(values))
    assert decoded.keys() == values.keys()
    for name, array in values.items():
        assert decoded[name].dtype == array.dtype
        assert decoded[name].shape == array.shape
        np.testing.assert_array_equal(decoded[name], array)  # NaN == NaN here


def test_non_contiguous_and_transposed_arrays_round_trip() -> None:
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    decoded = decode_arrays(encode_arrays({"t": a.transpose(2, 0, 1), "s": a[:, ::2]}))
    np.testing.assert_array_equal(decoded["t"], a.transpose(2, 0, 1))
    np.testing.assert_array_equal(decoded["s"], a[:, ::2])


@pytest.mark.parametrize(
    "body",
    [b"", b"garbage", b"PK\x03\x04 truncated zip", np.arange(3).tobytes()],
    ids=["empty", "text", "broken-zip", "raw-bytes"],
)
def test_garbage_is_a_payload_error(body: bytes) -> None:
    with pytest.raises(PayloadError, match="not an .npz archive"):
        decode_arrays(body)


def test_payload_errors_are_input_errors() -> None:
    assert issubclass(PayloadError, InputError)


def test_compressed_members_are_refused() -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, raw=np.zeros((64, 64), dtype=np.float32))
    with pytest.raises(PayloadError, match="compressed"):
        decode_arrays(buffer.getvalue())


class _Exploit:
    """Unpickling this would create a file: it must never happen."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.makedirs, (str(self.marker),))


def test_pickled_objects_are_never_loaded(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    np.savez(buffer, raw=np.array([_Exploit(marker)], dtype=object))
    with pytest.raises(PayloadError, match="only numeric"):
        decode_arrays(buffer.getvalue())
    assert not marker.exists()
    # a raw pickle as a member is refused as well
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as zf:
        zf.writestr("raw.npy", pickle.dumps(_Exploit(marker)))
    with pytest.raises(PayloadError):
        decode_arrays(raw.getvalue())
    assert not marker.exists()


@pytest.mark.parametrize("member", ["../raw.npy", "dir/raw.npy", "raw.txt", "raw", ".npy"])
def test_members_must_be_tensor_id_npy(member: str) -> None:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as zf:
        array = io.BytesIO()
        np.save(array, np.zeros(3))
        zf.writestr(member, array.getvalue())
    with pytest.raises(PayloadError, match="expected only"):
        decode_arrays(raw.getvalue())


def test_duplicate_members_are_refused() -> None:
    raw = io.BytesIO()
    array = io.BytesIO()
    np.save(array, np.zeros(3))
    with pytest.warns(UserWarning), zipfile.ZipFile(raw, "w") as zf:
        zf.writestr("raw.npy", array.getvalue())
        zf.writestr("raw.npy", array.getvalue())
    with pytest.raises(PayloadError, match="twice"):
        decode_arrays(raw.getvalue())


def test_truncated_member_is_refused() -> None:
    raw = io.BytesIO()
    array = io.BytesIO()
    np.save(array, np.zeros((100,)))
    with zipfile.ZipFile(raw, "w") as zf:
        zf.writestr("raw.npy", array.getvalue()[:-40])
    with pytest.raises(PayloadError, match="not a readable .npy"):
        decode_arrays(raw.getvalue())


@pytest.mark.parametrize(
    "array",
    [
        np.array(["a", "b"]),
        np.zeros(2, dtype=[("x", "f4"), ("y", "f4")]),
        np.array([b"x"]),
        np.array(["2020-01-01"], dtype="datetime64[D]"),
    ],
    ids=["unicode", "structured", "bytes", "datetime"],
)
def test_non_numeric_dtypes_are_refused_both_ways(array: np.ndarray[Any, Any]) -> None:
    with pytest.raises(PayloadError, match="only numeric"):
        encode_arrays({"raw": array})
    buffer = io.BytesIO()
    np.savez(buffer, raw=array)
    with pytest.raises(PayloadError, match="only numeric"):
        decode_arrays(buffer.getvalue())


@given(st.dictionaries(names, st.lists(names, max_size=5), max_size=4))
def test_axes_round_trip(axes: dict[str, list[str]]) -> None:
    assert decode_axes(encode_axes(axes)) == {k: tuple(v) for k, v in axes.items()}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "missing"),
        ("not json", "not JSON"),
        ('["raw"]', "must map"),
        ('{"raw": "bcyx"}', "must map"),
        ('{"raw": [1, 2]}', "must map"),
        ('{"raw": ["y", "../x"]}', "must map"),
        ('{"raw": ["' + "y" * 20000 + '"]}', "longer than"),
    ],
)
def test_bad_axes_headers(text: str | None, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        decode_axes(text)


def test_fortran_ordered_and_empty_arrays() -> None:
    raw = io.BytesIO()
    fortran = np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4))
    with zipfile.ZipFile(raw, "w") as zf:
        for name, array in {"f": fortran, "e": np.zeros((0, 3)), "s": np.float64(2.5)}.items():
            member = io.BytesIO()
            np.save(member, array)
            zf.writestr(f"{name}.npy", member.getvalue())
    decoded = decode_arrays(raw.getvalue())
    np.testing.assert_array_equal(decoded["f"], fortran)
    assert decoded["f"].flags.f_contiguous and decoded["f"].flags.writeable
    assert decoded["e"].shape == (0, 3) and decoded["s"] == 2.5


def test_npy_headers_are_parsed_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """numpy parses headers with ast.literal_eval, which CPython 3.11 can break with
    "SystemError: AST constructor recursion depth mismatch" when threads parse at once."""
    import ast
    import threading
    import time

    original = ast.literal_eval
    active = [0, 0]  # now, most at once
    lock = threading.Lock()

    def watched(text: Any) -> Any:
        with lock:
            active[0] += 1
            active[1] = max(active[1], active[0])
        time.sleep(0.002)  # widen the window in which another thread could enter
        try:
            return original(text)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(ast, "literal_eval", watched)
    body = encode_arrays({"a": np.zeros(3), "b": np.ones((2, 2), np.float32)})
    run_concurrently(decode_arrays, [(body,)] * 8)
    assert active[1] == 1


def test_decoded_arrays_are_writable_copies_of_the_body() -> None:
    body = encode_arrays({"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(2)})
    decoded = decode_arrays(body)
    for array in decoded.values():
        assert array.flags.writeable and not np.shares_memory(array, np.frombuffer(body, np.uint8))
    decoded["a"][0, 0] = 7  # the model may write into its inputs
    np.testing.assert_array_equal(decode_arrays(body)["a"][0], [0, 1, 2])


def test_bytes_after_the_array_or_a_broken_local_header_are_refused() -> None:
    member = io.BytesIO()
    np.save(member, np.zeros(4, np.float32))
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as zf:
        zf.writestr("raw.npy", member.getvalue() + b"tail")
    with pytest.raises(PayloadError, match="4 bytes follow the array's 16 bytes"):
        decode_arrays(raw.getvalue())
    good = encode_arrays({"raw": np.zeros(4, np.float32)})
    assert good.startswith(b"PK\x03\x04")
    with pytest.raises(PayloadError, match="local header is missing"):
        decode_arrays(b"XX" + good[2:])


@given(st.lists(st.dictionaries(names, arrays, min_size=1, max_size=3), min_size=1, max_size=5))
def test_several_calls_round_trip_exactly(calls: list[dict[str, np.ndarray[Any, Any]]]) -> None:
    decoded = decode_calls(encode_calls(calls), len(calls))
    assert len(decoded) == len(calls)
    for got, sent in zip(decoded, calls, strict=True):
        assert got.keys() == sent.keys()
        for name, array in sent.items():
            assert got[name].dtype == array.dtype
            np.testing.assert_array_equal(got[name], array)


def test_one_call_is_the_plain_body() -> None:
    call = {"raw": np.arange(6, dtype=np.float32).reshape(2, 3)}
    assert encode_calls([call]) == encode_arrays(call)
    with np.load(io.BytesIO(encode_calls([call, call])), allow_pickle=False) as npz:
        assert sorted(npz.files) == ["0/raw", "1/raw"]  # numpy reads several calls too


def _zip(members: list[str]) -> bytes:
    raw = io.BytesIO()
    array = io.BytesIO()
    np.save(array, np.zeros(3))
    with zipfile.ZipFile(raw, "w") as zf:
        for member in members:
            zf.writestr(member, array.getvalue())
    return raw.getvalue()


@pytest.mark.parametrize(
    "members",
    [["raw.npy", "1/raw.npy"], ["0/raw.npy", "2/raw.npy"], ["00/raw.npy", "1/raw.npy"],
     ["0/raw.npy", "1/../raw.npy"], ["0/raw.npy", "-1/raw.npy"], ["0/raw.npy", "1/raw"]],
    ids=["plain-name", "call-out-of-range", "leading-zero", "path", "negative", "no-npy"],
)  # fmt: skip
def test_members_of_several_calls_must_be_call_slash_tensor_id(members: list[str]) -> None:
    with pytest.raises(PayloadError, match=r"expected only '<call>/<tensor id>.npy' members"):
        decode_calls(_zip(members), 2)


def test_a_call_without_members_is_refused() -> None:
    with pytest.raises(PayloadError, match=r"no member of call\(s\) \[1\] of the 3"):
        decode_calls(_zip(["0/raw.npy", "2/raw.npy"]), 3)


def test_a_single_call_refuses_call_members() -> None:
    with pytest.raises(PayloadError, match="expected only '<tensor id>.npy'"):
        decode_calls(_zip(["0/raw.npy"]), 1)


@pytest.mark.parametrize(
    ("text", "calls"), [(None, 1), ("1", 1), (" 7 ", 7), (str(MAX_CALLS), MAX_CALLS)]
)
def test_calls_header(text: str | None, calls: int) -> None:
    assert decode_calls_header(text) == calls


@pytest.mark.parametrize("text", ["0", "-2", "1.5", "", "two", "\u00b2", str(MAX_CALLS + 1), "9" * 40])
def test_bad_calls_headers(text: str) -> None:
    with pytest.raises(PayloadError, match=f"{CALLS_HEADER} header must be a whole number"):
        decode_calls_header(text)
