"""Resolved ids are recorded in the cache and open again without the network.

``BIOIMAGEIO_OFFLINE=1`` never opens a connection (a socket guard fails the test otherwise) and
names what the cache lacks; a collection that goes away falls back to the recorded resolution
with a warning.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from id_collection import Offline, Served

from bioimageio_core import load_description, validate_format
from bioimageio_core.consent import code_origin
from bioimageio_core.errors import OfflineError, SourceError
from bioimageio_core.sources import UrlRoot, ZipRoot, idmap, read_description
from bioimageio_core.sources.records import read_record


@pytest.mark.parametrize("source", ["affable-shark", "lazy-fish/1.2", "10.5281/zenodo.999"])
def test_resolved_id_loads_offline_from_the_cache(
    served: Served, offline: Offline, source: str
) -> None:
    online = load_description(source)  # io checks: every referenced file is cached now
    served.server.stop()
    offline.activate()

    again = load_description(source)
    assert offline.attempts == []
    assert again == online  # same descriptor, same root (a URL or a zip with its URL)
    assert isinstance(again.root, (UrlRoot, ZipRoot))
    if isinstance(again.root, ZipRoot):
        assert again.root.origin is not None
    assert not code_origin(again.root, "architecture.py").trusted  # fetched, also offline
    summary = validate_format(source)
    assert summary.status == "valid-format", summary.format_text()
    resolve = [d for d in summary.details if d.name.startswith(f"resolve {source!r}")]
    assert len(resolve) == 1 and resolve[0].status == "passed"


def test_record_holds_url_and_sha256(served: Served) -> None:
    raw = read_description("lazy-fish/1.2")
    assert raw.resolution is not None
    scope = "\n".join(
        served.collection.env(served.server)[v]
        for v in (
            "BIOIMAGEIO_COLLECTION_HTTP_PATTERN",
            "BIOIMAGEIO_ID_MAP",
            "BIOIMAGEIO_ID_MAP_DRAFT",
        )
    )
    record = read_record("bioimage.io", scope, "lazy-fish/1.2")
    assert record is not None
    entry = served.collection.id_map["lazy-fish/1.2"]
    assert (record.url, record.sha256, record.pinned) == (entry["source"], entry["sha256"], True)
    assert raw.resolution.sha256 == entry["sha256"]
    pattern_hit = read_description("affable-shark").resolution
    assert pattern_hit is not None
    pattern_record = read_record("bioimage.io", scope, "affable-shark")
    assert pattern_record is not None and not pattern_record.pinned
    assert pattern_record.sha256 == pattern_hit.sha256


def test_offline_never_resolved_says_what_is_missing(served: Served, offline: Offline) -> None:
    offline.activate()
    with pytest.raises(OfflineError) as info:
        read_description("lazy-fish")
    text = str(info.value)
    assert "offline: cannot resolve 'lazy-fish': no earlier resolution is recorded" in text
    assert "the collection's answers for 'lazy-fish' are not in the cache" in text
    assert "id_map.json" in text and "artifacts/lazy-fish/files/rdf.yaml" in text
    assert "without --offline" in (info.value.hint or "")
    assert offline.attempts == [] and served.server.requests == []


def test_offline_uses_a_cached_id_map_for_ids_never_opened(
    served: Served, offline: Offline
) -> None:
    read_description("lazy-fish")  # caches the id map (not lazy-fish/1.2's description)
    offline.activate()
    with pytest.raises(OfflineError) as info:
        read_description("lazy-fish/1.2")
    assert "'lazy-fish/1.2' resolved to" in str(info.value)
    assert info.value.missing.endswith("files/lazy-fish/1.2/rdf.yaml")
    assert offline.attempts == []


def test_offline_missing_weights_are_named(served: Served, offline: Offline) -> None:
    read_description("lazy-fish/1.2")  # only the description is cached, not its files
    offline.activate()
    summary = validate_format("lazy-fish/1.2")
    assert summary.status == "failed"
    text = summary.format_text()
    assert "offline:" in text and "weights.npz is not in the cache" in text


def test_collection_going_away_serves_cached_copies_with_warnings(served: Served) -> None:
    first = load_description("lazy-fish")
    served.server.stop()
    idmap.forget_id_maps()  # as in a new process
    with pytest.warns(UserWarning, match=r"id_map.json: ConnectionError; using the copy cached"):
        again = load_description("lazy-fish", perform_io_checks=False)
    assert again == first
    # the io checks look covers and documentation up on the server: that needs the server
    summary = validate_format("lazy-fish")
    assert summary.status == "failed"
    assert "could not reach" in summary.format_text()


def test_collection_going_away_falls_back_to_the_record(served: Served, cache_dir: Path) -> None:
    first = read_description("affable-shark")
    served.server.stop()
    shutil.rmtree(cache_dir / "downloads")  # no cached answer of the collection's pattern URL
    with pytest.warns(UserWarning, match=r"cannot reach the bioimage.io collection.*using what"):
        again = read_description("affable-shark")
    assert again.data == first.data and again.root == first.root
    assert again.resolution is not None and again.resolution.recorded_at is not None
    with pytest.warns(UserWarning):
        summary = validate_format("affable-shark", perform_io_checks=False)
    (resolve,) = [d for d in summary.details if d.name.startswith("resolve 'affable-shark'")]
    assert "using what 'affable-shark' resolved to on" in resolve.warnings[0].msg


def test_latest_version_is_asked_again_online(served: Served) -> None:
    assert read_description("affable-shark").data["name"] == "affable shark"
    rdf = served.collection.root / "artifacts" / "affable-shark" / "files" / "rdf.yaml"
    rdf.write_text(rdf.read_text().replace("name: affable shark", "name: affable shark two"))
    later = rdf.stat().st_mtime + 10
    os.utime(rdf, (later, later))
    assert read_description("affable-shark").data["name"] == "affable shark two"


def test_emptied_cache_offline_names_the_description(
    served: Served, offline: Offline, cache_dir: Path
) -> None:
    read_description("lazy-fish/1.2")
    shutil.rmtree(cache_dir / "downloads")
    offline.activate()
    with pytest.raises(OfflineError, match=r"'lazy-fish/1.2' resolved to .* not in the cache"):
        read_description("lazy-fish/1.2")


def test_changed_content_copy_of_a_pattern_record_is_not_used(
    served: Served, offline: Offline, cache_dir: Path
) -> None:
    read_description("affable-shark")
    (copy,) = (cache_dir / "resolved").glob("*/content")
    copy.write_text("name: tampered\n")
    offline.activate()
    with pytest.raises(SourceError, match="missing or changed"):
        read_description("affable-shark")


def test_empty_cache_forgets_resolutions(served: Served, offline: Offline, cache_dir: Path) -> None:
    from bioimageio_core.sources import empty_cache

    read_description("affable-shark")
    assert any((cache_dir / "resolved").iterdir())
    empty_cache()
    assert not (cache_dir / "resolved").exists()
    offline.activate()
    with pytest.raises(OfflineError, match="no earlier resolution is recorded"):
        read_description("affable-shark")
