"""The ASGI app in process (Starlette's test client): auth, limits, bad requests, the document.

Every user error is a 4xx answer with a JSON body, and the app keeps answering afterwards.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bioimageio_core import load_description
from bioimageio_core.errors import SettingsError
from bioimageio_core.remote.package import write_upload_package
from bioimageio_core.remote.protocol import (
    AXES_HEADER,
    CALLS_HEADER,
    decode_arrays,
    decode_calls,
    encode_arrays,
    encode_axes,
    encode_calls,
)
from bioimageio_core.server.config import MB, ServerConfig, is_loopback
from bioimageio_core.sources import ZipRoot, sha256_of_file

# starlette's test client announces a move from httpx to httpx2; both work with it
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx`")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny-nuclei-unet" / "rdf.yaml"
TOKEN = "s3cret-token-for-tests-0123456789"
AXES = ["batch", "channel", "y", "x"]


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = write_upload_package(
        load_description(EXAMPLE, perform_io_checks=False),
        tmp_path_factory.mktemp("pkg") / "example.zip",
    )
    return path, sha256_of_file(path)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from starlette.testclient import TestClient

    from bioimageio_core.server import create_app

    config = ServerConfig(
        token=TOKEN,
        store=tmp_path_factory.mktemp("store"),
        max_models=1,
        max_request_bytes=2 * MB,
        max_upload_bytes=4 * MB,
    )
    with TestClient(create_app(config), headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


@pytest.fixture(scope="module")
def loaded(client: Any, package: tuple[Path, str]) -> str:
    path, sha = package
    assert client.put(f"/v1/packages/{sha}", content=path.read_bytes()).status_code in (200, 201)
    answer = client.post("/v1/models", json={"package": sha, "weights_format": "onnx"})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["model"])


def _error(response: Any, status: int, type_: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert error["message"]
    if type_ is not None:
        assert error["type"] == type_, error
    return error


def _predict(client: Any, key: str, arrays: dict[str, Any], axes: Any = None, **kw: Any) -> Any:
    headers = {"Content-Type": "application/x-npz"}
    if axes is not False:
        headers[AXES_HEADER] = encode_axes(axes or {k: AXES for k in arrays})
    headers.update(kw.pop("headers", {}))
    return client.post(f"/v1/models/{key}/predict", content=encode_arrays(arrays), headers=headers, **kw)


def _still_serving(client: Any, key: str) -> None:
    x = np.zeros((1, 1, 96, 96), np.float32)
    response = _predict(client, key, {"raw": x})
    assert response.status_code == 200, response.text


# --- configuration ------------------------------------------------------------------------------


def test_loopback_hosts() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.4", "gpu-box"))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "gpu-box.example.org"])
def test_other_hosts_are_refused_without_a_token(host: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=f"refusing to listen on {host} without a token"):
        ServerConfig(host=host, store=tmp_path).check()
    ServerConfig(host=host, token=TOKEN, store=tmp_path).check()


def test_short_tokens_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="at least 16"):
        ServerConfig(token="secret", store=tmp_path).check()


def test_listening_socket_is_tcp_so_answers_are_not_delayed() -> None:
    """asyncio sets TCP_NODELAY only on sockets whose protocol is IPPROTO_TCP; a socket made
    without it left Nagle's algorithm on, and every answer on a kept-alive connection waited
    about 40 ms for the client's delayed ACK."""
    import asyncio
    import socket

    from bioimageio_core.server.run import bind

    sock = bind("127.0.0.1", 0)

    async def nodelay_of_accepted() -> int:
        loop = asyncio.get_running_loop()
        accepted: asyncio.Future[int] = loop.create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                conn = transport.get_extra_info("socket")
                accepted.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await loop.create_server(Probe, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        try:
            return await asyncio.wait_for(accepted, 10)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(nodelay_of_accepted()) != 0


def test_token_never_shown(tmp_path: Path) -> None:
    assert TOKEN not in repr(ServerConfig(token=TOKEN, store=tmp_path))


# --- authentication -----------------------------------------------------------------------------


def test_health_needs_no_token(client: Any) -> None:
    response = client.get("/v1/health", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize(
    "auth",
    ["", "Bearer wrong-token-0123456789", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x", "Bearer"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/info"), ("GET", "/v1/models"), ("POST", "/v1/models"),
     ("HEAD", "/v1/packages/" + "0" * 64), ("GET", "/v1/openapi.json"), ("GET", "/v1/nothing")],
)
def test_everything_but_health_needs_the_token(client: Any, auth: str, method: str, path: str) -> None:
    response = client.request(method, path, headers={"Authorization": auth})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    if method != "HEAD":
        _error(response, 401, "Unauthorized")


def test_bearer_scheme_is_case_insensitive(client: Any) -> None:
    assert client.get("/v1/info", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200


# --- info and the OpenAPI document ----------------------------------------------------------------


def test_info(client: Any) -> None:
    info = client.get("/v1/info").json()
    assert info["api_version"] == "v1"
    assert info["weight_formats"]["onnx"]["unavailable"] is None
    assert info["weight_formats"]["onnx"]["distribution"] == "bioimageio-run-onnx"
    assert "cpu" in info["devices"]["available"]["onnx"]
    assert info["devices"]["configured"] is None
    assert info["limits"] == {
        "max_models": 1, "max_request_bytes": 2 * MB, "max_upload_bytes": 4 * MB
    }
    assert info["allow_remote_code"] is False
    assert any(p["distribution"] == "bioimageio-run-onnx" for p in info["plugins"])


def test_openapi_describes_exactly_the_routes(client: Any) -> None:
    from bioimageio_core.server.app import ROUTES

    doc = client.get("/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert doc["servers"] == [{"url": "http://testserver"}]
    served = {(f"/v1{path}", m.lower()) for path, _, methods in ROUTES for m in methods}
    described = {
        (path, method)
        for path, item in doc["paths"].items()
        for method in item
        if method in {"get", "put", "post", "head", "delete", "patch"}
    }
    assert described == served
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert operation["summary"], (path, method)
            assert "200" in operation["responses"], (path, method)
            refs = [r for r in _refs(operation)]
            assert all(r.split("/")[-1] in doc["components"]["schemas"] for r in refs)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def test_unknown_path_and_wrong_method_are_json(client: Any) -> None:
    _error(client.get("/v1/nothing"), 404, "NotFound")
    _error(client.get("/v2/info"), 404, "NotFound")
    _error(client.delete("/v1/info"), 405, "MethodNotAllowed")
    _error(client.get("/v1/packages/" + "0" * 64), 405, "MethodNotAllowed")


# --- packages -----------------------------------------------------------------------------------


def test_upload_is_content_addressed(client: Any, package: tuple[Path, str]) -> None:
    path, sha = package
    data = path.read_bytes()
    client.put(f"/v1/packages/{sha}", content=data)
    assert client.head(f"/v1/packages/{sha}").status_code == 200
    again = client.put(f"/v1/packages/{sha}", content=data)
    assert again.status_code == 200 and again.json() == {"package": sha, "created": False}
    assert client.head("/v1/packages/" + "1" * 64).status_code == 404


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buffer.getvalue()


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("body", "status", "type_", "message"),
    [
        (b"not a zip", 422, "InvalidPackage", "zip"),
        (_zip({"README.md": b"hi"}), 422, "InvalidPackage", "no description"),
        (_zip({"rdf.yaml": b"x: 1", "../evil.py": b"import os"}), 422, "InvalidPackage", ".."),
        (_zip({"rdf.yaml": b"x: 1", "/abs.py": b""}), 422, "InvalidPackage", "absolute"),
    ],
    ids=["garbage", "no-description", "dotdot", "absolute"],
)
def test_bad_packages_are_refused_and_not_stored(
    client: Any, body: bytes, status: int, type_: str, message: str
) -> None:
    sha = _sha(body)
    error = _error(client.put(f"/v1/packages/{sha}", content=body), status, type_)
    assert message in error["message"]
    assert client.head(f"/v1/packages/{sha}").status_code == 404


def test_upload_checks_the_digest(client: Any, package: tuple[Path, str]) -> None:
    path, _ = package
    error = _error(client.put("/v1/packages/" + "2" * 64, content=path.read_bytes()), 400)
    assert "not " + "2" * 64 in error["message"]
    _error(client.put("/v1/packages/NOT-A-SHA", content=b"x"), 400, "BadRequest")


def test_upload_size_limit(client: Any) -> None:
    body = b"\0" * (4 * MB + 1)
    _error(client.put(f"/v1/packages/{_sha(body)}", content=body), 413, "TooLarge")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it arrives
        for _ in range(5):
            yield b"\0" * MB

    _error(client.put("/v1/packages/" + "3" * 64, content=chunks()), 413, "TooLarge")


# --- loading models -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"package": "0" * 64, "allow_remote_code": True},
        {"source": "https://x.org/rdf.yaml", "package": "0" * 64},
        {},
        {"source": 3},
        {"source": "https://x.org/rdf.yaml", "devices": "cuda"},
        {"source": "https://x.org/rdf.yaml", "weights_format": ["onnx"]},
        ["https://x.org/rdf.yaml"],
    ],
    ids=["client-asks-for-code", "both", "neither", "number", "devices-str", "format-list", "list"],
)
def test_malformed_model_requests(client: Any, body: Any) -> None:
    _error(client.post("/v1/models", json=body), 400, "BadRequest")


