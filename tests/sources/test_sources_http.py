"""Remote sources through a local HTTP server: URLs to YAML and zip, cache, sha256, timeouts."""

from __future__ import annotations

import hashlib
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bioimageio_core.errors import HashMismatchError, SourceError
from bioimageio_core.sources import UrlRoot, ZipRoot, download, open_file, read_description
from bioimageio_core.sources.roots import url_base, url_file_name

if TYPE_CHECKING:
    from tests.conftest import FileServer

YAML = "name: remote\ntype: model\nformat_version: 0.5.4\n"
PAYLOAD = bytes(range(256)) * 40
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def cached_files(cache_dir: Path) -> list[Path]:
    return [p for p in cache_dir.rglob("*") if p.is_file() and not p.name.startswith(".")]


def test_sources_url_to_yaml_resolves_relative_references(http_server: FileServer) -> None:
    (http_server.root / "models" / "m1" / "data").mkdir(parents=True)
    (http_server.root / "models" / "m1" / "rdf.yaml").write_text(YAML)
    (http_server.root / "models" / "m1" / "data" / "w.bin").write_bytes(PAYLOAD)
    raw = read_description(http_server.url("models/m1/rdf.yaml"))
    assert raw.data["name"] == "remote"
    assert raw.root == UrlRoot(http_server.url("models/m1/"))
    assert raw.file_name == "rdf.yaml"
    path = open_file(raw.root, "data/w.bin", PAYLOAD_SHA)
    assert path.read_bytes() == PAYLOAD
    assert path.name == "w.bin"
    assert http_server.count("models/m1/data/w.bin") == 1


def test_sources_url_to_zip(http_server: FileServer, tmp_path: Path) -> None:
    with zipfile.ZipFile(http_server.root / "pkg.zip", "w") as zf:
        zf.writestr("bioimageio.yaml", YAML)
        zf.writestr("w.bin", PAYLOAD)
    url = http_server.url("pkg.zip")
    raw = read_description(url)
    assert raw.data["name"] == "remote"
    assert isinstance(raw.root, ZipRoot) and raw.root.origin == url
    assert raw.source_name == f"{url}/bioimageio.yaml"
    assert open_file(raw.root, "w.bin", PAYLOAD_SHA).read_bytes() == PAYLOAD


def test_sources_url_without_suffix_is_sniffed(http_server: FileServer) -> None:
    (http_server.root / "records" / "1" / "files" / "rdf.yaml").mkdir(parents=True)
    (http_server.root / "records" / "1" / "files" / "rdf.yaml" / "content").write_text(YAML)
    (http_server.root / "records" / "1" / "files" / "w.bin").write_bytes(PAYLOAD)
    # zenodo style: .../files/<name>/content
    raw = read_description(http_server.url("records/1/files/rdf.yaml/content"))
    assert raw.file_name == "rdf.yaml"
    assert raw.root == UrlRoot(http_server.url("records/1/files/"))
    assert open_file(raw.root, "w.bin").read_bytes() == PAYLOAD


def test_sources_sha256_match_is_cached_without_new_request(
    http_server: FileServer, cache_dir: Path
) -> None:
    (http_server.root / "w.bin").write_bytes(PAYLOAD)
    url = http_server.url("w.bin")
    first = download(url, sha256=PAYLOAD_SHA)
    second = download(url, sha256=PAYLOAD_SHA)
    assert first == second and second.read_bytes() == PAYLOAD
    assert http_server.count("w.bin") == 1
    assert cache_dir in first.parents


def test_sources_sha256_mismatch_leaves_nothing_in_cache(
    http_server: FileServer, cache_dir: Path
) -> None:
    (http_server.root / "w.bin").write_bytes(PAYLOAD)
    url = http_server.url("w.bin")
    wrong = "ab" * 32
    with pytest.raises(HashMismatchError) as info:
        download(url, sha256=wrong)
    assert info.value.expected == wrong and info.value.actual == PAYLOAD_SHA
    message = str(info.value)
    assert url in message and wrong in message and PAYLOAD_SHA in message
    assert cached_files(cache_dir) == []
    # asking again downloads again (nothing bad was kept) and fails again
    with pytest.raises(HashMismatchError):
        open_file(UrlRoot(http_server.base_url), "w.bin", wrong)
    assert http_server.count("w.bin") == 2
    assert cached_files(cache_dir) == []


def test_sources_corrupted_cache_entry_is_refetched(http_server: FileServer) -> None:
    (http_server.root / "w.bin").write_bytes(PAYLOAD)
    url = http_server.url("w.bin")
    path = download(url, sha256=PAYLOAD_SHA)
    path.write_bytes(b"corrupted")
    assert download(url, sha256=PAYLOAD_SHA).read_bytes() == PAYLOAD
    assert http_server.count("w.bin") == 2


def test_sources_without_sha256_revalidates_conditionally(http_server: FileServer) -> None:
    served = http_server.root / "rdf.yaml"
    served.write_text(YAML)
    url = http_server.url("rdf.yaml")
    first = download(url)
    stamp = first.stat().st_mtime_ns
    second = download(url)  # not modified: the server answers 304, the file is kept
    assert second == first and second.stat().st_mtime_ns == stamp
    assert http_server.count("rdf.yaml") == 2
    served.write_text(YAML.replace("remote", "changed"))
    import os

    os.utime(served, (served.stat().st_atime + 10, served.stat().st_mtime + 10))
    assert "changed" in download(url).read_text()


