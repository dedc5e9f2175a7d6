"""The bundled example model from the command line, without a deep-learning framework.

The backend plugins' end-to-end tests run it with each of its weight formats; here: it is a
valid description whose test tensors fit its declared sizes, and ``bioimageio-run test``
without a backend plugin fails with the distributions to install.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from bioimageio_core.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tiny-nuclei-unet" / "rdf.yaml"
BACKENDS = {
    "torchscript": "bioimageio-run-torch",
    "pytorch_state_dict": "bioimageio-run-torch",
    "onnx": "bioimageio-run-onnx",
}


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_example_validates() -> None:
    result = CliRunner().invoke(main, ["validate", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "[failed]" not in result.output


def test_example_test_tensors_fit_the_declared_sizes() -> None:
    rdf = yaml.safe_load(EXAMPLE.read_text())
    (raw,), (probability,) = rdf["inputs"], rdf["outputs"]
    test_input = np.load(EXAMPLE.parent / raw["test_tensor"]["source"])
    test_output = np.load(EXAMPLE.parent / probability["test_tensor"]["source"])
    space_in = {a["id"]: a for a in raw["axes"] if a["type"] == "space"}
    space_out = {a["id"]: a for a in probability["axes"] if a["type"] == "space"}
    for j, axis_id in enumerate(("y", "x"), start=2):
        size = space_in[axis_id]["size"]
        n, rest = divmod(test_input.shape[j] - size["min"], size["step"])
        assert n >= 0 and rest == 0, (axis_id, test_input.shape, size)
        # the output is as large as the input; its halo fits into the smallest input
        assert space_out[axis_id]["size"] == {"tensor_id": raw["id"], "axis_id": axis_id}
        assert 2 * space_out[axis_id]["halo"] < size["min"]
    assert test_output.shape == test_input.shape
    assert test_output.dtype == np.float32
    assert 0 <= test_output.min() <= test_output.max() <= 1  # after the sigmoid


def test_example_test_without_backend_plugins_says_what_to_install() -> None:
    installed = sorted({d for d in BACKENDS.values() if _installed(d)})
    if installed:
        pytest.skip(f"backend plugins are installed here ({', '.join(installed)})")
    result = CliRunner().invoke(main, ["test", str(EXAMPLE)])
    assert result.exit_code == 1, result.output
    for weights_format, distribution in BACKENDS.items():
        assert f"runs {weights_format} weights; to test them: pip install {distribution}" in (
            result.output
        ), result.output
