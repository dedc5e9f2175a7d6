"""The published unet2d_nuclei_broad model: torchscript weights reproduce its test output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from bioimageio_run_torch.plugin import create_torchscript_adapter

from bioimageio_core.plugin import Settings
from bioimageio_core.plugin.testing import build_model, make_request


def _zero_mean_unit_variance(x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Per sample and channel over y, x; population std; as the model's preprocessing says."""
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=(2, 3), keepdims=True)
    std = np.sqrt(((x64 - mean) ** 2).mean(axis=(2, 3), keepdims=True))
    normalized: np.ndarray = ((x64 - mean) / (std + eps)).astype(np.float32)
    return normalized


def test_description_declares_what_the_test_assumes(unet2d_nuclei_broad: Path) -> None:
    rdf = yaml.safe_load((unet2d_nuclei_broad / "bioimageio.yaml").read_text())
    (raw,) = rdf["inputs"]
    steps = [step["id"] for step in raw["preprocessing"]]
    assert steps == ["ensure_dtype", "zero_mean_unit_variance", "ensure_dtype"]
    assert raw["preprocessing"][1]["kwargs"] == {"axes": ["x", "y"]}
    (probability,) = rdf["outputs"]
    assert [step["id"] for step in probability["postprocessing"]] == ["sigmoid", "ensure_dtype"]


def test_torchscript_reproduces_test_output(unet2d_nuclei_broad: Path) -> None:
    rdf = yaml.safe_load((unet2d_nuclei_broad / "bioimageio.yaml").read_text())
    model = build_model(rdf, unet2d_nuclei_broad, allow_warnings=True)
    request = make_request(model, "torchscript", ("cpu",), settings=Settings())
    test_input = np.load(unet2d_nuclei_broad / "test_input.npy")
    expected = np.load(unet2d_nuclei_broad / "test_output.npy")
    with create_torchscript_adapter(request) as adapter:
        outputs = adapter.forward({"raw": _zero_mean_unit_variance(test_input)})
    assert list(outputs) == ["probability"]
    logits = outputs["probability"]
    probability = (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)
    assert probability.shape == expected.shape == (1, 1, 512, 512)
    np.testing.assert_allclose(probability, expected, rtol=1e-4, atol=1e-4)
    # the raw logits are far from the stored probabilities: the sigmoid matters
    assert np.abs(logits - expected).max() > 1.0
