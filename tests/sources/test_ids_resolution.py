"""bioimage.io ids, versions, DOIs and Hugging Face sources against a local collection.

Covers the resolution checklist: pattern first, then the id map and the draft id map, digest
checks, tolerant id maps, suggestions, disabled pattern, unreachable server, query strings,
Zenodo API URLs, Hugging Face branches and fetching the id map once per process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from id_collection import Served

from bioimageio_core import load_description
from bioimageio_core.errors import (
    HashMismatchError,
    NetworkError,
    SourceError,
    UnresolvedSourceError,
)
from bioimageio_core.sources import UrlRoot, ZipRoot, read_description
from bioimageio_core.sources.records import read_record


def test_pattern_hit_is_one_request_and_roots_at_the_pattern_folder(served: Served) -> None:
    raw = read_description("affable-shark")
    assert raw.data["name"] == "affable shark"
    assert served.server.requests == ["/artifacts/affable-shark/files/rdf.yaml"]
    url = served.server.url("artifacts/affable-shark/files/rdf.yaml")
    assert raw.root == UrlRoot(served.server.url("artifacts/affable-shark/files/"))
    assert raw.resolution is not None
    assert (raw.resolution.resolver, raw.resolution.url) == ("bioimage.io", url)
    assert raw.source_name == f"affable-shark ({url})"


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("lazy-fish", "lazy fish 13"),
        ("lazy-fish/1.2", "lazy fish 12"),
        ("lazy-fish/draft", "lazy fish draft"),
        ("10.5281/zenodo.999", "lazy fish 12"),
    ],
)
def test_pattern_miss_falls_back_to_id_map_keys(served: Served, source: str, name: str) -> None:
    raw = read_description(source)
    assert raw.data["name"] == name
    requests = served.server.requests
    assert requests[0] == f"/artifacts/{source}/files/rdf.yaml"  # the pattern, verbatim: 404
    assert "/id_map.json" in requests
    # the draft map is asked only for keys the main map lacks
    assert ("/id_map_draft.json" in requests) == source.endswith("/draft")


def test_doi_resolves_to_a_zip_package_with_its_url_as_origin(served: Served) -> None:
    descr = load_description("10.5281/zenodo.999")
    assert isinstance(descr.root, ZipRoot)
    assert descr.root.origin == served.server.url("files/lazy-fish-1.2.zip")
    assert str(descr.root) == descr.root.origin  # counts as remote for the code-consent check


def test_key_in_both_maps_resolves_to_the_main_map(served: Served) -> None:
    assert read_description("twin").data["name"] == "twin main"


def test_draft_keys_fail_without_resolve_draft(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIOIMAGEIO_RESOLVE_DRAFT", "0")
    with pytest.raises(UnresolvedSourceError, match="RESOLVE_DRAFT=0"):
        read_description("lazy-fish/draft")
    assert served.server.count("id_map_draft.json") == 0


def test_wrong_sha256_in_the_map_is_a_digest_error_and_not_recorded(served: Served) -> None:
    served.collection.id_map["lazy-fish/1.2"]["sha256"] = "0" * 64
    served.collection.write_maps()
    with pytest.raises(HashMismatchError, match="sha256 mismatch") as info:
        read_description("lazy-fish/1.2")
    assert info.value.expected == "0" * 64
    assert read_record("bioimage.io", _scope(served), "lazy-fish/1.2") is None


def test_one_bad_entry_leaves_both_maps_usable(served: Served) -> None:
    maps = served.collection
    maps.id_map["broken"] = {"source": "ftp://example.com/rdf.yaml", "sha256": "0" * 64}
    maps.id_map["lazy-fish"]["version"] = "1.3"  # an extra key is ignored
    maps.draft_map["also-broken"] = {"source": served.server.url("x/rdf.yaml")}  # no sha256
    maps.write_maps()
    with pytest.warns(UserWarning, match=r"id_map.json has 1 unusable entries.*'broken'"):
        assert read_description("lazy-fish").data["name"] == "lazy fish 13"
    with pytest.warns(UserWarning, match=r"id_map_draft.json has 1 unusable.*'also-broken'"):
        assert read_description("lazy-fish/draft").data["name"] == "lazy fish draft"
    with pytest.raises(UnresolvedSourceError, match="its entry in .* is unusable: 'source'"):
        read_description("broken")


def test_unknown_id_suggests_close_ids_and_lists_the_source_forms(served: Served) -> None:
    with pytest.raises(UnresolvedSourceError) as info:
        read_description("lazy-fis")
    error = info.value
    assert error.suggestions[0] == "lazy-fish"
    assert "did you mean 'lazy-fish'" in error.message
    assert "neither a file or folder here nor a key of" in error.message
    assert error.hint is not None
    for form in ("a .zip package", "an http(s) URL", "affable-shark/1.2", "huggingface/<user>"):
        assert form in error.hint
    # an unknown version suggests the known versions of that id
    with pytest.raises(UnresolvedSourceError) as version:
        read_description("lazy-fish/9")
    assert set(version.value.suggestions) >= {"lazy-fish/1.2", "lazy-fish/draft"}


def test_unknown_id_in_validate_summary(served: Served) -> None:
    from bioimageio_core import validate_format

    summary = validate_format("lazy-fis")
    assert summary.status == "failed"
    assert "did you mean 'lazy-fish'" in summary.first_error_text()


def test_disabled_pattern_asks_only_the_id_map(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIOIMAGEIO_COLLECTION_HTTP_PATTERN", "")
    assert read_description("lazy-fish").data["name"] == "lazy fish 13"
    assert not any(r.startswith("/artifacts/") for r in served.server.requests)
    with pytest.raises(UnresolvedSourceError, match="'affable-shark' is neither"):
        read_description("affable-shark")  # only the pattern served it


def test_unreachable_collection_names_the_connection_error(served: Served) -> None:
    served.server.stop()
    with pytest.raises(NetworkError) as info:
        read_description("lazy-fish")
    text = str(info.value)
    assert "cannot reach the bioimage.io collection to resolve 'lazy-fish'" in text
    assert "could not fetch" in text and "id_map.json" in text
    assert "was not resolved on this machine before" in text


def test_relative_files_keep_the_query_string(served: Served) -> None:
    descr = load_description("query-fish")  # io checks fetch every referenced file
    assert descr.root == UrlRoot(served.server.url("files/q/"), query="version=1.2")
    fetched = [r for r in served.server.requests if r.startswith("/files/q/")]
    assert "/files/q/rdf.yaml?version=1.2" in fetched
    assert "/files/q/weights.npz?version=1.2" in fetched
    assert all(r.endswith("?version=1.2") for r in fetched)


def test_zenodo_api_urls_resolve_relative_files_to_content(served: Served) -> None:
    descr = load_description("zenodo-fish")
    assert descr.name == "zenodo fish"
    assert "/api/records/5/files/weights.npz/content" in served.server.requests
    assert "/api/records/5/files/in_raw.npy/content" in served.server.requests


@pytest.mark.parametrize(
    ("source", "branch"),
    [("huggingface/u/r", "main"), ("huggingface/u/r/1.3", "v1.3"), ("huggingface/u/r/dev", "dev")],
)
def test_huggingface_sources_pick_the_branch(served: Served, source: str, branch: str) -> None:
    raw = read_description(source)
    assert raw.data["name"] == f"hf {branch.replace('.', '')}"
    path = f"/huggingface/u/r/resolve/{branch}/package/bioimageio.yaml"
    assert served.server.requests == [path]
    assert raw.root == UrlRoot(served.server.url(f"huggingface/u/r/resolve/{branch}/package/"))
    assert raw.resolution is not None and raw.resolution.resolver == "huggingface"


def test_huggingface_missing_branch_and_bad_form(served: Served) -> None:
    with pytest.raises(SourceError, match=r"'huggingface/u/r/9' resolved to .*v9.*HTTP 404"):
        read_description("huggingface/u/r/9")
    with pytest.raises(UnresolvedSourceError, match="huggingface/<user>/<repo>"):
        read_description("huggingface/only-user")


def test_id_map_is_fetched_once_per_process(served: Served) -> None:
    for source in ("lazy-fish", "lazy-fish/1.2", "10.5281/zenodo.999", "lazy-fish"):
        read_description(source)
    assert served.server.count("id_map.json") == 1


def test_failed_or_empty_id_map_is_asked_again(served: Served) -> None:
    id_map = served.collection.root / "id_map.json"
    content = id_map.read_text()
    id_map.unlink()  # 404
    with pytest.raises(SourceError):
        read_description("lazy-fish")
    id_map.write_text("{}")  # empty
    with pytest.raises(UnresolvedSourceError):
        read_description("lazy-fish")
    id_map.write_text(content)
    later = id_map.stat().st_mtime + 10  # a newer Last-Modified than the cached empty map's
    os.utime(id_map, (later, later))
    assert read_description("lazy-fish").data["name"] == "lazy fish 13"
    assert served.server.count("id_map.json") == 3


def test_malformed_id_map_is_reported(served: Served) -> None:
    (served.collection.root / "id_map.json").write_text(json.dumps(["not", "a", "map"]))
    with pytest.raises(UnresolvedSourceError, match="must be a JSON object"):
        read_description("lazy-fish")


def test_existing_local_folder_wins_over_an_id(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(served.models)  # holds a folder "lazy fish 12"; make one named like an id
    (served.models / "lazy fish 12").rename(served.models / "lazy-fish")
    raw = read_description("lazy-fish")
    assert raw.data["name"] == "lazy fish 12" and raw.resolution is None
    assert served.server.requests == []


def _scope(served: Served) -> str:
    env = served.collection.env(served.server)
    return "\n".join(
        (
            env["BIOIMAGEIO_COLLECTION_HTTP_PATTERN"],
            env["BIOIMAGEIO_ID_MAP"],
            env["BIOIMAGEIO_ID_MAP_DRAFT"],
        )
    )
