"""Seed descriptions for the fuzz suite: small valid models (format 0.5 and 0.4) that the
``numpy_conv`` test weight format runs, written with their files into a folder."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from descriptions import described, described_v0_4

from bioimageio_core.plugin.testing import axes

KERNEL = np.array([[0.0, 0.125, 0.0], [0.125, 0.5, 0.125], [0.0, 0.125, 0.0]], dtype=np.float32)
INPUT_SHAPE = (1, 1, 24, 24)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_files(folder: Path) -> dict[str, str]:
    """The files the seeds reference; returns their sha256 by name."""
    folder.mkdir(parents=True, exist_ok=True)
    x = np.random.default_rng(0).uniform(0, 1, size=INPUT_SHAPE).astype(np.float32)
    np.save(folder / "test_input.npy", x)
    np.save(folder / "test_output.npy", x)  # never compared: the fuzz suite does not test models
    np.savez(folder / "weights.npz", kernel_0=KERNEL)
    (folder / "README.md").write_text("# fuzz model\n")
    return {p.name: _sha256(p) for p in folder.iterdir() if p.is_file()}


def seed_v0_5(sha: dict[str, str]) -> dict[str, Any]:
    """A 0.5 model with parameterized sizes, a size reference with halo and processing steps."""

    def space(axis: str) -> dict[str, Any]:
        return {"type": "space", "id": axis, "size": {"min": 16, "step": 8}}

    def out_space(axis: str) -> dict[str, Any]:
        return {
            "type": "space",
            "id": axis,
            "size": {"tensor_id": "raw", "axis_id": axis},
            "halo": 1,
        }

    return {
        **described(
            "0.5.4",
            "fuzz model",
            description="a 3x3 convolution",
            documentation="README.md",
        ),
        "tags": ["fuzz"],
        "inputs": [
            {
                "id": "raw",
                "axes": [*axes("bc", [None, 1]), space("y"), space("x")],
                "data": {"type": "float32"},
                "test_tensor": {"source": "test_input.npy", "sha256": sha["test_input.npy"]},
                "preprocessing": [
                    {
                        "id": "scale_range",
                        "kwargs": {"axes": ["y", "x"], "min_percentile": 1, "max_percentile": 99},
                    },
                    {"id": "clip", "kwargs": {"min": 0.0, "max": 1.0}},
                ],
            }
        ],
        "outputs": [
            {
                "id": "out",
                "axes": [*axes("bc", [None, 1]), out_space("y"), out_space("x")],
                "data": {"type": "float32"},
                "test_tensor": {"source": "test_output.npy", "sha256": sha["test_output.npy"]},
                "postprocessing": [
                    {"id": "scale_linear", "kwargs": {"gain": 2.0, "offset": -1.0}},
                    {"id": "sigmoid"},
                ],
            }
        ],
        "weights": {"numpy_conv": {"source": "weights.npz", "sha256": sha["weights.npz"]}},
        "config": {
            "bioimageio": {
                "reproducibility_tolerance": [
                    {"relative_tolerance": 1e-4, "absolute_tolerance": 1e-4}
                ]
            }
        },
    }


def seed_v0_4(sha: dict[str, str]) -> dict[str, Any]:
    """The same model in format 0.4 (converted to 0.5 when loaded)."""
    return {
        **described_v0_4("fuzz model 04", description="a 3x3 convolution"),
        "test_inputs": ["test_input.npy"],
        "test_outputs": ["test_output.npy"],
        "inputs": [
            {
                "name": "raw",
                "axes": "bcyx",
                "data_type": "float32",
                "data_range": [0.0, 1.0],
                "shape": {"min": [1, 1, 16, 16], "step": [0, 0, 8, 8]},
                "preprocessing": [
                    {
                        "name": "zero_mean_unit_variance",
                        "kwargs": {"mode": "per_sample", "axes": "yx"},
                    }
                ],
            }
        ],
        "outputs": [
            {
                "name": "out",
                "axes": "bcyx",
                "data_type": "float32",
                "shape": {
                    "reference_tensor": "raw",
                    "scale": [1, 1, 1, 1],
                    "offset": [0, 0, 0, 0],
                },
                "halo": [0, 0, 1, 1],
                "postprocessing": [{"name": "binarize", "kwargs": {"threshold": 0.5}}],
            }
        ],
        "weights": {"numpy_conv": {"source": "weights.npz", "sha256": sha["weights.npz"]}},
    }
