"""Shared test data for the legacy tests: a small valid 0.4 model and the corpus location."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from descriptions import described

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "conformance" / "rdfs"

MODEL_V0_4: dict[str, Any] = {
    **described(
        "0.4.10",
        "Small test model",
        description="a model for conversion tests",
        documentation="README.md",
    ),
    "timestamp": "2020-01-01T00:00:00",
    "inputs": [
        {
            "name": "raw",
            "axes": "bcyx",
            "data_type": "float32",
            "data_range": [float("-inf"), float("inf")],
            "shape": {"min": [1, 1, 64, 64], "step": [0, 0, 16, 16]},
            "preprocessing": [
                {"name": "zero_mean_unit_variance", "kwargs": {"mode": "per_sample", "axes": "yx"}}
            ],
        }
    ],
    "outputs": [
        {
            "name": "prob",
            "axes": "bcyx",
            "data_type": "float32",
            "data_range": [0.0, 1.0],
            "halo": [0, 0, 8, 8],
            "shape": {
                "reference_tensor": "raw",
                "scale": [1.0, 0.0, 1.0, 1.0],
                "offset": [0.0, 1.0, 0.0, 0.0],
            },
            "postprocessing": [{"name": "sigmoid"}],
        }
    ],
    "test_inputs": ["test_input.npy"],
    "test_outputs": ["test_output.npy"],
    "sample_inputs": ["sample_input.tif"],
    "sample_outputs": ["sample_output.tif"],
    "weights": {
        "pytorch_state_dict": {
            "source": "weights.pt",
            "sha256": "a" * 64,
            "architecture": "unet.py:UNet2d",
            "architecture_sha256": "b" * 64,
            "kwargs": {"depth": 3},
            "pytorch_version": "1.10",
            "dependencies": "conda:environment.yaml",
        },
        "torchscript": {
            "source": "weights_ts.pt",
            "sha256": "c" * 64,
            "parent": "pytorch_state_dict",
            "pytorch_version": "1.13",
        },
    },
}
