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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from http_servers import QuietHandler, ThreadedServer

from bioimageio_core import create_prediction_pipeline, load_description, predict
from bioimageio_core.adapters import AdapterRequest, ModelAdapter
from bioimageio_core.errors import PluginError
from bioimageio_core.remote import ModelRef, RemoteModel, RemoteModelAdapter, ServerClient
from bioimageio_core.remote.protocol import AXES_HEADER, decode_arrays, encode_arrays
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
    """A local adapter computing :func:`model_function` after a random delay."""

    def __init__(self, request: AdapterRequest[Any], in_flight: int, fail_at: int = 0) -> None:
        super().__init__(request)
        self.calls_in_flight = in_flight
        self.running = Concurrency()
        self.fail_at = fail_at

    def forward(self, inputs: Mapping[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
        with self.running:
            number = self.running.calls
            raw = inputs["raw"]
            jitter(float(raw.sum()))
            if number == self.fail_at:
                raise PluginError(f"call {number} failed")
            return {"probability": model_function(raw)}

    def unload(self) -> None:
        pass


def request_for(descr: ModelDescr) -> AdapterRequest[Any]:
    return AdapterRequest(descr, "onnx", descr.weights.onnx, None, lambda r, s: Path(r), None)  # type: ignore[arg-type]


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
    call number ``unavailable_at`` is answered 503 (as a server that is starting) once."""

    def __init__(self, unavailable_at: int) -> None:
        self.running = Concurrency()
        self.answered_503 = 0
        state = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: one connection per client thread

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with state.running:
                    number = state.running.calls
                    raw = decode_arrays(body)["raw"]
                    jitter(float(raw.sum()))
                    if number == unavailable_at:
                        state.answered_503 += 1
                        self.reply(503, b"{}", {"Content-Type": "application/json"})
                        return
                    content = encode_arrays({"probability": model_function(raw)})
                    self.reply(200, content, {AXES_HEADER: json.dumps({"probability": AXES})})

        super().__init__(Handler)


def test_remote_calls_in_flight_keep_block_order_and_survive_a_retried_request(
    descr: ModelDescr, image: np.ndarray[Any, Any]
) -> None:
    expected = predict_blockwise(StandIn(request_for(descr), in_flight=1), image, 1)
    remote = RemoteModel(
        key="k", weights_format="onnx", name=descr.name,
        inputs={"raw": AXES}, outputs={"probability": AXES},
    )  # fmt: skip
    with StandInServer(unavailable_at=4) as server:
        client = ServerClient(server.origin, backoff_s=0.01)
        adapter = RemoteModelAdapter(request_for(descr), client, ModelRef(source="x"), remote)
        assert adapter.calls_in_flight == 2
        with adapter:
            got = predict_blockwise(adapter, image, 1)
    np.testing.assert_array_equal(got, expected)
    assert server.answered_503 == 1
    assert server.running.most == 2  # two calls were on the server at once



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
    expected = predict_out_of_core(serial)
    np.testing.assert_array_equal(predict_out_of_core(pipelined), expected)
    np.testing.assert_array_equal(expected, predict_blockwise(serial, image, 1))
    assert serial.running.most == 1
    assert pipelined.running.most == 2
