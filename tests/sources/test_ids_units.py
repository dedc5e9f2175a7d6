"""Pure parts of id resolution: id-map parsing, suggestions, id syntax, branches, URL roots,
records and the collection settings (hypothesis property tests where there is a rule)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bioimageio_core.errors import SettingsError, SourceError
from bioimageio_core.settings import get_settings
from bioimageio_core.sources.idmap import parse_id_map, suggestions
from bioimageio_core.sources.ids import huggingface_branch, looks_like_id
from bioimageio_core.sources.records import (
    RECORD_FILE,
    ResolutionRecord,
    read_record,
    write_record,
)
from bioimageio_core.sources.roots import UrlRoot, url_root

KEYS = st.from_regex(r"[a-z][a-z0-9-]{0,12}(/[a-z0-9.]{1,5})?", fullmatch=True)
HEX = st.text("0123456789abcdef", min_size=64, max_size=64)
GOOD = st.builds(
    lambda path, sha, upper: {
        "source": f"https://example.com/{path}/rdf.yaml",
        "sha256": f" {sha.upper() if upper else sha} ",
    },
    st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True),
    HEX,
    st.booleans(),
)
BAD = st.one_of(
    st.builds(lambda sha: {"source": "ftp://example.com/rdf.yaml", "sha256": sha}, HEX),
    st.builds(lambda: {"source": "https://example.com/rdf.yaml"}),
    st.builds(lambda: {"source": "https://example.com/rdf.yaml", "sha256": "xyz"}),
    st.just("https://example.com/rdf.yaml"),
    st.just(None),
)


@given(good=st.dictionaries(KEYS, GOOD, max_size=8), bad=st.dictionaries(KEYS, BAD, max_size=4))
def test_id_map_keeps_every_good_entry_whatever_the_bad_ones(
    good: dict[str, dict[str, str]], bad: dict[str, object]
) -> None:
    bad = {k: v for k, v in bad.items() if k not in good}
    doc = {**good, **bad}
    parsed = parse_id_map(json.dumps(doc).encode(), "https://example.com/id_map.json")
    assert set(parsed.entries) == set(good)
    assert set(parsed.problems) == set(bad)
    for key, entry in parsed.entries.items():
        assert entry.source == good[key]["source"]
        assert entry.sha256 == good[key]["sha256"].strip().lower()


def test_id_map_extra_keys_are_ignored() -> None:
    doc = {"a": {"source": "https://x.org/rdf.yaml", "sha256": "a" * 64, "version": "1.2"}}
    assert set(parse_id_map(json.dumps(doc).encode(), "u").entries) == {"a"}


@pytest.mark.parametrize("data", [b"[1, 2]", b"not json", b'"text"'])
def test_id_map_that_is_not_an_object_is_an_error(data: bytes) -> None:
    with pytest.raises(SourceError, match="id map u"):
        parse_id_map(data, "u")


def test_suggestions_prefer_versions_of_the_same_id() -> None:
    known = ["lazy-fish", "lazy-fish/1.2", "lazy-fish/draft", "affable-shark", "lazy-fox"]
    assert suggestions("lazy-fis", known)[0] == "lazy-fish"
    assert suggestions("lazy-fish/9", known)[:2] == ("lazy-fish/1.2", "lazy-fish/draft")
    assert suggestions("affable-shrak", known) == ("affable-shark",)
    assert suggestions("zzzzzz", known) == ()
    assert len(suggestions("lazy", known * 3)) <= 3


@given(st.lists(KEYS, max_size=20), KEYS)
def test_suggestions_are_known_distinct_and_at_most_three(known: list[str], key: str) -> None:
    found = suggestions(key, known)
    assert len(found) <= 3 and len(set(found)) == len(found)
    assert set(found) <= set(known) - {key}


@pytest.mark.parametrize(
    "source",
    ["affable-shark", "affable-shark/1.2", "affable-shark/draft", "10.5281/zenodo.6647674",
     "10.5281/zenodo.5764892/6647674", "ilastik/ilastik", "Affable_Shark"],
)
def test_id_like_sources_are_claimed(source: str) -> None:
    assert looks_like_id(source)


@pytest.mark.parametrize(
    "source",
    ["models/rdf.yaml", "rdf.yaml", "./affable-shark", "../x", "/abs/path", "~/model",
     "a/b/c/d", "huggingface/u/r", "with space", "C:\\models\\m", "lab:conv", "", "pkg.zip",
     "x/", "a//b"],
)
def test_path_like_sources_are_not_claimed(source: str) -> None:
    assert not looks_like_id(source)


@pytest.mark.parametrize(
    ("version", "branch"), [("", "main"), ("1.3", "v1.3"), ("2", "v2"), ("dev", "dev"),
                            ("v1.3", "v1.3")]
)
def test_huggingface_branch(version: str, branch: str) -> None:
    assert huggingface_branch(version) == branch


@given(
    name=st.from_regex(r"[a-z]{1,6}(/[a-z]{1,6}){0,2}\.[a-z]{2,4}", fullmatch=True),
    query=st.from_regex(r"(version=[0-9.]{1,5})?", fullmatch=True),
)
def test_relative_references_keep_the_description_query(name: str, query: str) -> None:
    url = "https://host.org/a/files/rdf.yaml" + (f"?{query}" if query else "")
    root = url_root(url)
    joined = root.join(name)
    assert joined == f"https://host.org/a/files/{name}" + (f"?{query}" if query else "")
    assert root.join("https://elsewhere.org/x.npy") == "https://elsewhere.org/x.npy"
    assert root.join(f"{name}?own=1").endswith("?own=1")


def test_zenodo_api_root_appends_content() -> None:
    root = url_root("https://zenodo.org/api/records/5/files/rdf.yaml/content")
    assert root == UrlRoot("https://zenodo.org/api/records/5/files/", content_suffix=True)
    assert root.join("weights.pt") == "https://zenodo.org/api/records/5/files/weights.pt/content"
    assert root.join("sub/x.npy") == "https://zenodo.org/api/records/5/files/sub/x.npy/content"
    plain = url_root("https://zenodo.org/records/5/files/rdf.yaml?download=1")
    assert plain.join("w.pt") == "https://zenodo.org/records/5/files/w.pt?download=1"


def test_records_round_trip_and_unreadable_records_are_absent(
    cache_dir: Path, tmp_path: Path
) -> None:
    local = tmp_path / "rdf.yaml"
    local.write_text("name: x\n")
    record = ResolutionRecord("r", "scope", "x/1", "https://h/rdf.yaml", "a" * 64, True, time.time())
    write_record(record, local)
    assert read_record("r", "scope", "x/1") == record
    assert read_record("r", "other scope", "x/1") is None
    (path,) = (cache_dir / "resolved").glob(f"*/{RECORD_FILE}")
    path.write_text(json.dumps({**json.loads(path.read_text()), "sha256": 5}))
    assert read_record("r", "scope", "x/1") is None
    path.write_text("{not json")
    assert read_record("r", "scope", "x/1") is None


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BIOIMAGEIO_ID_MAP", "ftp://x.org/id_map.json", "must be an http(s) URL"),
        ("BIOIMAGEIO_ID_MAP_DRAFT", "id_map_draft.json", "must be an http(s) URL"),
        ("BIOIMAGEIO_COLLECTION_HTTP_PATTERN", "https://x.org/{id}/rdf.yaml",
         "contains {bioimageio_id}"),
        ("BIOIMAGEIO_COLLECTION_HTTP_PATTERN", "https://x.org/{bioimageio_id", "a valid URL template"),
        ("BIOIMAGEIO_HUGGINGFACE_HTTP_PATTERN", "https://hf.co/{repo}/{branch}",
         "contains {repo_id}"),
        ("BIOIMAGEIO_HUGGINGFACE_HTTP_PATTERN", "https://hf.co/{repo_id}/{tag}",
         "uses only {repo_id}, {branch}"),
        ("BIOIMAGEIO_RESOLVE_DRAFT", "maybe", "must be a boolean"),
        ("BIOIMAGEIO_OFFLINE", "sometimes", "must be a boolean"),
    ],
)
def test_collection_settings_are_validated(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as info:
        get_settings({variable: value})
    assert variable in str(info.value) and message in str(info.value)


def test_empty_collection_settings_disable_the_lookup() -> None:
    settings = get_settings({"BIOIMAGEIO_COLLECTION_HTTP_PATTERN": " ", "BIOIMAGEIO_ID_MAP": ""})
    assert settings.collection_http_pattern == "" and settings.id_map == ""
    assert get_settings({}).collection_http_pattern.startswith("https://hypha.aicell.io/")