def test_garbage_json(client: Any) -> None:
    _error(client.post("/v1/models", content=b"{not json"), 400, "BadRequest")
    _error(client.post("/v1/models", content=b"\xff" * 10), 400, "BadRequest")


@pytest.mark.parametrize(
    "source",
    ["/etc/passwd", "../rdf.yaml", "examples/tiny-nuclei-unet/rdf.yaml", "file:///etc/passwd",
     "C:\\models\\rdf.yaml", "~/rdf.yaml", "examples", "ftp://x.org/rdf.yaml"],
)
def test_no_path_on_the_server_is_opened_for_a_client(client: Any, source: str) -> None:
    error = _error(client.post("/v1/models", json={"source": source}), 422, "UnsupportedSource")
    assert "neither an http(s) URL nor an id" in error["message"]


def test_unknown_package(client: Any) -> None:
    error = _error(client.post("/v1/models", json={"package": "4" * 64}), 404, "UnknownPackage")
    assert "PUT /v1/packages/" in error["hint"]


def test_unknown_weight_format(client: Any, package: tuple[Path, str], loaded: str) -> None:
    _, sha = package
    body = {"package": sha, "weights_format": "keras_hdf5"}
    error = _error(client.post("/v1/models", json=body), 422)
    assert "keras_hdf5" in error["message"]


