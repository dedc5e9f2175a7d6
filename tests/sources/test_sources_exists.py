"""Validation looks up covers and a dataset's data without downloading them.

A local HTTP server (127.0.0.1) counts the body bytes it serves: checking that a 2 MB dataset
exists costs a HEAD request (no body), or one byte when the server refuses HEAD.
"""

from __future__ import annotations

import json
import re
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from http_servers import ThreadedServer

from bioimageio_core.cli import main
from bioimageio_core.errors import SourceError
from bioimageio_core.loading import validate_format
from bioimageio_core.sources import FolderRoot, ZipRoot, check_file
from bioimageio_core.sources.http import check_url

BIG = bytes(range(256)) * 8192  # 2 MiB


class CountingServer(ThreadedServer):
    """Serves ``root``; counts requests per (method, path) and the body bytes sent."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.refuse_head = False
        self.requests: Counter[tuple[str, str]] = Counter()
        self.body_bytes = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                server._count("HEAD", self.path, 0)
                if server.refuse_head:
                    self._reply(405, b"", head=True)
                    return
                self._serve(head=True)

            def do_GET(self) -> None:
                self._serve(head=False)

            def _serve(self, head: bool) -> None:
                file = server.root / self.path.lstrip("/")
                if not file.is_file():
                    if not head:
                        server._count("GET", self.path, 0)
                    self._reply(404, b"", head=head)
                    return
                data = file.read_bytes()
                status = 200
                match = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
                if match:
                    start, stop = int(match.group(1)), int(match.group(2)) + 1
                    data, status = data[start:stop], 206
                if head:
                    self._reply(status, b"", head=True, length=len(data))
                    return
                server._count("GET", self.path, len(data))
                self._reply(status, data, head=False)

            def _reply(self, status: int, body: bytes, head: bool, length: int | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(Handler)

    def _count(self, method: str, path: str, n: int) -> None:
        with self._lock:
            self.requests[(method, path)] += 1
            self.body_bytes += n

    def url(self, path: str) -> str:
        return f"{self.origin}/{path}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CountingServer]:
    root = tmp_path / "served"
    root.mkdir()
    (root / "data.zip").write_bytes(BIG)
    (root / "cover.png").write_bytes(BIG[:100_000])
    with CountingServer(root) as s:
        yield s


def dataset_yaml(source: str, covers: list[str], documentation: str | None = None) -> str:
    text = (
        "format_version: 0.3.0\ntype: dataset\nname: nuclei images\ndescription: images of nuclei\n"
        "authors: [{name: A}]\ncite: [{text: t, doi: 10.1234/x}]\nlicense: MIT\n"
        f"source: {source}\ncovers: {json.dumps(covers)}\n"
    )
    return text + (f"documentation: {documentation}\n" if documentation else "")


def test_check_url_uses_head_and_transfers_no_content(server: CountingServer) -> None:
    assert check_url(server.url("data.zip")) == "HEAD request"
    assert server.requests == Counter({("HEAD", "/data.zip"): 1})
    assert server.body_bytes == 0


def test_check_url_falls_back_to_a_ranged_get(server: CountingServer) -> None:
    server.refuse_head = True
    assert check_url(server.url("data.zip")) == "GET of the first byte"
    assert server.requests[("GET", "/data.zip")] == 1
    assert server.body_bytes == 1


def test_check_url_of_a_missing_file(server: CountingServer) -> None:
    with pytest.raises(SourceError, match=r"cannot be fetched: HTTP 404"):
        check_url(server.url("nope.zip"))
    server.refuse_head = True
    with pytest.raises(SourceError, match=r"HTTP 404"):
        check_url(server.url("nope.zip"))


@pytest.mark.parametrize("refuse_head", [False, True])
def test_validating_a_dataset_downloads_neither_its_data_nor_its_covers(
    server: CountingServer, tmp_path: Path, cache_dir: Path, refuse_head: bool
) -> None:
    server.refuse_head = refuse_head
    folder = tmp_path / "dataset"
    folder.mkdir()
    (folder / "README.md").write_text("# nuclei\n")
    (folder / "rdf.yaml").write_text(
        dataset_yaml(server.url("data.zip"), [server.url("cover.png")], "README.md")
    )
    summary = validate_format(folder)
    assert summary.status == "valid-format", summary.format_text()
    assert server.body_bytes == (2 if refuse_head else 0)  # one byte per remote file at most
    assert not [p for p in cache_dir.rglob("*") if p.is_file()], "nothing was downloaded"
    how = "GET of the first byte" if refuse_head else "HEAD request"
    io = summary.details[-1]
    assert io.note == f"1 cover: {how}; 1 documentation: found; 1 source: {how}"
    assert summary.headline().endswith(f"a valid dataset description; referenced files checked: {io.note}")
    assert "not tested" not in summary.format_text()


def test_a_missing_dataset_source_is_an_error_at_its_field(
    server: CountingServer, tmp_path: Path
) -> None:
    (tmp_path / "rdf.yaml").write_text(dataset_yaml(server.url("gone.zip"), []))
    summary = validate_format(tmp_path / "rdf.yaml")
    assert summary.status == "failed"
    (error,) = [e for _, e in summary.errors]
    assert error.loc == ("source",)
    assert "gone.zip cannot be fetched: HTTP 404" in error.msg
    assert server.body_bytes == 0


def test_a_remote_description_checks_its_relative_files_by_head(server: CountingServer) -> None:
    yaml_text = dataset_yaml("data.zip", ["cover.png"])
    (server.root / "rdf.yaml").write_text(yaml_text)
    summary = validate_format(server.url("rdf.yaml"))
    assert summary.status == "valid-format", summary.format_text()
    assert server.body_bytes == len(yaml_text.encode())  # only the description itself
    assert server.requests[("HEAD", "/data.zip")] == 1 and server.requests[("HEAD", "/cover.png")] == 1


def test_files_of_a_package_are_looked_up_in_the_zip(tmp_path: Path) -> None:
    package = tmp_path / "p.zip"
    with zipfile.ZipFile(package, "w") as zf:
        zf.writestr("rdf.yaml", dataset_yaml("data/images.zip", ["cover.png"]))
        zf.writestr("data/images.zip", b"x")
    summary = validate_format(package)
    assert summary.status == "failed"
    assert [e.loc for _, e in summary.errors] == [("covers", 0)]
    assert "file not found: cover.png" in summary.first_error_text()
    assert check_file(ZipRoot(package), "data/images.zip") == "found in the package"
    assert check_file(FolderRoot(tmp_path), "p.zip") == "found"
    with pytest.raises(SourceError, match="file not found: nope"):
        check_file(FolderRoot(tmp_path), "nope")


def test_an_unreadable_local_name_is_a_file_error_not_a_crash(tmp_path: Path) -> None:
    """A name the file system refuses (too long) is reported at its field, like a missing file."""
    name = "c" * 300 + ".png"
    (tmp_path / "rdf.yaml").write_text(dataset_yaml("data.zip", [name]))
    (tmp_path / "data.zip").write_bytes(b"x")
    with pytest.raises(SourceError, match="cannot read"):
        check_file(FolderRoot(tmp_path), name)
    summary = validate_format(tmp_path / "rdf.yaml")
    assert summary.status == "failed"
    assert [(e.loc, e.type) for _, e in summary.errors] == [(("covers", 0), "file_error")]
    assert "cannot read" in summary.first_error_text()


def test_cli_validate_and_test_a_dataset_write_json_and_html(
    server: CountingServer, tmp_path: Path
) -> None:
    (tmp_path / "rdf.yaml").write_text(dataset_yaml(server.url("data.zip"), [server.url("cover.png")]))
    report = tmp_path / "out" / "report.html"
    result = CliRunner().invoke(
        main, ["validate", str(tmp_path / "rdf.yaml"), "--format", "json", "--summary", str(report)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["type"] == "dataset" and data["status"] == "valid-format"
    assert data["source_name"].endswith("rdf.yaml")
    assert [d["name"] for d in data["details"]] == ["format", "io checks"]
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "nuclei images: valid-format" in page
    tested = CliRunner().invoke(main, ["test", str(tmp_path / "rdf.yaml"), "--summary", str(tmp_path / "t.md")])
    assert tested.exit_code == 0, tested.output
    assert tested.stdout.startswith("OK: nuclei images passed: a valid dataset description")
    assert (tmp_path / "t.md").read_text(encoding="utf-8").startswith("# ✔️ nuclei images: passed")
    assert server.body_bytes == 0


def test_existence_checks_keep_references_inside_the_root(
    server: CountingServer, tmp_path: Path
) -> None:
    """The rules of open_file hold: nothing outside the description's folder is looked up."""
    (tmp_path / "inside").mkdir()
    (tmp_path / "secret.txt").write_text("x")
    (tmp_path / "inside" / "link.txt").symlink_to(tmp_path / "secret.txt")
    root = FolderRoot(tmp_path / "inside")
    for reference in ("../secret.txt", str(tmp_path / "secret.txt"), "link.txt"):
        with pytest.raises(SourceError, match="outside the description's folder"):
            check_file(root, reference)
    from bioimageio_core.sources import UrlRoot

    with pytest.raises(SourceError, match="outside the description's URL folder"):
        check_file(UrlRoot(server.url("a/")), "../data.zip")
    assert server.requests == Counter()


def test_a_server_that_never_answers_times_out(
    server: CountingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    monkeypatch.setenv("BIOIMAGEIO_HTTP_TIMEOUT", "0.3")
    monkeypatch.setenv("BIOIMAGEIO_HTTP_TOTAL_TIMEOUT", "1")
    try:
        with pytest.raises(SourceError, match="timed out checking"):
            check_url(f"http://127.0.0.1:{silent.getsockname()[1]}/data.zip")
    finally:
        silent.close()
