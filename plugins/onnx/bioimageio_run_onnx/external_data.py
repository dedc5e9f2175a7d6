"""Put an ONNX model file and its external data file side by side.

onnxruntime looks for external data relative to the model file's folder, under the name the model
stores (for bioimage.io models: the file name of ``external_data.source``). When the two files
already sit together under those names they are used as they are; otherwise both are linked (or,
across file systems, copied) into a folder of the cache keyed by their sha256.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bioimageio_core.plugin import link_or_copy, sha256_of_file


def colocate(
    model: Path,
    data: Path,
    *,
    model_name: str,
    data_name: str,
    cache: Path,
    model_sha256: str | None = None,
    data_sha256: str | None = None,
) -> Path:
    """A path of the model file with its external data next to it under ``data_name``."""
    if data.parent.resolve() == model.parent.resolve() and data.name == data_name:
        return model
    key = (
        (model_sha256 or sha256_of_file(model))[:16]
        + "-"
        + (data_sha256 or sha256_of_file(data))[:16]
    )
    folder = cache / "onnx-external-data" / key
    target = folder / model_name
    if target.exists() and (folder / data_name).exists():
        return target
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=folder.parent))
    try:
        link_or_copy(model, staging / model_name)
        link_or_copy(data, staging / data_name)
        try:
            staging.rename(folder)
        except OSError:  # another process placed it first
            if not (target.exists() and (folder / data_name).exists()):
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
