"""Small models the benchmarks build on the fly (torch → ONNX + torchscript, 0.5 descriptions).

* ``conv3d``: three 3x3x3 convolutions (1 → 8 → 8 → 1 channels), parameterized z/y/x sizes,
  halo 8: a stand-in for 3D models.
* ``light3d``: two 3x3x3 convolutions (1 → 4 → 1), halo 4: out-of-core volumes of several GB.
* ``small_conv2d``: two 3x3 convolutions (1 → 4 → 1), small parameterized blocks (16 + n*8),
  halo 4: per-block cost is tiny, so the pipeline's own per-block time dominates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

SEED = 0


def _write_model(
    folder: Path,
    name: str,
    module: Any,
    spatial: tuple[str, ...],
    size_min: int,
    size_step: int,
    halo: int,
    test_shape: tuple[int, ...],
) -> Path:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    module.eval()
    test_input = np.random.default_rng(SEED).normal(size=test_shape).astype("float32")
    with torch.no_grad():
        test_output = module(torch.from_numpy(test_input)).numpy()
    np.save(folder / "test_input.npy", test_input)
    np.save(folder / "test_output.npy", test_output)
    dims = {0: "batch", **{i + 2: a for i, a in enumerate(spatial)}}
    torch.onnx.export(
        module,
        (torch.from_numpy(test_input),),
        str(folder / "weights.onnx"),
        input_names=["raw"],
        output_names=["out"],
        dynamic_axes={"raw": dims, "out": dims},
        opset_version=17,
        dynamo=False,
    )
    torch.jit.trace(module, torch.from_numpy(test_input)).save(  # type: ignore[no-untyped-call]
        str(folder / "weights_torchscript.pt")
    )
    (folder / "README.md").write_text(f"# {name}\n\nA benchmark model (random weights).\n")

    def axes(halo_: int | None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [
            {"type": "batch"},
            {"type": "channel", "channel_names": ["c0"]},
        ]
        for a in spatial:
            if halo_ is None:
                out.append({"type": "space", "id": a, "size": {"min": size_min, "step": size_step}})
            else:
                out.append(
                    {
                        "type": "space",
                        "id": a,
                        "size": {"tensor_id": "raw", "axis_id": a},
                        "halo": halo_,
                    }
                )
        return out

    rdf = {
        "format_version": "0.5.4",
        "type": "model",
        "name": name,
        "description": "benchmark model with random weights",
        "authors": [{"name": "bioimageio-run developers"}],
        "cite": [{"text": "bioimageio-run benchmarks", "url": "https://bioimage.io"}],
        "license": "MIT",
        "documentation": "README.md",
        "inputs": [
            {
                "id": "raw",
                "axes": axes(None),
                "test_tensor": {"source": "test_input.npy"},
                "data": {"type": "float32"},
                "preprocessing": [
                    {
                        "id": "zero_mean_unit_variance",
                        "kwargs": {"axes": list(spatial), "eps": 1e-6},
                    }
                ],
            }
        ],
        "outputs": [
            {
                "id": "out",
                "axes": axes(halo),
                "test_tensor": {"source": "test_output.npy"},
                "data": {"type": "float32"},
                "postprocessing": [{"id": "sigmoid"}],
            }
        ],
        "weights": {
            "onnx": {"source": "weights.onnx", "opset_version": 17},
            "torchscript": {
                "source": "weights_torchscript.pt",
                "pytorch_version": torch.__version__.split("+")[0],
            },
        },
    }
    path = folder / "rdf.yaml"
    path.write_text(yaml.safe_dump(rdf, sort_keys=False))
    return path


def build_conv3d(folder: Path) -> Path:
    """Write the ``conv3d`` model into ``folder``; returns its ``rdf.yaml``."""
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    module = nn.Sequential(
        nn.Conv3d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv3d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv3d(8, 1, 3, padding=1),
    )
    return _write_model(
        folder, "conv3d benchmark", module, ("z", "y", "x"), 32, 8, 8, (1, 1, 32, 32, 32)
    )


def build_small_conv2d(folder: Path) -> Path:
    """Write the ``small_conv2d`` model into ``folder``; returns its ``rdf.yaml``."""
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    module = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 3, padding=1))
    return _write_model(
        folder, "small conv2d benchmark", module, ("y", "x"), 16, 8, 4, (1, 1, 32, 32)
    )


def build_light3d(folder: Path) -> Path:
    """Write the ``light3d`` model into ``folder`` (two 3x3x3 convolutions, 1 → 4 → 1
    channels, halo 4): a 3D model cheap enough for volumes of several GB on a laptop CPU."""
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    module = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, 1, 3, padding=1))
    return _write_model(
        folder, "light3d benchmark", module, ("z", "y", "x"), 32, 8, 4, (1, 1, 32, 32, 32)
    )