def test_sources_second_load_of_remote_package_does_no_request(http_server: FileServer) -> None:
    (http_server.root / "rdf.yaml").write_text(YAML)
    (http_server.root / "w.bin").write_bytes(PAYLOAD)
    for _ in range(2):
        raw = read_description(http_server.url("rdf.yaml"))
        open_file(raw.root, "w.bin", PAYLOAD_SHA)
    assert http_server.count("w.bin") == 1


def test_sources_http_errors_are_actionable(http_server: FileServer) -> None:
    with pytest.raises(SourceError, match="HTTP 404") as info:
        read_description(http_server.url("missing/rdf.yaml"))
    assert http_server.url("missing/rdf.yaml") in str(info.value)
    with pytest.raises(SourceError, match="could not fetch"):
        download("http://127.0.0.1:9/rdf.yaml")  # discard port: connection refused


def test_sources_timeout_from_settings(
    http_server: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    (http_server.root / "rdf.yaml").write_text(YAML)
    http_server.delay_s = 0.5
    monkeypatch.setenv("BIOIMAGEIO_HTTP_TIMEOUT", "0.1")
    with pytest.raises(SourceError, match="timed out") as info:
        read_description(http_server.url("rdf.yaml"))
    assert "BIOIMAGEIO_HTTP_TIMEOUT" in str(info.value) and "0.1 s" in str(info.value)
    monkeypatch.setenv("BIOIMAGEIO_HTTP_TIMEOUT", "5")  # read at call time: now it succeeds
    assert read_description(http_server.url("rdf.yaml")).data["name"] == "remote"


def test_sources_download_size_bound(
    http_server: FileServer, monkeypatch: pytest.MonkeyPatch, cache_dir: Path
) -> None:
    (http_server.root / "w.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("BIOIMAGEIO_MAX_DOWNLOAD_BYTES", str(len(PAYLOAD) - 1))
    with pytest.raises(SourceError, match="refusing to download"):
        download(http_server.url("w.bin"))
    assert cached_files(cache_dir) == []


def test_sources_cache_path_read_at_call_time(
    http_server: FileServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (http_server.root / "w.bin").write_bytes(PAYLOAD)
    other = tmp_path / "other-cache"
    monkeypatch.setenv("BIOIMAGEIO_CACHE_PATH", str(other))
    path = download(http_server.url("w.bin"), sha256=PAYLOAD_SHA)
    assert other in path.parents


@settings(max_examples=60, deadline=None)
@given(
    folders=st.lists(st.from_regex(r"[a-z0-9_-]{1,8}", fullmatch=True), max_size=3),
    name=st.from_regex(r"[a-z0-9_-]{1,8}\.(yaml|zip|npy)", fullmatch=True),
    zenodo=st.booleans(),
)
def test_sources_url_base_and_name_rebuild_the_url(
    folders: list[str], name: str, zenodo: bool
) -> None:
    plain = "https://example.org/" + "".join(f + "/" for f in folders) + name
    url = plain + "/content" if zenodo else plain
    assert url_file_name(url) == name
    assert UrlRoot(url_base(url)).join(name) == plain
    assert UrlRoot(url_base(url)).join("sub/w.pt") == plain.rsplit("/", 1)[0] + "/sub/w.pt"


class _Trickle(BaseHTTPRequestHandler):
    """Sends its answer one byte every 0.05 s (headers too, with ``/headers``); gives up after
    8 s so that a client without a deadline does not hang the test run."""

    def do_GET(self) -> None:
        body = b"x" * 10_000
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        slow, fast = (head + body, b"") if self.path == "/headers" else (body, head)
        end = time.monotonic() + 8
        try:
            self.wfile.write(fast)
            self.wfile.flush()
            for i in range(len(slow)):
                if time.monotonic() > end:
                    break
                self.wfile.write(slow[i : i + 1])
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass  # the client hung up

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def trickle_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    host, port = server.server_address[:2]
    yield f"http://{host!s}:{port}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("phase", ["body", "headers"])
def test_sources_total_deadline_for_a_trickling_server(
    trickle_server: str, monkeypatch: pytest.MonkeyPatch, cache_dir: Path, phase: str
) -> None:
    monkeypatch.setenv("BIOIMAGEIO_HTTP_TIMEOUT", "2")  # every byte comes well within this
    monkeypatch.setenv("BIOIMAGEIO_HTTP_TOTAL_TIMEOUT", "1")
    started = time.monotonic()
    with pytest.raises(SourceError, match="not complete after 1 s") as info:
        download(f"{trickle_server}/{phase}")
    elapsed = time.monotonic() - started
    assert elapsed < 3.5, elapsed
    assert "BIOIMAGEIO_HTTP_TOTAL_TIMEOUT" in str(info.value)
    time.sleep(0.3)  # the transfer thread removes its partial file
    assert [p for p in cache_dir.rglob("*") if p.is_file()] == []


def test_sources_damaged_unpinned_download_is_fetched_again(http_server: FileServer) -> None:
    (http_server.root / "rdf.yaml").write_text(YAML)
    url = http_server.url("rdf.yaml")
    path = download(url)
    path.write_text(YAML.replace("remote", "broken"))  # damaged in the cache
    assert download(url).read_text() == YAML  # not a 304 for the damaged copy
    assert http_server.count("rdf.yaml") == 2
