"""End to end: real `bioimageio-run serve` processes on 127.0.0.1, real HTTP, the onnx backend.

Remote prediction equals local prediction bit for bit (whole and tiled); wrong token,
unreachable server and a server without the backend each give one clear message and write
nothing; bad requests get 4xx answers and the server keeps serving; 8 clients at once; an
evicted model is loaded again; SIGTERM lets the request in flight finish and unloads models.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import yaml
from click.testing import CliRunner
from concurrently import run_concurrently

from bioimageio_core import create_prediction_pipeline
from bioimageio_core.cli import main
from bioimageio_core.errors import InputError, ServerError
from bioimageio_core.remote import ServerClient
from bioimageio_core.remote.protocol import AXES_HEADER, encode_arrays, encode_axes

AXES = ["batch", "channel", "y", "x"]


def _input(seed: int, y: int = 384, x: int = 320) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).normal(5, 2, size=(1, 1, y, x)).astype(np.float32)


@pytest.fixture(scope="module")
def local(example: Path) -> Iterator[Any]:
    with create_prediction_pipeline(example, weights_format="onnx", devices=["cpu"]) as pipeline:
        yield pipeline


@pytest.fixture
def with_token(monkeypatch: pytest.MonkeyPatch, token: str) -> str:
    monkeypatch.setenv("BIOIMAGEIO_SERVER_TOKEN", token)
    return token


def _info(server: Any, token: str) -> dict[str, Any]:
    response = requests.get(f"{server.url}/v1/info", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def _output(sample: Any) -> np.ndarray[Any, Any]:
    return np.asarray(sample.members["probability"].data)


def test_remote_equals_local_whole_and_tiled(
    served: Any, example: Path, local: Any, with_token: str
) -> None:
    x = _input(0)
    with create_prediction_pipeline(example, weights_format="onnx", server=served.url) as remote:
        assert remote.weights_format == "onnx"
        np.testing.assert_array_equal(
            _output(remote.predict_sample_without_blocking(remote.digest(x, axes="bcyx"))),
            _output(local.predict_sample_without_blocking(local.digest(x, axes="bcyx"))),
        )
        before = {m["model"]: m for m in _info(served, with_token)["models"]}
        progress: list[tuple[int, int]] = []
        tiled = remote.predict_sample_with_blocking(
            remote.digest(x, axes="bcyx"), 2, 3, on_progress=lambda d, t: progress.append((d, t))
        )
        expected = local.predict_sample_with_blocking(local.digest(x, axes="bcyx"), 2, 3)
        np.testing.assert_array_equal(_output(tiled), _output(expected))
        # blocks go to the server batched: one forward call per batch of 3 blocks, and
        # several such calls per request
        n_blocks = progress[-1][1]
        assert n_blocks > 3 and len(progress) == -(-n_blocks // 3)
        key = remote.adapter.remote.key  # type: ignore[union-attr]
        after = {m["model"]: m for m in _info(served, with_token)["models"]}[key]
        assert after["calls"] - before[key]["calls"] == len(progress)
        assert 1 <= after["requests"] - before[key]["requests"] < len(progress)


def test_request_bytes_setting_reaches_the_remote_adapter(
    served: Any, example: Path, local: Any, with_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIOIMAGEIO_REMOTE_REQUEST_BYTES", "1")  # one call per request
    x = _input(2)
    with create_prediction_pipeline(example, weights_format="onnx", server=served.url) as remote:
        assert remote.adapter.request_bytes == 1
        key = remote.adapter.remote.key  # type: ignore[union-attr]
        before = {m["model"]: m for m in _info(served, with_token)["models"]}[key]
        tiled = remote.predict_sample_with_blocking(remote.digest(x, axes="bcyx"), 2, 1)
        after = {m["model"]: m for m in _info(served, with_token)["models"]}[key]
    expected = local.predict_sample_with_blocking(local.digest(x, axes="bcyx"), 2, 1)
    np.testing.assert_array_equal(_output(tiled), _output(expected))
    calls = after["calls"] - before["calls"]
    assert calls > 3 and after["requests"] - before["requests"] == calls


def test_cli_predict_on_a_server_writes_what_local_prediction_writes(
    served: Any, example: Path, tmp_path: Path, token: str
) -> None:
    runner = CliRunner()
    image = tmp_path / "image.npy"
    np.save(image, _input(1)[0, 0])
    common = [str(example), "-i", str(image), "--weights-format", "onnx", "--blocksize", "1"]
    env = {"BIOIMAGEIO_SERVER_TOKEN": token}
    for run in ("first", "second"):  # the package is uploaded once
        result = runner.invoke(
            main, ["predict", *common, "-o", str(tmp_path / run / "{sample_id}.npy"),
                   "--server", served.url, "--batch-size", "2"], env=env,
        )
        assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["predict", *common, "-o", str(tmp_path / "local" / "{sample_id}.npy")])
    assert result.exit_code == 0, result.output
    expected = np.load(tmp_path / "local" / "image.npy")
    for run in ("first", "second"):
        np.testing.assert_array_equal(np.load(tmp_path / run / "image.npy"), expected)
    stored = re.findall(r"stored package ([0-9a-f]{64})", served.log)
    assert len(stored) == len(set(stored)) >= 1


def test_kept_alive_connections_answer_without_delay(served: Any) -> None:
    """No ~40 ms stall per answer on a kept-alive connection (Nagle + delayed ACK)."""
    with requests.Session() as session:
        session.get(f"{served.url}/v1/health", timeout=30)
        times = []
        for _ in range(15):
            started = time.perf_counter()
            session.get(f"{served.url}/v1/health", timeout=30)
            times.append(time.perf_counter() - started)
    assert sorted(times)[len(times) // 2] < 0.03, times


def test_cli_test_on_a_server(served: Any, example: Path, token: str) -> None:
    result = CliRunner().invoke(
        main,
        ["test", str(example), "--server", served.url, "--weights-format", "onnx"],
        env={"BIOIMAGEIO_SERVER_TOKEN": token},
    )
    assert result.exit_code == 0, result.output
    assert "[passed] reproduce test output 'probability' with onnx weights" in result.output


def test_a_url_is_fetched_by_the_server_itself(
    served: Any, example: Path, local: Any, http_server: Any, with_token: str
) -> None:
    for f in example.parent.iterdir():
        shutil.copy(f, http_server.root / f.name)
    x = _input(2)
    url = http_server.url("rdf.yaml")
    with create_prediction_pipeline(url, weights_format="onnx", server=served.url) as remote:
        out = _output(remote.predict_sample_without_blocking(remote.digest(x, axes="bcyx")))
    np.testing.assert_array_equal(out, _output(local.predict_sample_without_blocking(local.digest(x, axes="bcyx"))))
    assert http_server.count("weights.onnx") == 1  # the server's fetch; the client needs none
    assert url in served.log  # loaded by URL, not uploaded


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _cli_predict(example: Path, tmp_path: Path, server: str, env: dict[str, str]) -> Any:
    image = tmp_path / "image.npy"
    np.save(image, _input(3)[0, 0])
    return CliRunner().invoke(
        main,
        ["predict", str(example), "-i", str(image), "-o", str(tmp_path / "out" / "{sample_id}.npy"),
         "--server", server],
        env=env,
    )


def _one_error(result: Any, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def test_wrong_or_missing_token_one_message_nothing_written(
    served: Any, example: Path, tmp_path: Path
) -> None:
    result = _cli_predict(example, tmp_path, served.url, {"BIOIMAGEIO_SERVER_TOKEN": "w" * 24})
    _one_error(result, f"the server at {served.url} refused the token", "BIOIMAGEIO_SERVER_TOKEN")
    assert not (tmp_path / "out").exists()
    result = _cli_predict(example, tmp_path, served.url, {"BIOIMAGEIO_SERVER_TOKEN": ""})
    _one_error(result, "needs a token")
    assert not (tmp_path / "out").exists()


def test_unreachable_server_one_message_nothing_written(
    example: Path, tmp_path: Path, closed_port: int
) -> None:
    result = _cli_predict(example, tmp_path, f"http://127.0.0.1:{closed_port}", {})
    _one_error(result, "cannot reach the server at", "connection refused")
    assert not (tmp_path / "out").exists()


def test_server_without_the_backend_one_message_nothing_written(
    example: Path, tmp_path: Path, server_env: Any
) -> None:
    from bioimageio_core.server.testing import ServerProcess

    env = server_env(BIOIMAGEIO_LOAD_PLUGINS="no-such-plugin")
    with ServerProcess(store=tmp_path / "store", env=env) as bare:
        result = _cli_predict(example, tmp_path, bare.url, {})
    _one_error(result, "cannot run 'Tiny nuclei U-Net'", "pip install bioimageio-run-onnx")
    assert not (tmp_path / "out").exists()
    assert "stored package" not in bare.log  # refused before uploading anything


def _load(server: Any, token: str, example: Path) -> str:
    with ServerClient(server.url, token=token) as client:
        from bioimageio_core import load_description
        from bioimageio_core.remote import ModelRef
        from bioimageio_core.remote.package import upload_package

        with upload_package(load_description(example, perform_io_checks=False)) as path:
            sha = client.ensure_package(path)
        return client.load_model(ModelRef(package=sha), weights_format="onnx").key


def _post(server: Any, token: str, key: str, body: bytes, axes: str | None, **headers: str) -> Any:
    sent = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-npz", **headers}
    if axes is not None:
        sent[AXES_HEADER] = axes
    return requests.post(f"{server.url}/v1/models/{key}/predict", data=body, headers=sent, timeout=60)


def test_bad_requests_are_4xx_json_and_the_server_keeps_serving(
    served: Any, example: Path, token: str
) -> None:
    key = _load(served, token, example)
    good = encode_arrays({"raw": _input(4, 96, 96)})
    axes = encode_axes({"raw": AXES})
    bad = [
        (_post(served, token, key, b"\x00garbage" * 100, axes), 400, "PayloadError"),
        (_post(served, token, key, encode_arrays({"raw": _input(4, 100, 96)}), axes), 422, "InputError"),
        (_post(served, token, key, encode_arrays({"raw": _input(4)[0]}), axes), 422, "InputError"),
        (_post(served, token, key, good, encode_axes({"raw": ["batch", "channel", "x", "y"]})), 422, "InputError"),
        (_post(served, token, key, good, None), 400, "PayloadError"),
        (_post(served, token, "f" * 32, good, axes), 404, "UnknownModel"),
        (requests.post(f"{served.url}/v1/models", data=b"{", headers={"Authorization": f"Bearer {token}"}, timeout=30), 400, "BadRequest"),
    ]
    for response, status, type_ in bad:
        assert response.status_code == status, response.text
        if type_ is not None:
            assert response.json()["error"]["type"] == type_
        ok = _post(served, token, key, good, axes)
        assert ok.status_code == 200, ok.text
    assert "Traceback" not in served.log and "Exception in ASGI" not in served.log


def test_a_client_that_goes_away_mid_upload_leaves_nothing(served: Any, token: str) -> None:
    from urllib.parse import urlsplit

    address = urlsplit(served.url)
    head = (
        f"PUT /v1/packages/{'5' * 64} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Length: 1000000\r\n\r\n"
    )
    with socket.create_connection((address.hostname, address.port), timeout=30) as conn:
        conn.sendall(head.encode() + b"\0" * 1000)
    served.wait_for_log("the client disconnected")
    assert list(served.store.glob(".upload-*")) == []
    assert not (served.store / f"{'5' * 64}.zip").exists()
    assert "internal error" not in served.log and "Traceback" not in served.log
    assert requests.get(f"{served.url}/v1/health", timeout=30).status_code == 200


def test_eight_clients_at_once(served: Any, example: Path, local: Any, with_token: str) -> None:
    inputs = [_input(10 + i, 128 + 16 * (i % 3), 96 + 16 * (i // 3)) for i in range(8)]
    expected = [_output(local.predict_sample_without_blocking(local.digest(x, axes="bcyx"))) for x in inputs]
    loads_before = _info(served, with_token)["loads"]
    results: list[Any] = [None] * 8
    barrier = threading.Barrier(8)

    def client(i: int) -> None:
        try:
            with create_prediction_pipeline(example, weights_format="onnx", server=served.url) as remote:
                barrier.wait(timeout=60)
                for _ in range(3):
                    results[i] = _output(remote.predict_sample_without_blocking(remote.digest(inputs[i], axes="bcyx")))
        except BaseException as e:  # reported below
            results[i] = e

    run_concurrently(client, [(i,) for i in range(8)], timeout=300)
    for result, want in zip(results, expected, strict=True):
        assert isinstance(result, np.ndarray), result
        np.testing.assert_array_equal(result, want)
    assert _info(served, with_token)["loads"] - loads_before <= 1  # one shared model


def _renamed_copy(example: Path, folder: Path) -> Path:
    shutil.copytree(example.parent, folder)
    rdf = yaml.safe_load((folder / "rdf.yaml").read_text())
    rdf["name"] = "Tiny nuclei U-Net (a copy)"
    (folder / "rdf.yaml").write_text(yaml.safe_dump(rdf, sort_keys=False))
    return folder / "rdf.yaml"


def test_evicted_model_is_unloaded_and_loaded_again(
    example: Path, tmp_path: Path, server_env: Any, token: str, local: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bioimageio_core.server.testing import ServerProcess

    monkeypatch.setenv("BIOIMAGEIO_SERVER_TOKEN", token)
    other = _renamed_copy(example, tmp_path / "copy")
    x = _input(5)
    want = _output(local.predict_sample_without_blocking(local.digest(x, axes="bcyx")))
    args = ["--max-models", "1", "--max-request-mb", "1"]
    with ServerProcess(store=tmp_path / "store", token=token, args=args, env=server_env()) as small:
        first = create_prediction_pipeline(example, weights_format="onnx", server=small.url)
        key = first.adapter.remote.key  # type: ignore[union-attr]
        np.testing.assert_array_equal(_output(first.predict_sample_without_blocking(first.digest(x, axes="bcyx"))), want)
        with create_prediction_pipeline(other, weights_format="onnx", server=small.url) as second:
            second.predict_sample_without_blocking(second.digest(x, axes="bcyx"))
        small.wait_for_log(f"unloaded model {key}")
        info = _info(small, token)
        assert info["evictions"] == 1 and [m["name"] for m in info["models"]] == ["Tiny nuclei U-Net (a copy)"]
        # the evicted model is loaded again for the next call of the first client
        np.testing.assert_array_equal(_output(first.predict_sample_without_blocking(first.digest(x, axes="bcyx"))), want)
        info = _info(small, token)
        assert info["loads"] == 3 and [m["model"] for m in info["models"]] == [key]
        # --max-request-mb 1: a 4 MB forward call is refused by the client before sending …
        big = _input(6, 1024, 1024)
        with pytest.raises(InputError, match="accepts at most 1.0 MB"):
            first.predict_sample_without_blocking(first.digest(big, axes="bcyx"))
        # … and by the server when sent anyway
        response = _post(small, token, key, encode_arrays({"raw": big}), encode_axes({"raw": AXES}))
        assert response.status_code == 413 and response.json()["error"]["type"] == "TooLarge"
        np.testing.assert_array_equal(_output(first.predict_sample_without_blocking(first.digest(x, axes="bcyx"))), want)
        first.unload()


def test_sigterm_lets_the_request_in_flight_finish_and_unloads(
    example: Path, tmp_path: Path, server_env: Any, token: str, local: Any
) -> None:
    from bioimageio_core.server.testing import ServerProcess

    big = np.concatenate([_input(7, 1024, 1024), _input(8, 1024, 1024)])  # about 2 s of work
    want = local.adapter.forward({"raw": big})["probability"]
    server = ServerProcess(store=tmp_path / "store", token=token, env=server_env())
    with server:
        key = _load(server, token, example)
        _info(server, token)  # the first info asks the backends for their devices: not timed
        answers: list[Any] = []

        def call() -> None:
            answers.append(_post(server, token, key, encode_arrays({"raw": big}), encode_axes({"raw": AXES})))

        thread = threading.Thread(target=call)
        thread.start()
        deadline = time.monotonic() + 30
        while _info(server, token)["in_flight"] < 2:  # this info request and the predict
            assert time.monotonic() < deadline, server.log
            time.sleep(0.005)
        server.terminate()
        thread.join(timeout=60)
        # uvicorn ends by re-raising the signal once shut down: "terminated by SIGTERM"
        assert server.wait(60) in (0, -signal.SIGTERM), server.log
    (response,) = answers
    assert response.status_code == 200, response.text
    from bioimageio_core.remote.protocol import decode_arrays

    np.testing.assert_array_equal(decode_arrays(response.content)["probability"], want)
    log = server.log
    assert log.index("Shutting down") < log.index(f"unloaded model {key}")
    assert "Application shutdown complete" in log
    with ServerClient(server.url, token=token, retries=0) as client, pytest.raises(ServerError, match="cannot reach"):
        client.health()
