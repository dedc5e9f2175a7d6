"""What a file reference says read as text: URL or not, remote or not, its file name and suffix."""

from __future__ import annotations

import pytest
from descriptions import tiny_model_v0_4
from hypothesis import given
from hypothesis import strategies as st

from bioimageio_core.references import (
    file_name,
    file_suffix,
    is_http_url,
    is_remote_reference,
    reference_problem,
)
from bioimageio_core.spec import build_description

SEGMENT = st.from_regex(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,11}", fullmatch=True).filter(
    lambda s: s not in (".", "..")
)
NAME = st.from_regex(r"[A-Za-z0-9_-]{1,8}(\.[A-Za-z0-9]{1,5}){0,2}", fullmatch=True)
TAIL = st.sampled_from(["", "?download=1", "#part", "?a=b/c#d"])


@pytest.mark.parametrize(
    ("reference", "name", "suffix"),
    [
        ("./sub/dir/w.data", "w.data", ".data"),
        ("weights.onnx.data", "weights.onnx.data", ".data"),
        ("sub\\w.pt", "w.pt", ".pt"),
        ("docs/", "docs", ""),
        ("HTTPS://host/x/w.data?download=1#frag", "w.data", ".data"),
        ("https://host/content", "content", ""),
        ("https://host/", "", ""),
        ("x.npy/content", "content", ""),
        ("cover.png?raw=true", "cover.png", ".png"),
        ("", "", ""),
    ],
)
def test_file_name_and_suffix(reference: str, name: str, suffix: str) -> None:
    """Zenodo URLs and plain names: tests/legacy/test_legacy_normalize.py (raw YAML values)."""
    assert file_name(reference) == name
    assert file_suffix(reference) == suffix


@given(folders=st.lists(SEGMENT, max_size=3), name=NAME, tail=TAIL, zenodo=st.booleans())
def test_file_name_of_a_url_is_its_last_segment_before_content(
    folders: list[str], name: str, tail: str, zenodo: bool
) -> None:
    url = "https://example.org/" + "".join(f + "/" for f in folders) + name
    url = (url + "/content" if zenodo else url) + tail
    assert file_name(url) == name


@given(folders=st.lists(SEGMENT, max_size=3), name=NAME, tail=TAIL)
def test_file_name_of_a_relative_path_is_its_last_segment(
    folders: list[str], name: str, tail: str
) -> None:
    assert file_name("/".join([*folders, name]) + tail) == name
    assert file_name("/".join([*folders, name, "content"]) + tail) == "content"


@given(reference=st.text(max_size=40))
def test_suffix_is_the_lower_case_end_of_the_name(reference: str) -> None:
    name, suffix = file_name(reference), file_suffix(reference)
    assert "/" not in name and "?" not in name and "#" not in name
    if suffix:
        assert suffix.startswith(".") and "." not in suffix[1:]
        assert name.lower().endswith(suffix)
    else:
        assert "." not in name


@pytest.mark.parametrize(
    ("reference", "http", "remote"),
    [
        ("https://example.com/a.py", True, True),
        ("HTTP://example.com/a.py", True, True),
        ("ftp://example.com/a.py", False, True),
        ("s3://bucket/a.py", False, True),
        ("file:///tmp/a.py", False, False),
        ("FILE:///tmp/a.py", False, False),
        ("C:\\models\\a.py", False, False),
        ("/abs/a.py", False, False),
        ("sub/dir/a.py", False, False),
    ],
)
def test_http_url_and_remote_reference_differ_on_purpose(
    reference: str, http: bool, remote: bool
) -> None:
    """Downloadable is narrower than remote: a scheme we never fetch is still not trusted."""
    assert is_http_url(reference) is http
    assert is_remote_reference(reference) is remote


@given(reference=st.text(max_size=40))
def test_every_http_url_is_remote(reference: str) -> None:
    if is_http_url(reference):
        assert is_remote_reference(reference)


@given(reference=st.text(max_size=40))
def test_reading_a_reference_never_raises(reference: str) -> None:
    for read in (file_name, file_suffix, is_http_url, is_remote_reference, reference_problem):
        read(reference)
    for url in ("http://[" + reference, "https://[" + reference + "/x.py"):
        assert not is_http_url(url) and is_remote_reference(url) and reference_problem(url)


def test_an_unparsable_url_is_an_error_at_its_field() -> None:
    """Not an internal error of validation: the reference is refused where it is written."""
    result = build_description(tiny_model_v0_4(covers=["https://[oops/cover.png"]))
    assert [(i.loc, i.type) for i in result.errors] == [(("covers", 0), "file_outside_root")]
    assert "cannot be read as a URL" in result.errors[0].msg
