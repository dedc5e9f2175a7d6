"""Small ``numpy_conv`` / ``toy_scale`` models on disk for model-testing and CLI tests.

Expected test outputs are computed here with scipy, independently of the plugins.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from descriptions import conv_v0_4, described
from scipy import ndimage

from bioimageio_core.plugin.testing import axes

Array = np.ndarray[Any, Any]
KERNEL = np.array([[0.0, 0.125, 0.0], [0.125, 0.5, 0.125], [0.0, 0.125, 0.0]], dtype=np.float32)


def expected_conv(x: Array, kernel: Array = KERNEL) -> Array:
    """'same' correlation of the last two axes with mirror borders (numpy 'reflect'), via scipy."""
    k = kernel.astype(np.float64).reshape((1,) * (x.ndim - 2) + kernel.shape)
    return ndimage.correlate(x.astype(np.float64), k, mode="mirror").astype(np.float32)


MakeModel = Callable[..., Path]


def write_images(
    folder: Path, names: list[str], size: int = 24, seed: int = 0
) -> dict[str, Array]:
    """Random ``(1, 1, size, size)`` float32 images saved as ``folder/<name>.npy``; by name."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {}
    for name in names:
        arrays[name] = rng.uniform(0, 1, size=(1, 1, size, size)).astype(np.float32)
        np.save(folder / f"{name}.npy", arrays[name])
    return arrays


def write_model(
    folder: Path,
    *,
    size: int = 24,
    y: Any = None,
    weights: Mapping[str, Any] | None = None,
    output: Array | None = None,
    config: Mapping[str, Any] | None = None,
    format_version: str = "0.5.4",
    seed: int = 0,
    out_size: Any = None,
) -> Path:
    """A one-input model ``raw`` -> ``out`` (3x3 convolution, halo 1) with test tensors.

    ``weights`` defaults to the ``numpy_conv`` entry; ``output`` replaces the expected test
    output; ``out_size`` replaces the output's spatial sizes (default: the input's, halo 1).
    Returns the path of ``rdf.yaml``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, size=(1, 1, size, size)).astype(np.float32)
    np.save(folder / "test_input.npy", x)
    np.save(folder / "test_output.npy", expected_conv(x) if output is None else output)
    np.savez(folder / "weights.npz", kernel_0=KERNEL)

    def space() -> Any:
        return dict(y) if isinstance(y, Mapping) else y if y is not None else {"min": 16, "step": 8}

    def out_axis(axis: str) -> dict[str, Any]:
        if out_size is not None:
            return {"type": "space", "id": axis, "size": out_size}
        return {
            "type": "space",
            "id": axis,
            "size": {"tensor_id": "raw", "axis_id": axis},
            "halo": 1,
        }

    raw: dict[str, Any] = {
        **described(
            format_version,
            "conv test model",
            description="a 3x3 convolution for model testing",
        ),
        "inputs": [
            {
                "id": "raw",
                "axes": axes("bcyx", [None, 1, space(), space()]),
                "test_tensor": {"source": "test_input.npy"},
            }
        ],
        "outputs": [
            {
                "id": "out",
                "axes": [*axes("bc", [None, 1]), out_axis("y"), out_axis("x")],
                "test_tensor": {"source": "test_output.npy"},
            }
        ],
        "weights": dict(weights)
        if weights is not None
        else {"numpy_conv": {"source": "weights.npz"}},
    }
    if config is not None:
        raw["config"] = dict(config)
    path = folder / "rdf.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def write_two_input_model(folder: Path) -> Path:
    """Inputs ``a`` and ``b`` (y/x 16 + n*8) -> outputs ``out_a`` (3x3 conv of a), ``out_b`` (2 * b)."""
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(
        folder / "weights.npz",
        kernel_0=KERNEL,
        input_0=np.int64(0),
        kernel_1=np.full((1, 1), 2.0, dtype=np.float32),
        input_1=np.int64(1),
    )

    def tensor_axes(tensor_id: str | None) -> list[dict[str, Any]]:
        def space(axis: str) -> dict[str, Any]:
            if tensor_id is None:
                return {"type": "space", "id": axis, "size": {"min": 16, "step": 8}}
            return {
                "type": "space",
                "id": axis,
                "size": {"tensor_id": tensor_id, "axis_id": axis},
                "halo": 1,
            }

        return [*axes("bc", [None, 1]), space("y"), space("x")]

    raw = {
        **described("0.5.4", "two input model", description="two inputs, two outputs"),
        "inputs": [{"id": tid, "axes": tensor_axes(None)} for tid in ("a", "b")],
        "outputs": [{"id": f"out_{tid}", "axes": tensor_axes(tid)} for tid in ("a", "b")],
        "weights": {"numpy_conv": {"source": "weights.npz"}},
    }
    path = folder / "rdf.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def write_v04_model(
    folder: Path, *, output: Array | None = None, config: Mapping[str, Any] | None = None
) -> Path:
    """The model of :func:`write_model` as a format 0.4 description (24 x 24 test tensors)."""
    folder.mkdir(parents=True, exist_ok=True)
    x = np.random.default_rng(0).uniform(0, 1, size=(1, 1, 24, 24)).astype(np.float32)
    np.save(folder / "test_input.npy", x)
    np.save(folder / "test_output.npy", expected_conv(x) if output is None else output)
    np.savez(folder / "weights.npz", kernel_0=KERNEL)
    (folder / "README.md").write_text("# conv 0.4\n")
    raw = conv_v0_4(
        "conv 04",
        test=("test_input.npy", "test_output.npy"),
        min_size=16,
        step=8,
        halo=1,
        description="a 0.4 model",
        documentation="README.md",
    )
    if config is not None:
        raw["config"] = dict(config)
    path = folder / "rdf.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path
