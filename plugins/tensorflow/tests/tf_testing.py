"""Helpers for the tensorflow plugin tests: descriptions, zips and adapter requests."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from bioimageio_core.plugin import AdapterRequest, Settings, TensorflowSavedModelBundleWeightsDescr
from bioimageio_core.plugin.testing import ModelDef, WeightsDef, build_model, model_description
from bioimageio_core.plugin.testing import make_request as core_make_request

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
    weights = WeightsDef(FORMAT, source, {"tensorflow_version": "2.16"})
    model = ModelDef.from_arrays(
        "tiny tensorflow test model", inputs, outputs, [weights], letters="byxc"
    )
    return model_description(root, model)


def make_request(
    root: Path, raw: dict[str, Any], *, devices: tuple[str, ...] | None = ("cpu",)
) -> AdapterRequest[TensorflowSavedModelBundleWeightsDescr]:
    model = build_model(raw, root)
    return core_make_request(
        model, FORMAT, devices, settings=Settings(cache_path=root / "cache")
    )


def max_pool_numpy(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    n, h, w, c = x.shape
    return x[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
