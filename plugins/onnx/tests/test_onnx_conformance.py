"""The published unet2d_nuclei_broad ONNX weights reproduce the model's test output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml
from bioimageio_run_onnx import create_adapter

from bioimageio_core.plugin import Settings
from bioimageio_core.plugin.testing import build_model, make_request


def _zero_mean_unit_variance(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Per sample and channel over y, x; population std; eps 1e-6 (the reference formula)."""
    mean = x.mean(axis=(-2, -1), keepdims=True, dtype=np.float64)
    std = x.std(axis=(-2, -1), keepdims=True, dtype=np.float64)
    return ((x - mean) / (std + 1e-6)).astype(np.float32)


def test_unet2d_nuclei_broad_onnx_reproduces_test_output(
    unet2d_nuclei_broad: Path, tmp_path: Path
) -> None:
    model = build_model(yaml.safe_load((unet2d_nuclei_broad / "bioimageio.yaml").read_text()), unet2d_nuclei_broad)
    request = make_request(model, "onnx", ("cpu",), settings=Settings(cache_path=tmp_path))
    test_input = np.load(unet2d_nuclei_broad / "test_input.npy")
    expected = np.load(unet2d_nuclei_broad / "test_output.npy")
    assert test_input.shape == (1, 1, 512, 512)

    with create_adapter(request) as adapter:
        out = adapter.forward({"raw": _zero_mean_unit_variance(test_input.astype(np.float32))})
    prediction = out[str(model.outputs[0].id)]
    if any(step.id == "sigmoid" for step in model.outputs[0].postprocessing):
        prediction = 1.0 / (1.0 + np.exp(-prediction.astype(np.float64)))

    assert prediction.shape == expected.shape
    np.testing.assert_allclose(prediction, expected, rtol=1e-4, atol=1e-4)
