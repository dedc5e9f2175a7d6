"""A test's own HTTP server on 127.0.0.1 (a free port), answering from a thread.

Import as ``from http_servers import QuietHandler, ThreadedServer`` (``tests/`` is on ``sys.path`` through
``tests/conftest.py``). For serving a folder use ``LocalServer`` of
``bioimageio_core.collection_testing`` (the ``http_server`` fixture).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar

S = TypeVar("S", bound="ThreadedServer")


class ThreadedServer:
    """Serves requests with ``handler`` until the ``with`` block ends."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self: S) -> S:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and answers whole replies with :meth:`reply`."""

    def reply(self, status: int, content: bytes, headers: Mapping[str, str] | None = None) -> None:
        """Send ``status``, ``headers``, the content length and ``content``."""
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: object) -> None:
        pass
