"""HTTP transport of the server client: one persistent connection per thread (``http.client``).

A forward call is one small request after another to the same server, so what matters is the
fixed cost per request: no connection pool, no proxy or cookie lookup, no per-request header
merging; the request line, the headers and the body leave in as few writes as possible
(``TCP_NODELAY`` is set). Each thread keeps its own keep-alive connection, so threads never
share one and concurrent calls from one client each get their own.

The client connects directly: ``HTTP(S)_PROXY`` variables are not used (a server is reached
on its own address). For https, the system's certificate authorities are trusted
(``SSL_CERT_FILE`` adds others).
"""

from __future__ import annotations

import http.client
import json as json_lib
import socket
import ssl
import threading
import weakref
from collections.abc import Mapping
from email.message import Message
from typing import IO, Any
from urllib.parse import urlsplit

import attrs

BLOCK_SIZE = 1024 * 1024
"""Bytes per write when a body is a file (a package upload)."""


class ConnectFailed(OSError):
    """No connection could be made (refused, unknown host, connect timeout): worth a retry."""


class Dropped(OSError):
    """The connection broke while a request was sent or its answer read."""

    def __init__(self, reason: BaseException, *, reused: bool) -> None:
        super().__init__(str(reason))
        self.reason = reason
        self.reused = reused
        """Whether the connection had served a request before (the server may have closed an
        idle keep-alive connection: then the request never reached it)."""


class ReadTimeout(OSError):
    """The server did not answer in time."""


@attrs.frozen
class Response:
    """A complete answer: status, headers (case-insensitive ``get``), body."""

    status_code: int
    headers: Message
    content: bytes

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` if it is none)."""
        return json_lib.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


class _Slot:
    """A thread's connection (in the thread's local storage): when the thread ends, the slot
    is collected and its connection closed."""

    __slots__ = ("box", "__weakref__")

    def __init__(self) -> None:
        self.box: list[http.client.HTTPConnection | None] = [None]
        weakref.finalize(self, _close_box, self.box)


def _close_box(box: list[http.client.HTTPConnection | None]) -> None:
    connection, box[0] = box[0], None
    if connection is not None:
        connection.close()


class Connections:
    """Keep-alive connections to one ``http(s)://host:port``, one per thread.

    ``connect_timeout_s`` bounds connecting, ``read_timeout_s`` each wait for data once
    connected. A thread's connection is closed when the thread ends; :meth:`close` closes every
    connection, and a later request opens a new one.
    """

    def __init__(self, url: str, *, connect_timeout_s: float, read_timeout_s: float) -> None:
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.base_path = parts.path.rstrip("/")
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self._local = threading.local()
        self._lock = threading.Lock()
        self._slots: weakref.WeakSet[_Slot] = weakref.WeakSet()
        self._ssl_context: ssl.SSLContext | None = None

    def _new(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self.https:
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
            connection = http.client.HTTPSConnection(
                self.host,
                self.port,
                timeout=self.connect_timeout_s,
                context=self._ssl_context,
                blocksize=BLOCK_SIZE,
            )
        else:
            connection = http.client.HTTPConnection(
                self.host, self.port, timeout=self.connect_timeout_s, blocksize=BLOCK_SIZE
            )
        try:
            connection.connect()
        except (OSError, http.client.HTTPException) as e:
            connection.close()
            raise ConnectFailed(_connect_reason(e)) from e
        assert connection.sock is not None
        connection.sock.settimeout(self.read_timeout_s)
        return connection

    def _slot(self) -> _Slot:
        slot: _Slot | None = getattr(self._local, "slot", None)
        if slot is None:
            slot = self._local.slot = _Slot()
            with self._lock:
                self._slots.add(slot)
        return slot

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection (opened if needed) and whether it served a request."""
        slot = self._slot()
        connection = slot.box[0]
        if connection is not None and connection.sock is not None:
            return connection, True
        _close_box(slot.box)
        slot.box[0] = connection = self._new()
        return connection, False

    def _forget(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        slot = self._slot()
        if slot.box[0] is connection:
            slot.box[0] = None

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | IO[bytes] | None,
        headers: Mapping[str, str],
    ) -> Response:
        """Send one request on this thread's connection and read the whole answer.

        Raises:
            ConnectFailed: no connection could be made.
            Dropped: the connection broke (``reused`` tells whether it was an idle one).
            ReadTimeout: no answer within ``read_timeout_s``.
            http.client.HTTPException: an answer that is no HTTP.
        """
        connection, reused = self._connection()
        try:
            connection.request(method, self.base_path + path, body=body, headers=dict(headers))
            answer = connection.getresponse()
            content = answer.read()
        except TimeoutError as e:
            self._forget(connection)
            raise ReadTimeout(str(e)) from e
        except (OSError, http.client.RemoteDisconnected, http.client.IncompleteRead) as e:
            self._forget(connection)
            raise Dropped(e, reused=reused) from e
        except http.client.HTTPException:
            self._forget(connection)
            raise
        if answer.will_close:
            self._forget(connection)
        return Response(answer.status, answer.headers, content)

    def close(self) -> None:
        with self._lock:
            slots = list(self._slots)
        for slot in slots:
            _close_box(slot.box)


def _connect_reason(error: BaseException) -> str:
    """Why connecting failed, in a few words."""
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return f"unknown host ({error.strerror or error})"
    if isinstance(error, TimeoutError):
        return "connect timeout"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed ({error.reason or error})"
    return " ".join(str(error).split()) or type(error).__name__


__all__ = ["ConnectFailed", "Connections", "Dropped", "ReadTimeout", "Response"]
