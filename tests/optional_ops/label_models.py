"""Identity ``numpy_conv`` models whose postprocessing turns raw maps into instance labels.

The model passes its input through (a 1x1 kernel of 1), optionally average-pooled by ``grid``
over y and x, so a test decides exactly what the op receives: maps computed from ground-truth
labels with the optional package's own functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from descriptions import described

Array = np.ndarray[Any, Any]


def label_model(
    folder: Path,
    *,
    channels: int,
    postprocessing: Sequence[Mapping[str, Any]],
    spatial: Sequence[str] = ("y", "x"),
    downscale: int = 1,
    dtype: str = "int32",
    test_tensors: tuple[Array, Array] | None = None,
) -> Path:
    """Write ``rdf.yaml`` + ``weights.npz`` into ``folder``; returns the description's path."""
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(
        folder / "weights.npz",
        kernel_0=np.ones((1, 1), dtype=np.float32),
        downscale_0=np.int64(downscale),
    )

    def space(axis: str, size: Any) -> dict[str, Any]:
        return {"type": "space", "id": axis, "size": size}

    sizes = {"z": {"min": 8, "step": 8}}
    inputs: dict[str, Any] = {
        "id": "raw",
        "axes": [
            {"type": "batch"},
            {"type": "channel", "channel_names": [f"map{c}" for c in range(channels)]},
            *(space(a, sizes.get(a, {"min": 16, "step": 16})) for a in spatial),
        ],
    }
    outputs: dict[str, Any] = {
        "id": "labels",
        "axes": [
            {"type": "batch"},
            {"type": "channel", "channel_names": ["instances"]},
            *(space(a, {"tensor_id": "raw", "axis_id": a}) for a in spatial),
        ],
        "data": {"type": dtype},
        "postprocessing": [dict(p) for p in postprocessing],
    }
    if test_tensors is not None:
        np.save(folder / "test_input.npy", test_tensors[0])
        np.save(folder / "test_output.npy", test_tensors[1])
        inputs["test_tensor"] = {"source": "test_input.npy"}
        outputs["test_tensor"] = {"source": "test_output.npy"}
    raw = {
        **described(
            "0.5.14",
            "identity label model",
            description="passes raw maps through to an instance segmentation op",
        ),
        "inputs": [inputs],
        "outputs": [outputs],
        "weights": {"numpy_conv": {"source": "weights.npz"}},
    }
    path = folder / "rdf.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def discs(shape: tuple[int, ...], centres: Sequence[tuple[int, ...]], radii: Sequence[float]) -> Array:
    """Instance labels 1..n of balls (discs in 2D) at ``centres``; later ones win overlaps."""
    grid = np.indices(shape)
    labels = np.zeros(shape, dtype=np.int32)
    for i, (centre, radius) in enumerate(zip(centres, radii, strict=True), start=1):
        d2 = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True))
        labels[d2 <= radius**2] = i
    return labels


def best_iou(truth: Array, found: Array) -> list[float]:
    """For each object of ``truth``, the best IoU with an object of ``found``."""
    out = []
    for t in range(1, int(truth.max()) + 1):
        mask = truth == t
        ids = [i for i in np.unique(found[mask]) if i != 0]
        best = 0.0
        for i in ids:
            other = found == i
            best = max(best, float((mask & other).sum() / (mask | other).sum()))
        out.append(best)
    return out
