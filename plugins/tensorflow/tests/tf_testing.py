"""Helpers for the tensorflow plugin tests: descriptions, zips and adapter requests."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from bioimageio_core.adapters import AdapterRequest
from bioimageio_core.settings import Settings
from bioimageio_core.spec import ModelDescr, build_description

FORMAT = "tensorflow_saved_model_bundle"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def local_opener(root: Path) -> Any:
    def open_file(reference: str, sha256: str | None) -> Path:
        path = root.joinpath(*PurePosixPath(reference).parts)
        if sha256 is not None and sha256_of(path) != sha256:
            raise ValueError(f"sha256 mismatch for {reference}")
        return path

    return open_file


def zip_folder(folder: Path, archive: Path, *, prefix: str = "") -> Path:
    """Zip ``folder``'s content (under ``prefix`` inside the zip)."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, prefix + path.relative_to(folder).as_posix())
    return archive


def describe(
    root: Path,
    inputs: dict[str, np.ndarray[Any, Any]],
    outputs: dict[str, np.ndarray[Any, Any]],
    source: str,
) -> dict[str, Any]:
    """A raw 0.5 description (axes batch, y, x, channel) with test tensors written to ``root``."""

    def tensor(tid: str, array: np.ndarray[Any, Any], prefix: str) -> dict[str, Any]:
        name = f"{prefix}_{tid}.npy"
        np.save(root / name, array)
        _, h, w, c = array.shape
        return {
            "id": tid,
            "axes": [
                {"type": "batch"},
                {"type": "space", "id": "y", "size": h},
                {"type": "space", "id": "x", "size": w},
                {"type": "channel", "channel_names": [f"c{i}" for i in range(c)]},
            ],
            "data": {"type": str(array.dtype)},
            "test_tensor": {"source": name, "sha256": sha256_of(root / name)},
        }

    return {
        "format_version": "0.5.4",
        "type": "model",
        "name": "tiny tensorflow test model",
        "description": "a tiny model built by the tensorflow plugin tests",
        "authors": [{"name": "test"}],
        "cite": [{"text": "test", "doi": "10.1000/test"}],
        "license": "MIT",
        "inputs": [tensor(k, v, "in") for k, v in inputs.items()],
        "outputs": [tensor(k, v, "out") for k, v in outputs.items()],
        "weights": {
            FORMAT: {
                "source": source,
                "sha256": sha256_of(root / source),
                "tensorflow_version": "2.16",
            }
        },
    }


def build_model(raw: dict[str, Any]) -> ModelDescr:
    """The ``ModelDescr`` for ``raw`` (fails the test with the issues when it is invalid)."""
    result = build_description(raw)
    if not isinstance(result.descr, ModelDescr):
        raise AssertionError(f"invalid test description: {[str(i) for i in result.issues]}")
    return result.descr


def make_request(
    root: Path, raw: dict[str, Any], *, devices: tuple[str, ...] | None = ("cpu",)
) -> AdapterRequest:
    model = build_model(raw)
    return AdapterRequest(
        model=model,
        weights_format=FORMAT,
        weights=model.weights[FORMAT],
        devices=devices,
        open_file=local_opener(root),
        settings=Settings(cache_path=root / "cache"),
    )


def max_pool_numpy(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    n, h, w, c = x.shape
    return x[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