def test_uploaded_models_count_as_fetched(client: Any, package: tuple[Path, str], loaded: str) -> None:
    """Code an uploaded model brings runs only with the server's consent (its root is remote)."""
    from bioimageio_core.consent import code_origin, description_code_origin
    from bioimageio_core.server.models import LoadSpec
    from bioimageio_core.sources import is_http_url

    state = client.app.state.server
    _, sha = package
    descr = state.loader.description(LoadSpec(package=sha, source=None, weights_format=None, devices=None))
    assert isinstance(descr.root, ZipRoot)
    assert descr.root.path == state.store.path(sha)
    assert descr.root.origin is not None and is_http_url(descr.root.origin)
    origin = description_code_origin(descr)
    assert not origin.trusted and descr.root.origin in origin.where
    assert not code_origin(descr.root, "unet.py").trusted


# --- predict ------------------------------------------------------------------------------------


def test_predict_equals_the_local_backend_bit_for_bit(client: Any, loaded: str) -> None:
    from bioimageio_core import create_model_adapter

    descr = load_description(EXAMPLE, perform_io_checks=False)
    x = np.random.default_rng(3).normal(size=(2, 1, 112, 96)).astype(np.float32)
    response = _predict(client, loaded, {"raw": x})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-npz"
    assert response.headers[AXES_HEADER] == encode_axes({"probability": AXES})
    assert re.fullmatch(r"forward;dur=[0-9.]+, server;dur=[0-9.]+", response.headers["server-timing"])
    remote = decode_arrays(response.content)["probability"]
    with create_model_adapter(descr, weights_format="onnx", devices=["cpu"]) as adapter:
        local = adapter.forward({"raw": x})["probability"]
    assert remote.dtype == local.dtype and remote.shape == local.shape == (2, 1, 112, 96)
    np.testing.assert_array_equal(remote, local)


