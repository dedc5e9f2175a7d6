"""Helpers for the tensorflow plugin tests: descriptions, zips and adapter requests."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from bioimageio_core import plugin_testing as pt
from bioimageio_core.adapters import AdapterRequest
from bioimageio_core.settings import Settings

FORMAT = "tensorflow_saved_model_bundle"


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
    return pt.describe_arrays(
        root,
        inputs,
        outputs,
        {FORMAT: pt.weights_entry(root, source, tensorflow_version="2.16")},
        name="tiny tensorflow test model",
        letters="byxc",
        description="a tiny model built by the tensorflow plugin tests",
    )


def make_request(
    root: Path, raw: dict[str, Any], *, devices: tuple[str, ...] | None = ("cpu",)
) -> AdapterRequest:
    model = pt.build_model(raw, root)
    return pt.make_request(model, FORMAT, devices, settings=Settings(cache_path=root / "cache"))


def max_pool_numpy(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    n, h, w, c = x.shape
    return x[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
