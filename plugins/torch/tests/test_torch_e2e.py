"""End to end: the conformance battery on torch models built here, the bundled example model and
the published unet2d_nuclei_broad model.

The models (fixed seeds) are exported as torchscript and as a state dict with an architecture
file; their test outputs come from the eager modules.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import numpy as np
import pytest
import torch
from torch_helpers import (
    NETS_FILE,
    PYTORCH_VERSION,
    import_nets,
    run_eager,
    seeded,
    sha256_of,
    write_nets,
)

import bioimageio_core.plugin.testing as kit
from bioimageio_core.plugin.testing import ModelDef, Param, Ref, TensorDef, WeightsDef

PROJECT_ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = PROJECT_ROOT / "examples" / "tiny-nuclei-unet" / "rdf.yaml"
FORMATS = ("torchscript", "pytorch_state_dict")
RNG = np.random.default_rng(2024)


@attrs.frozen
class Net:
    """An eager module and the tensor ids of its positional inputs and outputs."""

    module: torch.nn.Module
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def _weights(
    folder: Path, module: torch.nn.Module, callable_name: str, kwargs: dict[str, Any]
) -> tuple[WeightsDef, ...]:
    torch.jit.save(torch.jit.script(module), str(folder / "weights_torchscript.pt"))
    torch.save(module.state_dict(), folder / "weights.pth")
    nets_sha = sha256_of(folder / NETS_FILE)
    version = {"pytorch_version": PYTORCH_VERSION}
    derived = {**version, "parent": "pytorch_state_dict"}
    return (
        WeightsDef("torchscript", "weights_torchscript.pt", derived, derived),
        WeightsDef(
            "pytorch_state_dict",
            "weights.pth",
            {
                "architecture": {
                    "source": NETS_FILE,
                    "sha256": nets_sha,
                    "callable": callable_name,
                    "kwargs": kwargs,
                },
                **version,
            },
            {
                "architecture": f"{NETS_FILE}:{callable_name}",
                "architecture_sha256": nets_sha,
                "kwargs": kwargs,
                **version,
            },
        ),
    )


def _tiled(folder: Path, nets: ModuleType) -> tuple[ModelDef, Net]:
    """3x3 conv + 1x1 conv (receptive field radius 1), parameterized input 64 + n*16, halo 4."""
    module = seeded(nets.make_tiny_conv, 1, 2, seed=1)
    raw = RNG.standard_normal((1, 1, 64, 80)).astype(np.float32)
    out = run_eager(module, raw).numpy()
    weights = _weights(folder, module, "make_tiny_conv", {"in_channels": 1, "out_channels": 2})
    return kit.tiled_model("bcyx", raw, out, weights), Net(module, ("raw",), ("out",))


def _multi(folder: Path, nets: ModuleType) -> tuple[ModelDef, Net]:
    """Inputs raw (2 channels) and mask (sized like raw); outputs features (halo 2) and score."""
    module = seeded(nets.MultiInOut, seed=2)
    raw = RNG.standard_normal((1, 2, 48, 32)).astype(np.float32)
    mask = RNG.uniform(size=(1, 1, 48, 32)).astype(np.float32)
    features, score = (t.numpy() for t in run_eager(module, raw, mask))
    model = ModelDef(
        "multi tensor",
        (
            TensorDef("raw", "bcyx", raw, Param(32, 16)),
            TensorDef("mask", "bcyx", mask, Ref("raw")),
        ),
        (
            TensorDef("features", "bcyx", features, Ref("raw"), halo=2),
            TensorDef("score", "bc", score),
        ),
        _weights(folder, module, "MultiInOut", {}),
    )
    return model, Net(module, ("raw", "mask"), ("features", "score"))


def _scaled(folder: Path, nets: ModuleType) -> tuple[ModelDef, Net]:
    """2x downsampling: the output's sizes are half the input's (halo 2 output pixels)."""
    module = seeded(nets.Downsample2, seed=3)
    raw = RNG.standard_normal((1, 1, 64, 48)).astype(np.float32)
    out = run_eager(module, raw).numpy()
    assert out.shape == (1, 2, 32, 24)
    model = kit.scaled_model("bcyx", raw, out, _weights(folder, module, "Downsample2", {}))
    return model, Net(module, ("raw",), ("down",))


BUILDERS: dict[str, Callable[[Path, ModuleType], tuple[ModelDef, Net]]] = {
    "tiled": _tiled,
    "multi": _multi,
    "scaled": _scaled,
}


class TestTorchBackend(kit.BackendConformance[Net]):
    """The conformance battery (``bioimageio_core.plugin.testing``) for both torch formats."""

    distribution = "bioimageio-run-torch"
    framework_modules = ("torch",)
    weights_formats = FORMATS
    tiled_radius = 1  # 3x3 conv + 1x1 conv
    large_weights_format = "torchscript"

    def build(self, name: str, folder: Path) -> tuple[ModelDef, Net]:
        nets = import_nets(write_nets(folder))  # also the architecture file of the state dict
        return BUILDERS[name](folder, nets)

    def run_directly(self, network: Net, inputs: kit.Arrays) -> kit.Arrays:
        result = run_eager(network.module, *(inputs[tid] for tid in network.inputs))
        outputs = result if isinstance(result, tuple) else (result,)
        return {tid: t.numpy() for tid, t in zip(network.outputs, outputs, strict=True)}


# ---- each test has a cache of its own -----------------------------------------------------------


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOIMAGEIO_CACHE_PATH", str(tmp_path / "cache"))


# ---- the bundled example and a published model ------------------------------------------------


@pytest.mark.parametrize("weights_format", [*FORMATS])
def test_bundled_example_model(weights_format: str) -> None:
    exit_code, summary = kit.run_test(EXAMPLE, "--weights-format", weights_format)
    kit.assert_passed(exit_code, summary, [weights_format], 1)


@pytest.mark.parametrize(
    ("device", "message"),
    [("gpu0", "use 'cpu', 'cuda', 'cuda:N'"), ("cuda:7", "cuda:7")],
)
def test_cli_predict_names_a_device_the_backend_cannot_use(
    device: str, message: str, tmp_path: Path
) -> None:
    """``predict --device`` takes the backend's device names (as ``test`` does) and reports a
    wrong one as a short error, without writing outputs."""
    out = tmp_path / "out.npy"
    result = kit.run_cli(
        "predict", EXAMPLE, "-i", EXAMPLE.parent / "test_input.npy", "-o", out,
        "--weights-format", "torchscript", "--device", device,
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_unet2d_nuclei_broad_torchscript(unet2d_nuclei_broad_description: Path) -> None:
    description = unet2d_nuclei_broad_description
    exit_code, summary = kit.run_test(description, "--weights-format", "torchscript")
    kit.assert_passed(exit_code, summary, ["torchscript"], 1)
