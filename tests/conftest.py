"""Shared fixtures: an isolated cache folder and a local HTTP file server."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

CONFORMANCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "conformance"


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


class FileServer:
    """Serves ``root`` on 127.0.0.1; counts GET requests per path; can delay answers."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: Counter[str] = Counter()
        self.delay_s = 0.0
        self._lock = threading.Lock()
        handler = partial(_Handler, self, directory=str(root))
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    def url(self, path: str) -> str:
        return self.base_url + path.lstrip("/")

    def count(self, path: str) -> int:
        with self._lock:
            return self.requests["/" + path.lstrip("/")]

    def _record(self, path: str) -> None:
        with self._lock:
            self.requests[path.split("?", 1)[0]] += 1

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class _Handler(SimpleHTTPRequestHandler):
    timeout = 10  # seconds a connection may stay idle: the server never hangs a test run

    def __init__(self, server_state: FileServer, *args: object, **kwargs: object) -> None:
        self._state = server_state
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def do_GET(self) -> None:
        self._state._record(self.path)
        if self._state.delay_s:
            time.sleep(self._state.delay_s)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[FileServer]:
    """A local HTTP server on 127.0.0.1 serving a fresh temporary folder (``server.root``)."""
    root = tmp_path / "served"
    root.mkdir()
    with FileServer(root) as server:
        yield server


@pytest.fixture
def conformance() -> Path:
    """The shared conformance data; skips when ``../shared`` is absent."""
    if not CONFORMANCE.is_dir():
        pytest.skip(
            f"conformance data not found at {CONFORMANCE} (needs ../shared next to the project)"
        )
    return CONFORMANCE.resolve()
