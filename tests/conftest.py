"""Shared fixtures: an isolated cache folder and a local HTTP file server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bioimageio_core.collection_testing import LocalServer


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty cache (``BIOIMAGEIO_CACHE_PATH``), never the user's, and a
    bioimage.io collection that cannot be reached."""
    path = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("BIOIMAGEIO_CACHE_PATH", str(path))
    # ids never reach the public collection from a test: port 9 (discard) refuses at once
    for variable, url in UNREACHABLE_COLLECTION.items():
        monkeypatch.setenv(variable, url)
    monkeypatch.delenv("BIOIMAGEIO_OFFLINE", raising=False)  # `--offline` sets it in-process
    return path


UNREACHABLE_COLLECTION = {
    "BIOIMAGEIO_COLLECTION_HTTP_PATTERN": "http://127.0.0.1:9/artifacts/{bioimageio_id}/rdf.yaml",
    "BIOIMAGEIO_ID_MAP": "http://127.0.0.1:9/id_map.json",
    "BIOIMAGEIO_ID_MAP_DRAFT": "http://127.0.0.1:9/id_map_draft.json",
    "BIOIMAGEIO_HUGGINGFACE_HTTP_PATTERN": "http://127.0.0.1:9/{repo_id}/{branch}/bioimageio.yaml",
}
"""Collection settings of every test unless it sets its own (no test uses the internet)."""


class FileServer(LocalServer):
    """Serves ``root`` on 127.0.0.1 and counts GET requests (:class:`LocalServer`); can delay
    each answer by ``delay_s`` seconds."""

    delay_s = 0.0

    def _record(self, path: str) -> None:
        super()._record(path)
        if self.delay_s:
            time.sleep(self.delay_s)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[FileServer]:
    """A local HTTP server on 127.0.0.1 serving a fresh temporary folder (``server.root``)."""
    root = tmp_path / "served"
    root.mkdir()
    with FileServer(root) as server:
        yield server
