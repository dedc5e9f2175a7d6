"""End to end: ``bioimageio-run test`` and ``predict`` on torch models built here, the bundled
example model and the published unet2d_nuclei_broad model.

The models (fixed seeds) are exported as torchscript and as a state dict with an architecture
file; their test outputs come from the eager modules. Each is described in 0.5 and in 0.4.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch_helpers import NETS_FILE, PYTORCH_VERSION, run_eager, seeded, sha256_of, write_nets

from bioimageio_core.cli import main
from bioimageio_core.plugin_e2e import (
    LargePrediction,
    ModelDef,
    Param,
    Ref,
    TensorDef,
    Version,
    WeightsDef,
    assert_failed_reproduction,
    assert_passed,
    description_path,
    predict_whole_and_tiled,
    run_test,
    warnings_of,
    write_model,
)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = PROJECT_ROOT / "examples" / "tiny-nuclei-unet" / "rdf.yaml"
UNET_DIR = PROJECT_ROOT / ".." / "shared" / "conformance" / "models" / "unet2d_nuclei_broad"
FORMATS = ("torchscript", "pytorch_state_dict")
VERSIONS: tuple[Version, ...] = ("0.5", "0.4")
RNG = np.random.default_rng(2024)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOIMAGEIO_CACHE_PATH", str(tmp_path / "cache"))


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


def _tiled(folder: Path, nets: ModuleType) -> tuple[ModelDef, torch.nn.Module]:
    """3x3 conv + 1x1 conv (receptive field radius 1), parameterized input 64 + n*16, halo 4."""
    module = seeded(nets.make_tiny_conv, 1, 2, seed=1)
    raw = RNG.standard_normal((1, 1, 64, 80)).astype(np.float32)
    out = run_eager(module, raw).numpy()
    model = ModelDef(
        "tiled conv",
        (TensorDef("raw", "bcyx", raw, Param(64, 16)),),
        (TensorDef("out", "bcyx", out, Ref("raw"), halo=4),),
        _weights(folder, module, "make_tiny_conv", {"in_channels": 1, "out_channels": 2}),
    )
    return model, module


def _multi(folder: Path, nets: ModuleType) -> tuple[ModelDef, torch.nn.Module]:
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
    return model, module


def _scaled(folder: Path, nets: ModuleType) -> tuple[ModelDef, torch.nn.Module]:
    """2x downsampling: the output's sizes are half the input's (halo 2 output pixels)."""
    module = seeded(nets.Downsample2, seed=3)
    raw = RNG.standard_normal((1, 1, 64, 48)).astype(np.float32)
    out = run_eager(module, raw).numpy()
    assert out.shape == (1, 2, 32, 24)
    model = ModelDef(
        "downsampling",
        (TensorDef("raw", "bcyx", raw, Param(32, 16)),),
        (TensorDef("down", "bcyx", out, Ref("raw", 0.5), halo=2),),
        _weights(folder, module, "Downsample2", {}),
    )
    return model, module


BUILDERS: dict[str, Callable[[Path, ModuleType], tuple[ModelDef, torch.nn.Module]]] = {
    "tiled": _tiled,
    "multi": _multi,
    "scaled": _scaled,
}


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, nets: ModuleType
) -> dict[str, tuple[Path, ModelDef, torch.nn.Module]]:
    """Every model, with its weights and both descriptions in a folder of its own."""
    models = {}
    for name, build in BUILDERS.items():
        folder = tmp_path_factory.mktemp(name)
        write_nets(folder)
        model, module = build(folder, nets)
        for version in VERSIONS:
            write_model(folder, model, version)
        models[name] = (folder, model, module)
    return models


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_cli_test_passes(
    built: dict[str, tuple[Path, ModelDef, torch.nn.Module]], name: str, version: Version
) -> None:
    folder, model, _ = built[name]
    exit_code, summary = run_test(description_path(folder, version))
    assert_passed(exit_code, summary, FORMATS, len(model.outputs))
    assert summary["format_version"] == ("0.5.4" if version == "0.5" else "0.4.10")
    assert warnings_of(summary) == []


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("weights_format", FORMATS)
def test_cli_test_fails_on_a_wrong_test_output(
    built: dict[str, tuple[Path, ModelDef, torch.nn.Module]],
    tmp_path: Path,
    version: Version,
    weights_format: str,
) -> None:
    folder, model, _ = built["multi"]
    for w in model.weights:
        shutil.copy(folder / w.source, tmp_path / w.source)
    write_nets(tmp_path)
    path = write_model(tmp_path, model, version, wrong_output="features")
    exit_code, summary = run_test(path, "--weights-format", weights_format)
    assert_failed_reproduction(exit_code, summary, weights_format, "features")


# ---- tiled prediction --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def large(
    built: dict[str, tuple[Path, ModelDef, torch.nn.Module]],
    tmp_path_factory: pytest.TempPathFactory,
) -> LargePrediction:
    """A 2048x2048 input predicted whole and blockwise (batch sizes 1 and 4) by the CLI."""
    folder, _, module = built["tiled"]
    work = tmp_path_factory.mktemp("large")
    image = np.random.default_rng(7).standard_normal((1, 1, 2048, 2048)).astype(np.float32)
    # blocks of 64 + 28 * 16 = 512 pixels (halo included): 5 x 5 blocks
    whole, tiled = predict_whole_and_tiled(
        folder / "rdf.yaml", image, work, axes="bcyx", blocksize=28, weights_format="torchscript"
    )
    return LargePrediction(whole, run_eager(module, image).numpy(), tiled)


def test_whole_image_prediction_is_the_module_output(large: LargePrediction) -> None:
    assert large.whole.shape == (1, 2, 2048, 2048)
    np.testing.assert_allclose(large.whole, large.direct, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_blockwise_prediction_equals_whole_image(large: LargePrediction, batch_size: int) -> None:
    np.testing.assert_allclose(large.tiled[batch_size], large.whole, rtol=0, atol=1e-5)


def test_batch_size_4_equals_batch_size_1(large: LargePrediction) -> None:
    np.testing.assert_allclose(large.tiled[4], large.tiled[1], rtol=0, atol=1e-5)


# ---- published and bundled models -------------------------------------------------------------


@pytest.mark.parametrize("weights_format", [*FORMATS])
def test_bundled_example_model(weights_format: str) -> None:
    exit_code, summary = run_test(EXAMPLE, "--weights-format", weights_format)
    assert_passed(exit_code, summary, [weights_format], 1)


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
    result = CliRunner().invoke(
        main,
        ["predict", str(EXAMPLE), "-i", str(EXAMPLE.parent / "test_input.npy"), "-o", str(out),
         "--weights-format", "torchscript", "--device", device],
    )
    assert result.exit_code == 1, result.output
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


@pytest.mark.skipif(
    not (UNET_DIR / "bioimageio.yaml").is_file(),
    reason=f"conformance data not found at {UNET_DIR} (../shared next to the project root)",
)
@pytest.mark.parametrize(
    "description", ["bioimageio.yaml", "v0_4_0.bioimageio.yaml", "v0_4_9.bioimageio.yaml"]
)
def test_unet2d_nuclei_broad_torchscript(description: str) -> None:
    exit_code, summary = run_test(UNET_DIR / description, "--weights-format", "torchscript")
    assert_passed(exit_code, summary, ["torchscript"], 1)
