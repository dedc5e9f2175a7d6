"""A miniature bioimage.io collection served on 127.0.0.1, for tests of id resolution.

:class:`MiniCollection` lays out a folder like the public collection::

    artifacts/<id>/files/rdf.yaml (+ files)   latest versions (COLLECTION_HTTP_PATTERN)
    files/<anything>                          other published files (versions, zip packages)
    id_map.json, id_map_draft.json            id, version or DOI -> {source, sha256}

and :class:`LocalServer` serves it (standard library only), counting requests, answering
``404`` for missing files, and able to stop in the middle of a test. ``collection.env(server)``
gives the ``BIOIMAGEIO_*`` variables that point the resolver at it. Used by the core's tests and
by plugin end-to-end tests; nothing here is imported by the core itself.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import zipfile
from collections import Counter
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ID_MAP = "id_map.json"
ID_MAP_DRAFT = "id_map_draft.json"


class LocalServer:
    """Serves ``root`` on 127.0.0.1 (a free port) until :meth:`stop`; use it as a context manager.

    ``requests`` lists every GET path (with its query string), in order.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.requests: list[str] = []
        self._lock = threading.Lock()
        handler = partial(_Handler, self, directory=str(root))
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._stopped = False

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    def url(self, path: str) -> str:
        return self.base_url + path.lstrip("/")

    def count(self, path: str | None = None) -> int:
        """GET requests for ``path`` (without query string), or all of them."""
        with self._lock:
            if path is None:
                return len(self.requests)
            counts = Counter(r.split("?", 1)[0] for r in self.requests)
            return counts["/" + path.lstrip("/")]

    def _record(self, path: str) -> None:
        with self._lock:
            self.requests.append(path)

    def start(self) -> LocalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down: later requests to it fail to connect."""
        if not self._stopped:
            self._stopped = True
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(SimpleHTTPRequestHandler):
    timeout = 10  # seconds a connection may stay idle

    def __init__(self, state: LocalServer, *args: Any, **kwargs: Any) -> None:
        self._state = state
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        self._state._record(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class MiniCollection:
    """Builds a collection folder; publish models, then :meth:`write_maps`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.id_map: dict[str, Any] = {}
        self.draft_map: dict[str, Any] = {}

    def publish_latest(self, resource_id: str, model_folder: Path) -> str:
        """Copy ``model_folder`` to ``artifacts/<id>/files/`` (what the collection pattern
        serves); returns the path of its ``rdf.yaml`` relative to the server root."""
        target = self.root / "artifacts" / resource_id / "files"
        _copy_folder(model_folder, target)
        return f"artifacts/{resource_id}/files/rdf.yaml"

    def publish_files(self, path: str, model_folder: Path) -> str:
        """Copy ``model_folder`` to ``files/<path>/``; returns the path of its ``rdf.yaml``."""
        _copy_folder(model_folder, self.root / "files" / path)
        return f"files/{path}/rdf.yaml"

    def publish_zip(self, path: str, model_folder: Path) -> str:
        """Pack ``model_folder`` into ``files/<path>`` (a zip package); returns that path."""
        target = self.root / "files" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target, "w") as zf:
            for file in sorted(model_folder.iterdir()):
                if file.is_file():
                    zf.write(file, file.name)
        return f"files/{path}"

    def add_entry(
        self,
        key: str,
        server: LocalServer,
        path: str,
        *,
        draft: bool = False,
        sha256: str | None = None,
        **extra: Any,
    ) -> None:
        """Map ``key`` to the file at ``path`` (sha256 computed unless given)."""
        entry = {"source": server.url(path), "sha256": sha256 or sha256_of(self.root / path)}
        entry.update(extra)
        (self.draft_map if draft else self.id_map)[key] = entry

    def write_maps(self) -> None:
        (self.root / ID_MAP).write_text(json.dumps(self.id_map, indent=1))
        (self.root / ID_MAP_DRAFT).write_text(json.dumps(self.draft_map, indent=1))

    @staticmethod
    def env(server: LocalServer) -> dict[str, str]:
        """``BIOIMAGEIO_*`` variables pointing the built-in resolvers at ``server``."""
        return {
            "BIOIMAGEIO_COLLECTION_HTTP_PATTERN": server.url(
                "artifacts/{bioimageio_id}/files/rdf.yaml"
            ),
            "BIOIMAGEIO_ID_MAP": server.url(ID_MAP),
            "BIOIMAGEIO_ID_MAP_DRAFT": server.url(ID_MAP_DRAFT),
            "BIOIMAGEIO_RESOLVE_DRAFT": "1",
            "BIOIMAGEIO_HUGGINGFACE_HTTP_PATTERN": server.url(
                "huggingface/{repo_id}/resolve/{branch}/package/bioimageio.yaml"
            ),
        }


def _copy_folder(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for file in source.iterdir():
        if file.is_file():
            shutil.copyfile(file, target / file.name)
