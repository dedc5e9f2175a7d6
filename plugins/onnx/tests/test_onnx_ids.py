"""The bundled example model by bioimage.io id: ``test`` and ``predict`` with its ONNX weights
from a local collection, then again with ``--offline`` after the collection went away."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from bioimageio_core.plugin.testing import (
    LocalServer,
    MiniCollection,
    assert_passed,
    run_cli,
    run_test,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "tiny-nuclei-unet"
MODEL_ID = "tiny-nuclei-unet"


@pytest.fixture
def collection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalServer]:
    """The example published as ``tiny-nuclei-unet`` (latest) and ``tiny-nuclei-unet/0.1.0``."""
    monkeypatch.setenv("BIOIMAGEIO_CACHE_PATH", str(tmp_path / "cache"))
    monkeypatch.setenv("BIOIMAGEIO_OFFLINE", "0")  # `--offline` sets it; restored after the test
    mini = MiniCollection(tmp_path / "served")
    shutil.copytree(EXAMPLE, mini.root / "artifacts" / MODEL_ID / "files")
    with LocalServer(mini.root) as server:
        path = mini.publish_files(f"{MODEL_ID}/0.1.0", EXAMPLE)
        mini.add_entry(f"{MODEL_ID}/0.1.0", server, path)
        mini.write_maps()
        for variable, value in mini.env(server).items():
            monkeypatch.setenv(variable, value)
        yield server


def _refuse_connections(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    attempts: list[object] = []

    def refuse(sock: socket.socket, address: object) -> None:
        attempts.append(address)
        raise AssertionError(f"network used offline: connect to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


@pytest.mark.parametrize("source", [MODEL_ID, f"{MODEL_ID}/0.1.0"])
def test_example_by_id_online_then_offline(
    collection: LocalServer, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    exit_code, summary = run_test(source, "--weights-format", "onnx")
    assert_passed(exit_code, summary, ["onnx"], 1)
    assert summary["details"][0]["name"].startswith(f"resolve '{source}' (bioimage.io)")
    collection.stop()
    attempts = _refuse_connections(monkeypatch)
    exit_code, summary = run_test(source, "--weights-format", "onnx", "--offline")
    assert_passed(exit_code, summary, ["onnx"], 1)
    assert attempts == []


def test_predict_example_by_id_offline_matches_onnxruntime(
    collection: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    x = np.load(EXAMPLE / "test_input.npy")
    np.save(tmp_path / "cells.npy", x)
    online = run_cli("predict", MODEL_ID, "-i", "cells.npy", "-o", "online/{sample_id}.npy",
                     "--weights-format", "onnx")
    assert online.exit_code == 0, online.output
    collection.stop()
    attempts = _refuse_connections(monkeypatch)
    offline = run_cli("predict", "--offline", MODEL_ID, "-i", "cells.npy", "-o",
                      "offline/{sample_id}.npy", "--weights-format", "onnx")
    assert offline.exit_code == 0, offline.output
    assert attempts == []
    # the model's own numbers: zero-mean unit-variance over y, x; onnxruntime; sigmoid
    normalized = (x - x.mean(axis=(2, 3), keepdims=True)) / (
        x.std(axis=(2, 3), keepdims=True) + 1e-6
    )
    session = ort.InferenceSession(str(EXAMPLE / "weights.onnx"))
    (logits,) = session.run(None, {session.get_inputs()[0].name: normalized.astype(np.float32)})
    expected = 1 / (1 + np.exp(-logits))
    for folder in ("online", "offline"):
        np.testing.assert_allclose(np.load(tmp_path / folder / "cells.npy"), expected, atol=1e-4)