def test_bad_predict_requests_are_4xx_and_the_server_keeps_serving(client: Any, loaded: str) -> None:
    x = np.zeros((1, 1, 96, 96), np.float32)
    cases: list[tuple[Any, int, str, str]] = [
        (client.post(f"/v1/models/{loaded}/predict", content=b"garbage",
                     headers={"Content-Type": "application/x-npz", AXES_HEADER: encode_axes({"raw": AXES})}),
         400, "PayloadError", "not an .npz"),
        (_predict(client, loaded, {"raw": x}, axes=False), 400, "PayloadError", "missing"),
        (_predict(client, loaded, {"raw": x}, headers={AXES_HEADER: "bcyx"}), 400, "PayloadError", "not JSON"),
        (_predict(client, loaded, {"raw": x}, axes={"raw": ["batch", "channel", "x", "y"]}),
         422, "InputError", "in this order"),
        (_predict(client, loaded, {"raw": x[0]}, axes={"raw": AXES}), 422, "InputError", "3 dimensions"),
        (_predict(client, loaded, {"raw": np.zeros((1, 1, 97, 96), np.float32)}),
         422, "InputError", "97"),
        (_predict(client, loaded, {"raw": np.zeros((1, 2, 96, 96), np.float32)}),
         422, "InputError", "channel"),
        (_predict(client, loaded, {"raw": x, "mask": x}), 422, "InputError", "no input(s) ['mask']"),
        (_predict(client, loaded, {"mask": x}), 422, "InputError", "no input(s) ['mask']"),
        (_predict(client, loaded, {"raw": x}, axes={"raw": AXES, "other": AXES}),
         400, "PayloadError", "header names"),
        (_predict(client, "0" * 32, {"raw": x}), 404, "UnknownModel", "no model"),
        (_predict(client, loaded, {"raw": x}, headers={"Content-Type": "application/json"}),
         415, "UnsupportedMediaType", "application/json"),
        (_predict(client, loaded, {"raw": np.zeros((8, 1, 256, 256), np.float32)}),
         413, "TooLarge", "2 MB"),
    ]
    for response, status, type_, message in cases:
        error = _error(response, status, type_)
        assert message in error["message"], error
        _still_serving(client, loaded)
    assert client.get("/v1/health").status_code == 200


def _predict_calls(client: Any, key: str, calls: list[dict[str, Any]], header: str) -> Any:
    headers = {
        "Content-Type": "application/x-npz",
        AXES_HEADER: encode_axes({k: AXES for k in calls[0]}),
        CALLS_HEADER: header,
    }
    return client.post(f"/v1/models/{key}/predict", content=encode_calls(calls), headers=headers)


def test_several_calls_in_one_request_equal_one_request_each(client: Any, loaded: str) -> None:
    rng = np.random.default_rng(5)
    calls = [
        {"raw": rng.normal(size=shape).astype(np.float32)}
        for shape in [(1, 1, 96, 96), (2, 1, 112, 96), (1, 1, 96, 128)]  # sizes may differ
    ]
    response = _predict_calls(client, loaded, calls, "3")
    assert response.status_code == 200, response.text
    assert response.headers[AXES_HEADER] == encode_axes({"probability": AXES})
    together = decode_calls(response.content, 3)
    for call, outputs in zip(calls, together, strict=True):
        alone = _predict(client, loaded, call)
        assert alone.status_code == 200, alone.text
        np.testing.assert_array_equal(outputs["probability"], decode_arrays(alone.content)["probability"])


