"""Blockwise prediction with several forward calls in flight (``ModelAdapter.calls_in_flight``).

Calls finish out of order on purpose (random delays); the stitched output must still equal the
one of calls made one after another, bit for bit, also when the server answers a call with a
503 that the client retries.
"""

from __future__ import annotations

import json
import random
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from http_servers import QuietHandler, ThreadedServer

from bioimageio_core import create_prediction_pipeline, load_description, predict
from bioimageio_core.adapters import AdapterRequest, ModelAdapter
from bioimageio_core.errors import PluginError
from bioimageio_core.remote import ModelRef, RemoteModel, RemoteModelAdapter, ServerClient
from bioimageio_core.remote.protocol import (
    AXES_HEADER,
    CALLS_HEADER,
    MAX_CALLS,
    decode_calls,
    decode_calls_header,
    encode_calls,
)
from bioimageio_core.settings import Settings
from bioimageio_core.spec import ModelDescr

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny-nuclei-unet" / "rdf.yaml"
AXES = ("batch", "channel", "y", "x")


def model_function(raw: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """What the stand-in model computes (exact in float32; output size = input size)."""
    return raw * 2 - 1


class Concurrency:
    """Counts calls running at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.calls = 0

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.calls += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


def jitter(seed: float) -> None:
    """A delay of 0-6 ms that differs between blocks, so that calls overtake each other."""
    time.sleep(random.Random(seed).uniform(0, 0.006))


class StandIn(ModelAdapter):
    """A local adapter computing :func:`model_function` after a random delay; it records the
    input bytes of each call of the groups handed to ``forward_calls``."""

    def __init__(
        self,
        request: AdapterRequest[Any],
        in_flight: int,
        fail_at: int = 0,
        request_bytes: int = 0,
        max_batch: int | None = None,
    ) -> None:
        super().__init__(request)
        self.calls_in_flight = in_flight
        self.request_bytes = request_bytes
        self.running = Concurrency()
        self.fail_at = fail_at
        self.max_batch = max_batch
        self.groups: list[list[int]] = []

    def forward(self, inputs: Mapping[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
        with self.running:
            number = self.running.calls
            raw = inputs["raw"]
            jitter(float(raw.sum()))
            if number == self.fail_at:
                raise PluginError(f"call {number} failed")
            if self.max_batch is not None and raw.shape[0] > self.max_batch:
                raise RuntimeError(f"a batch of {raw.shape[0]}")
            return {"probability": model_function(raw)}

    def forward_calls(
        self, calls: Sequence[Mapping[str, np.ndarray[Any, Any]]]
    ) -> list[dict[str, np.ndarray[Any, Any]]]:
        self.groups.append([inputs["raw"].nbytes for inputs in calls])
        return super().forward_calls(calls)

    def unload(self) -> None:
        pass


def request_for(descr: ModelDescr, settings: Settings | None = None) -> AdapterRequest[Any]:
    return AdapterRequest(
        descr, "onnx", descr.weights.onnx, None, lambda r, s: Path(r), settings or Settings()  # type: ignore[arg-type]
    )


def predict_blockwise(adapter: ModelAdapter, x: np.ndarray[Any, Any], batch: int) -> np.ndarray[Any, Any]:
    pipeline = create_prediction_pipeline(adapter.request.model, model_adapter=adapter)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no batch fallback: every batch is taken as it is
        out = pipeline.predict_sample_with_fixed_blocking(
            pipeline.digest(x, axes="bcyx"), {"raw": {"y": 128, "x": 128}}, batch_size=batch
        )
    return np.asarray(out.members["probability"].data)


@pytest.fixture(scope="module")
def descr() -> ModelDescr:
    loaded = load_description(EXAMPLE, perform_io_checks=False)
    assert isinstance(loaded, ModelDescr)
    return loaded


@pytest.fixture(scope="module")
def image() -> np.ndarray[Any, Any]:
    return np.random.default_rng(3).random((1, 1, 300, 420), dtype=np.float32)


@pytest.mark.parametrize("batch", [1, 3])
def test_calls_in_flight_keep_block_order(
    descr: ModelDescr, image: np.ndarray[Any, Any], batch: int
) -> None:
    serial = StandIn(request_for(descr), in_flight=1)
    pipelined = StandIn(request_for(descr), in_flight=2)
    expected = predict_blockwise(serial, image, batch)
    got = predict_blockwise(pipelined, image, batch)
    np.testing.assert_array_equal(got, expected)
    assert serial.running.most == 1
    assert pipelined.running.most == 2
    assert pipelined.running.calls == serial.running.calls > 4


def test_a_failing_call_stops_the_prediction_and_starts_no_more(
    descr: ModelDescr, image: np.ndarray[Any, Any]
) -> None:
    adapter = StandIn(request_for(descr), in_flight=2, fail_at=3)
    with pytest.raises(PluginError, match="call 3 failed"):
        predict_blockwise(adapter, image, 1)
    assert adapter.running.now == 0  # nothing left running
    assert adapter.running.calls <= 3 + adapter.calls_in_flight


class StandInServer(ThreadedServer):
    """A server that answers predict calls with :func:`model_function` after a random delay;
    request number ``unavailable_at`` is answered 503 (as a server that is starting) once. It
    records how many forward calls each request held."""

    def __init__(self, unavailable_at: int) -> None:
        self.running = Concurrency()
        self.answered_503 = 0
        self.calls_per_request: list[int] = []
        state = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: one connection per client thread

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with state.running:
                    number = state.running.calls
                    calls = decode_calls_header(self.headers.get(CALLS_HEADER))
                    inputs = decode_calls(body, calls)
                    jitter(sum(float(c["raw"].sum()) for c in inputs))
                    if number == unavailable_at:
                        state.answered_503 += 1
                        self.reply(503, b"{}", {"Content-Type": "application/json"})
                        return
                    state.calls_per_request.append(calls)
                    content = encode_calls([{"probability": model_function(c["raw"])} for c in inputs])
                    self.reply(200, content, {AXES_HEADER: json.dumps({"probability": AXES})})

        super().__init__(Handler)


@pytest.mark.parametrize("request_bytes", [1, 200_000])
def test_remote_calls_in_flight_keep_block_order_and_survive_a_retried_request(
    descr: ModelDescr, image: np.ndarray[Any, Any], request_bytes: int
) -> None:
    serial = StandIn(request_for(descr), in_flight=1)
    expected = predict_blockwise(serial, image, 1)
    remote = RemoteModel(
        key="k", weights_format="onnx", name=descr.name,
        inputs={"raw": AXES}, outputs={"probability": AXES},
    )  # fmt: skip
    settings = Settings(remote_request_bytes=request_bytes)
    with StandInServer(unavailable_at=2) as server:
        client = ServerClient(server.origin, backoff_s=0.01)
        adapter = RemoteModelAdapter(request_for(descr, settings), client, ModelRef(source="x"), remote)
        assert adapter.calls_in_flight == 2
        assert adapter.request_bytes == request_bytes
        with adapter:
            got = predict_blockwise(adapter, image, 1)
    np.testing.assert_array_equal(got, expected)
    assert server.answered_503 == 1
    assert server.running.most == 2  # two requests were on the server at once
    assert sum(server.calls_per_request) == serial.running.calls
    block_bytes = 4 * 128 * 128  # the largest block; the others hold fewer bytes
    assert max(server.calls_per_request) == max(1, request_bytes // block_bytes)


@pytest.mark.parametrize("in_flight", [1, 2])
@pytest.mark.parametrize("batch", [1, 3])
def test_consecutive_calls_go_together_up_to_the_adapters_request_bytes(
    descr: ModelDescr, image: np.ndarray[Any, Any], batch: int, in_flight: int
) -> None:
    serial = StandIn(request_for(descr), in_flight=1)
    expected = predict_blockwise(serial, image, batch)
    limit = 3 * batch * 4 * 128 * 128 + 1000  # three batches of the largest blocks, and a bit
    grouping = StandIn(request_for(descr), in_flight=in_flight, request_bytes=limit)
    np.testing.assert_array_equal(predict_blockwise(grouping, image, batch), expected)
    assert serial.groups == []  # request_bytes 0: every call on its own (``forward``)
    assert grouping.running.calls == serial.running.calls
    assert max(len(g) for g in grouping.groups) == 3
    assert all(sum(group) <= limit for group in grouping.groups)  # each request within the limit
    if in_flight == 1:  # groups are made in order: each as full as the next call allows
        for group, after in zip(grouping.groups, grouping.groups[1:], strict=False):
            assert sum(group) + after[0] > limit


def test_a_model_that_rejects_batches_is_called_per_block_in_groups_too(
    descr: ModelDescr, image: np.ndarray[Any, Any]
) -> None:
    expected = predict_blockwise(StandIn(request_for(descr), in_flight=1), image, 1)
    adapter = StandIn(request_for(descr), in_flight=2, request_bytes=10**6, max_batch=1)
    pipeline = create_prediction_pipeline(adapter.request.model, model_adapter=adapter)
    with pytest.warns(UserWarning, match="failed on a batch of 3 blocks"):
        out = pipeline.predict_sample_with_fixed_blocking(
            pipeline.digest(image, axes="bcyx"), {"raw": {"y": 128, "x": 128}}, batch_size=3
        )
    np.testing.assert_array_equal(out.members["probability"].data, expected)
    block = 4 * 128 * 128
    batched = [g for g in adapter.groups if max(g) > block]
    per_block = [g for g in adapter.groups if max(g) <= block]
    assert 1 <= len(batched) <= adapter.calls_in_flight  # the groups already on their way
    assert sum(len(g) for g in per_block) == expected_calls(descr, image)
    assert max(len(g) for g in per_block) > 3  # one call per block, still several per group


def expected_calls(descr: ModelDescr, image: np.ndarray[Any, Any]) -> int:
    serial = StandIn(request_for(descr), in_flight=1)
    predict_blockwise(serial, image, 1)
    return serial.running.calls


def test_calls_beyond_the_servers_limits_go_in_several_requests() -> None:
    rng = np.random.default_rng(0)
    calls = [{"raw": rng.random((1, 1, 128, 128), dtype=np.float32)} for _ in range(5)]
    many = [{"raw": np.full((1, 1, 1, 1), i, np.float32)} for i in range(MAX_CALLS + 6)]
    with StandInServer(unavailable_at=0) as server:
        client = ServerClient(server.origin)
        client.max_request_bytes = 150_000  # two 64 KiB calls per request
        got = client.predict_calls("k", calls, {"raw": AXES})
        assert server.calls_per_request == [2, 1, 2]  # halves, and halves of halves
        for sent, answer in zip(calls, got, strict=True):
            np.testing.assert_array_equal(answer["probability"], model_function(sent["raw"]))
        server.calls_per_request.clear()
        client.max_request_bytes = None
        got = client.predict_calls("k", many, {"raw": AXES})
        assert server.calls_per_request == [MAX_CALLS, 6]
        assert [float(a["probability"][0, 0, 0, 0]) for a in got] == [2 * i - 1 for i in range(len(many))]
        client.close()


def test_out_of_core_prediction_keeps_calls_in_flight_too(
    descr: ModelDescr, image: np.ndarray[Any, Any], tmp_path: Path
) -> None:
    source = tmp_path / "raw.npy"
    np.save(source, image)

    def predict_out_of_core(adapter: StandIn) -> np.ndarray[Any, Any]:
        target = tmp_path / f"out-{adapter.calls_in_flight}.npy"
        pipeline = create_prediction_pipeline(adapter.request.model, model_adapter=adapter)
        predict(
            model=pipeline, inputs=str(source), axes="bcyx", save_output_path=target,
            input_block_shape={"raw": {"y": 128, "x": 128}}, out_of_core=True,
        )  # fmt: skip
        return np.load(target)

    serial = StandIn(request_for(descr), in_flight=1)
    pipelined = StandIn(request_for(descr), in_flight=2)
    grouping = StandIn(request_for(descr), in_flight=3, request_bytes=200_000)
    expected = predict_out_of_core(serial)
    np.testing.assert_array_equal(predict_out_of_core(pipelined), expected)
    np.testing.assert_array_equal(predict_out_of_core(grouping), expected)
    np.testing.assert_array_equal(expected, predict_blockwise(serial, image, 1))
    assert serial.running.most == 1
    assert pipelined.running.most == 2
    assert max(len(g) for g in grouping.groups) == 3  # several calls per request there too
