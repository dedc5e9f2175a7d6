"""The server client without a server extra: retries, error mapping, upload packages, choices.

A small scripted HTTP server on 127.0.0.1 plays the server's part.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from http_servers import QuietHandler, ThreadedServer

from bioimageio_core import load_description
from bioimageio_core.errors import (
    InputError,
    PluginError,
    ServerError,
    UnsupportedWeightFormatError,
)
from bioimageio_core.remote import (
    ModelRef,
    ServerClient,
    ServerInfo,
    UnknownModelError,
    check_server_formats,
    model_reference,
)
from bioimageio_core.remote.client import RemoteWeightFormat, normalize_server_url
from bioimageio_core.remote.package import write_upload_package
from bioimageio_core.remote.protocol import AXES_HEADER, encode_arrays, error_body
from bioimageio_core.sources import ZipRoot, sha256_of_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny-nuclei-unet" / "rdf.yaml"

Reply = tuple[int, dict[str, str], bytes]


class Scripted(ThreadedServer):
    """Answers requests from a script: one reply per request (the last one repeats)."""

    def __init__(self, replies: list[Reply], *, keep_alive: bool = False) -> None:
        self.replies = replies
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        state = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                state.seen.append((self.command, self.path, dict(self.headers), body))
                status, headers, content = state.replies[min(len(state.seen), len(state.replies)) - 1]
                self.reply(status, content, headers)

            do_GET = do_POST = do_PUT = do_HEAD = _answer

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return self.origin


def _json(status: int, data: Any) -> Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(data).encode()


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield port


def test_server_url_must_be_http() -> None:
    assert normalize_server_url(" http://host:8000/ ") == "http://host:8000"
    for bad in ("host:8000", "ftp://host", "/tmp/socket", ""):
        with pytest.raises(InputError, match="not the URL of a server"):
            normalize_server_url(bad)


def test_unreachable_server_is_retried_with_backoff_then_one_clear_error(closed_port: int) -> None:
    client = ServerClient(f"http://127.0.0.1:{closed_port}", retries=3, backoff_s=0.05)
    started = time.perf_counter()
    with pytest.raises(ServerError) as info, client:
        client.health()
    elapsed = time.perf_counter() - started
    assert "cannot reach the server at http://127.0.0.1" in info.value.message
    assert "(4 tries)" in info.value.message and "connection refused" in info.value.message
    assert elapsed >= 0.05 + 0.1 + 0.2  # backoff doubled each time
    assert "bioimageio-run serve" in (info.value.hint or "")


def test_503_is_retried_then_answered() -> None:
    with Scripted([_json(503, {}), _json(503, {}), _json(200, {"status": "ok"})]) as fake:
        with ServerClient(fake.url, backoff_s=0.01) as client:
            assert client.health() == {"status": "ok"}
        assert len(fake.seen) == 3


def test_token_is_sent_as_bearer_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOIMAGEIO_SERVER_TOKEN", "t" * 20)
    with Scripted([_json(200, {"status": "ok"})]) as fake, ServerClient(fake.url) as client:
        client.health()
        assert fake.seen[0][2]["Authorization"] == "Bearer " + "t" * 20


@pytest.mark.parametrize(
    ("token", "message"), [(None, "needs a token"), ("w" * 20, "refused the token")]
)
def test_401_says_what_to_set(token: str | None, message: str) -> None:
    reply = _json(401, error_body("Unauthorized", "missing or wrong token"))
    with Scripted([reply]) as fake, ServerClient(fake.url, token=token) as client:
        with pytest.raises(ServerError, match=message) as info:
            client.info()
    assert info.value.status == 401
    assert "BIOIMAGEIO_SERVER_TOKEN" in (info.value.hint or "")
    assert len(fake.seen) == 1  # never retried


@pytest.mark.parametrize(
    ("type_", "status", "expected"),
    [
        ("InputError", 422, InputError),
        ("PayloadError", 400, InputError),
        ("PluginError", 422, PluginError),
        ("UnsupportedWeightFormatError", 422, UnsupportedWeightFormatError),
        ("UnknownModel", 404, UnknownModelError),
        ("RemoteCodeError", 403, ServerError),
        ("InternalError", 500, ServerError),
    ],
)
def test_server_errors_keep_their_kind(type_: str, status: int, expected: type[Exception]) -> None:
    reply = _json(status, error_body(type_, "what went wrong", hint="what to do", loc="raw"))
    with Scripted([reply]) as fake, ServerClient(fake.url, retries=0) as client:
        with pytest.raises(expected) as info:
            client.predict("k" * 32, {"raw": np.zeros((1, 1, 4, 4), np.float32)}, {"raw": "bcyx"})
    error = info.value
    assert "what went wrong" in str(error) and fake.url in str(error)
    assert getattr(error, "hint", None) == "what to do"


def test_answer_outside_the_wire_format_is_a_server_error() -> None:
    with Scripted([(200, {"Content-Type": "text/html"}, b"<html>proxy login</html>")]) as fake:
        with ServerClient(fake.url) as client, pytest.raises(ServerError, match="unexpected"):
            client.info()
        good_axes = {AXES_HEADER: '{"out": ["y"]}'}
        fake.replies = [(200, good_axes, b"not an npz")]
        with ServerClient(fake.url) as client, pytest.raises(ServerError, match="not an .npz"):
            client.predict("k", {"raw": np.zeros(3)}, {"raw": ["y"]})


def test_predict_sends_npz_with_axes_and_decodes_the_answer() -> None:
    out = np.arange(6, dtype=np.float32).reshape(1, 6)
    headers = {
        AXES_HEADER: '{"out": ["batch", "x"]}',
        "Server-Timing": "forward;dur=12.5, server;desc=x;dur=13, bad;dur=x",
    }
    reply = (200, headers, encode_arrays({"out": out}))
    with Scripted([reply]) as fake, ServerClient(fake.url) as client:
        result = client.predict("abc", {"raw": np.ones((1, 6), np.uint8)}, {"raw": ["batch", "x"]})
        assert client.last_timing == {"forward": 12.5, "server": 13.0}
    np.testing.assert_array_equal(result["out"], out)
    method, path, headers, _ = fake.seen[0]
    assert (method, path) == ("POST", "/v1/models/abc/predict")
    assert headers["Content-Type"] == "application/x-npz"
    assert json.loads(headers[AXES_HEADER]) == {"raw": ["batch", "x"]}


def test_a_request_larger_than_the_server_accepts_is_refused_here() -> None:
    info = {"api_version": "v1", "version": "x", "limits": {"max_request_bytes": 1000}}
    with Scripted([_json(200, info)]) as fake, ServerClient(fake.url) as client:
        client.info()
        with pytest.raises(InputError, match="accepts at most"):
            client.predict("k", {"raw": np.zeros(1000, np.float32)}, {"raw": ["x"]})
        assert len(fake.seen) == 1  # nothing sent


def test_other_api_version_is_refused() -> None:
    with Scripted([_json(200, {"api_version": "v2", "version": "9"})]) as fake:
        with ServerClient(fake.url) as client, pytest.raises(ServerError, match="speaks API"):
            client.info()


def test_upload_package_is_reproducible_and_loads(tmp_path: Path) -> None:
    descr = load_description(EXAMPLE, perform_io_checks=False)
    first = write_upload_package(descr, tmp_path / "a.zip")
    second = write_upload_package(descr, tmp_path / "b.zip")
    assert sha256_of_file(first) == sha256_of_file(second)
    again = load_description(first)
    assert again.name == descr.name
    assert set(again.weights.available_formats) == set(descr.weights.available_formats)


def test_model_reference() -> None:
    descr = load_description(EXAMPLE, perform_io_checks=False)
    url = "https://example.org/models/rdf.yaml"
    assert model_reference(url, descr) == ModelRef(source=url)
    assert model_reference("affable-shark", descr) == ModelRef(source="affable-shark")
    assert model_reference(str(EXAMPLE), descr) is None  # a local model is uploaded
    assert model_reference(descr, descr) is None
    import attrs

    zipped = attrs.evolve(descr, root=ZipRoot(Path("/cache/x.zip"), origin="https://x.org/m.zip"))
    assert model_reference(zipped, zipped) == ModelRef(source="https://x.org/m.zip")


def _info(**formats: str | None) -> ServerInfo:
    return ServerInfo(
        url="http://gpu:8000",
        version="0",
        weight_formats={
            name: RemoteWeightFormat(name, reason, install_hint=f"pip install run-{name}")
            for name, reason in formats.items()
        },
        devices={},
        raw={},
    )


def test_server_formats_are_checked_before_anything_is_sent() -> None:
    descr = load_description(EXAMPLE, perform_io_checks=False)
    check_server_formats(_info(onnx=None), descr, None)
    check_server_formats(_info(onnx=None), descr, "onnx")
    with pytest.raises(UnsupportedWeightFormatError) as info:
        check_server_formats(_info(onnx="onnxruntime is not installed", keras_hdf5=None), descr, None)
    text = str(info.value)
    assert "the server at http://gpu:8000 cannot run 'Tiny nuclei U-Net' (it runs keras_hdf5)" in text
    assert "onnx: onnxruntime is not installed" in text
    assert "torchscript: no plugin on the server provides it" in text
    assert "pip install run-onnx" in text and "bioimageio-run-torch" in text
    with pytest.raises(UnsupportedWeightFormatError, match="has no keras_hdf5 weights"):
        check_server_formats(_info(keras_hdf5=None), descr, "keras_hdf5")


def test_a_server_error_is_not_taken_for_a_batch_the_model_rejects() -> None:
    """The pipeline retries a failed batch block by block (a model exported for batch size 1);
    an unreachable server or a refused token is raised at once instead."""
    import warnings

    from bioimageio_core import create_prediction_pipeline
    from bioimageio_core.adapters import AdapterRequest, ModelAdapter

    descr = load_description(EXAMPLE, perform_io_checks=False)
    calls: list[int] = []

    class Unreachable(ModelAdapter):
        def forward(self, inputs: Any) -> dict[str, Any]:
            calls.append(1)
            raise ServerError("cannot reach the server at http://127.0.0.1:1 (5 tries)")

        def unload(self) -> None:
            pass

    request = AdapterRequest(descr, "onnx", descr.weights.onnx, None, lambda r, s: Path(r), None)  # type: ignore[arg-type]
    pipeline = create_prediction_pipeline(descr, model_adapter=Unreachable(request), batch_size=4)
    x = np.zeros((1, 1, 256, 256), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "failed on a batch … one block per call" warning
        with pytest.raises(ServerError, match="cannot reach"):
            pipeline.predict_sample_with_blocking(pipeline.digest(x, axes="bcyx"), 0, 4)
    assert calls == [1]


class OneAnswerPerConnection:
    """A keep-alive HTTP/1.1 server that closes each connection after one answer without
    saying so (as a server does with a connection idle too long); ``silent`` never answers."""

    def __init__(self, *, silent: bool = False) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.silent = silent
        self.connections = 0
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    head += chunk
                self.requests.append(head.split(b"\r\n", 1)[0])
                if self.silent:
                    time.sleep(0.8)
                    continue
                body = b'{"status":"ok"}'
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                time.sleep(0.05)  # closed after the answer, with no "Connection: close"

    def __enter__(self) -> OneAnswerPerConnection:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()
        self._thread.join(timeout=5)


def test_an_idle_connection_the_server_closed_is_replaced_without_a_retry() -> None:
    with OneAnswerPerConnection() as fake, ServerClient(fake.url, retries=0) as client:
        assert client.health() == {"status": "ok"}
        time.sleep(0.2)  # the server has closed the kept-alive connection meanwhile
        assert client.health() == {"status": "ok"}
    assert fake.connections == 2
    assert fake.requests == [b"GET /v1/health HTTP/1.1"] * 2


def test_no_answer_within_the_read_timeout_is_one_clear_error() -> None:
    import attrs

    from bioimageio_core.settings import get_settings

    settings = attrs.evolve(get_settings(), http_total_timeout=0.3)
    with OneAnswerPerConnection(silent=True) as fake:
        with ServerClient(fake.url, settings=settings) as client, pytest.raises(ServerError) as info:
            client.health()
    assert "did not answer GET /health within 0.3 s" in info.value.message
    assert "BIOIMAGEIO_HTTP_TOTAL_TIMEOUT" in (info.value.hint or "")
    assert fake.connections == 1  # a slow server is not asked again


def test_threads_share_a_client_each_on_its_own_connection() -> None:
    from concurrent.futures import ThreadPoolExecutor

    out = np.arange(4, dtype=np.float32)
    reply = (200, {AXES_HEADER: '{"out": ["x"]}'}, encode_arrays({"out": out}))
    with Scripted([reply]) as fake, ServerClient(fake.url) as client:

        def call(i: int) -> np.ndarray[Any, Any]:
            return client.predict("k", {"raw": np.full(3, i, np.float32)}, {"raw": ["x"]})["out"]

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(call, range(16)))
    for result in results:
        np.testing.assert_array_equal(result, out)
    sent = sorted(float(np.load(io.BytesIO(body))["raw"][0]) for *_, body in fake.seen)
    assert sent == [float(i) for i in range(16)]


def test_a_package_upload_declares_its_length_and_is_streamed(tmp_path: Path) -> None:
    package = tmp_path / "p.zip"
    package.write_bytes(b"x" * 3_000_000)
    with Scripted([_json(201, {"created": True})]) as fake, ServerClient(fake.url) as client:
        client.upload_package(package, "0" * 64)
    method, path, headers, body = fake.seen[0]
    assert (method, path) == ("PUT", "/v1/packages/" + "0" * 64)
    assert headers["Content-Length"] == "3000000" and body == package.read_bytes()


def test_a_threads_connection_is_closed_when_the_thread_ends() -> None:
    import gc

    with Scripted([_json(200, {"status": "ok"})], keep_alive=True) as fake:
        with ServerClient(fake.url) as client:
            client.health()
            used: list[Any] = []

            def work() -> None:
                client.health()
                used.append(client._connections._slot().box[0])

            worker = threading.Thread(target=work)
            worker.start()
            worker.join()
            gc.collect()
            assert used[0] is not None and used[0].sock is None  # closed with its thread
            kept = client._connections._slot().box[0]
            assert kept is not None and kept.sock is not None  # this thread's stays open
            client.health()
            assert client._connections._slot().box[0] is kept  # and is used again
        assert kept.sock is None  # closed with the client