def test_bad_requests_of_several_calls_run_nothing_and_the_server_keeps_serving(
    client: Any, loaded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bioimageio_core.server.models import ModelEntry

    forward_calls: list[int] = []
    forward = ModelEntry.forward

    def counting(self: ModelEntry, arrays: Any) -> Any:
        forward_calls.append(1)
        return forward(self, arrays)

    monkeypatch.setattr(ModelEntry, "forward", counting)
    good = {"raw": np.zeros((1, 1, 96, 96), np.float32)}
    bad = {"raw": np.zeros((1, 1, 97, 96), np.float32)}
    cases: list[tuple[Any, int, str, str]] = [
        (_predict_calls(client, loaded, [good, bad], "2"), 422, "InputError", "97"),
        (_predict_calls(client, loaded, [good, good], "3"), 400, "PayloadError", "no member of call(s) [2]"),
        (_predict_calls(client, loaded, [good, good], "1"), 400, "PayloadError", "expected only"),
        (_predict_calls(client, loaded, [good, good], "0"), 400, "PayloadError", "whole number"),
        (_predict_calls(client, loaded, [good, good], "2000"), 400, "PayloadError", "whole number"),
    ]
    for response, status, type_, message in cases:
        error = _error(response, status, type_)
        assert message in error["message"], error
    assert forward_calls == []  # every call of a request is checked before the first runs
    _still_serving(client, loaded)


def test_evicted_model_is_loaded_again(
    client: Any, loaded: str, tmp_path: Path
) -> None:
    import attrs

    descr = load_description(EXAMPLE, perform_io_checks=False)
    other = write_upload_package(attrs.evolve(descr, name="another model"), tmp_path / "o.zip")
    sha = sha256_of_file(other)
    assert client.put(f"/v1/packages/{sha}", content=other.read_bytes()).status_code == 201
    second = client.post("/v1/models", json={"package": sha, "weights_format": "onnx"})
    assert second.status_code == 200, second.text
    info = client.get("/v1/info").json()
    assert [m["model"] for m in info["models"]] == [second.json()["model"]]  # max_models=1
    _still_serving(client, loaded)
    assert [m["model"] for m in client.get("/v1/info").json()["models"]] == [loaded]


def test_validate_and_test_on_the_server(client: Any, package: tuple[Path, str]) -> None:
    _, sha = package
    summary = client.post("/v1/validate", json={"package": sha}).json()
    assert summary["status"] == "valid-format" and summary["source_name"] == f"package {sha}"
    summary = client.post(
        "/v1/test", json={"package": sha, "weights_format": "onnx", "stop_early": True}
    ).json()
    assert summary["status"] == "passed", summary
    assert any("reproduce test output 'probability' with onnx" in d["name"] for d in summary["details"])
    broken = _zip({"rdf.yaml": b"type: model\nformat_version: 0.5.4\nname: x\n"})
    client.put(f"/v1/packages/{_sha(broken)}", content=broken)
    summary = client.post("/v1/test", json={"package": _sha(broken)}).json()
    assert summary["status"] == "failed"


@pytest.mark.parametrize(("given", "expected"), [(None, "0"), ("1", "1")])
def test_serve_turns_onnx_spinning_off_unless_set(
    given: str | None, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spinning onnxruntime threads would hold the cores between calls, away from the event
    loop, the request threads and the clients on the same machine."""
    import uvicorn

    from bioimageio_core.server.run import serve

    if given is None:
        monkeypatch.delenv("BIOIMAGEIO_ONNX_ALLOW_SPINNING", raising=False)
    else:
        monkeypatch.setenv("BIOIMAGEIO_ONNX_ALLOW_SPINNING", given)
    seen: list[str | None] = []

    def run(self: Any, sockets: Any = None) -> None:  # the models load after this point
        seen.append(os.environ.get("BIOIMAGEIO_ONNX_ALLOW_SPINNING"))

    monkeypatch.setattr(uvicorn.Server, "run", run)
    serve(ServerConfig(port=0, store=tmp_path))
    assert seen == [expected]
