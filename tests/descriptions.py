"""Raw model descriptions for tests about something other than the descriptive fields.

Import as ``from descriptions import …`` (``tests/`` is on ``sys.path`` through ``tests/conftest.py``).
"""

from __future__ import annotations

from typing import Any


def described(format_version: str, name: str, **fields: Any) -> dict[str, Any]:
    """The fields every model description needs next to its tensors and weights (type, name,
    description, authors, citation, license), followed by ``fields`` (which may replace them)."""
    return {
        "format_version": format_version,
        "type": "model",
        "name": name,
        "description": "a model for tests",
        "authors": [{"name": "Test Author"}],
        "cite": [{"text": "test", "doi": "10.1234/test"}],
        "license": "MIT",
        **fields,
    }


def described_v0_4(name: str, **fields: Any) -> dict[str, Any]:
    """:func:`described` in format 0.4.10, which also asks for documentation and a timestamp."""
    return described(
        "0.4.10",
        name,
        documentation="README.md",
        timestamp="2024-01-01T00:00:00",
        **fields,
    )


def tiny_model_v0_4(**fields: Any) -> dict[str, Any]:
    """A valid format 0.4 model with one 1D input ``raw`` and one output ``out`` (its files are
    not written: for building and validating without io checks)."""
    return {
        **described_v0_4("old model"),
        "inputs": [{"name": "raw", "axes": "bcx", "data_type": "float32", "shape": [1, 1, 8]}],
        "outputs": [{"name": "out", "axes": "bcx", "data_type": "float32", "shape": [1, 1, 8]}],
        "test_inputs": ["a.npy"],
        "test_outputs": ["b.npy"],
        "weights": {"onnx": {"source": "w.onnx", "opset_version": 17}},
        **fields,
    }


def conv_v0_4(
    name: str, *, test: tuple[str, str], min_size: int, step: int, halo: int, **fields: Any
) -> dict[str, Any]:
    """A format 0.4 model of the ``numpy_conv`` test weights (``weights.npz``): input ``raw``
    (``bcyx``, one channel, y and x ``min_size`` + n * ``step``), output ``out`` of raw's size
    with ``halo``; ``test`` names the test input and output files. ``fields`` go to
    :func:`described` (format 0.4.10)."""
    return {
        **described("0.4.10", name, **fields),
        "test_inputs": [test[0]],
        "test_outputs": [test[1]],
        "inputs": [
            {
                "name": "raw",
                "axes": "bcyx",
                "data_type": "float32",
                "shape": {"min": [1, 1, min_size, min_size], "step": [0, 0, step, step]},
            }
        ],
        "outputs": [
            {
                "name": "out",
                "axes": "bcyx",
                "data_type": "float32",
                "shape": {"reference_tensor": "raw", "scale": [1, 1, 1, 1], "offset": [0, 0, 0, 0]},
                "halo": [0, 0, halo, halo],
            }
        ],
        "weights": {"numpy_conv": {"source": "weights.npz"}},
    }
