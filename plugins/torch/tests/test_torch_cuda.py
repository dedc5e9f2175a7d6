"""The torch backend on a CUDA GPU: device choice, the bundled example model on the GPU compared
with the CPU and with its test output (whole image, blockwise, CLI), GPU memory after unload, and
repeatable outputs under full determinism. Skipped on machines without CUDA.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from bioimageio_run_torch._adapter import TorchAdapter
from bioimageio_run_torch.devices import torch_device

from bioimageio_core import (
    PredictionPipeline,
    create_prediction_pipeline,
    enable_determinism,
    load_description,
    predict,
)
from bioimageio_core.plugin import ModelDescr, PluginError
from bioimageio_core.plugin.testing import (
    assert_passed,
    compare_arrays,
    get_tolerance,
    run_cli,
    run_test,
)

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA device (torch.cuda.is_available() is False on this machine)",
)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
EXAMPLE_DIR = PROJECT_ROOT / "examples" / "tiny-nuclei-unet"
EXAMPLE = EXAMPLE_DIR / "rdf.yaml"
FORMATS = ("torchscript", "pytorch_state_dict")
OUTPUT = "probability"


@pytest.fixture(autouse=True)
def _own_cache_and_torch_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("BIOIMAGEIO_CACHE_PATH", str(tmp_path / "cache"))
    deterministic = torch.are_deterministic_algorithms_enabled()
    cudnn = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    yield
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = cudnn


@pytest.fixture(scope="module")
def example() -> ModelDescr:
    descr = load_description(EXAMPLE)
    assert isinstance(descr, ModelDescr)
    return descr


def _test_input() -> np.ndarray[Any, Any]:
    return np.asarray(np.load(EXAMPLE_DIR / "test_input.npy"))


def _test_output() -> np.ndarray[Any, Any]:
    return np.asarray(np.load(EXAMPLE_DIR / "test_output.npy"))


def _large_input() -> np.ndarray[Any, Any]:
    """Blobs on a noisy background, 1x1x352x288 (valid: 96 + n * 16 on both axes)."""
    y, x = np.mgrid[:352, :288].astype(np.float32)
    rng = np.random.default_rng(5)
    image = rng.normal(0.0, 0.1, (352, 288)).astype(np.float32)
    for cy, cx in rng.uniform((20, 20), (332, 268), (12, 2)):
        image += np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * 8.0**2)).astype(np.float32)
    return image[None, None]


def _predicted(pipeline: PredictionPipeline, image: np.ndarray[Any, Any], **kw: Any) -> Any:
    out = predict(model=pipeline, inputs={"raw": image}, axes="bcyx", **kw)
    data = out.members[OUTPUT].data
    assert isinstance(data, np.ndarray) and data.dtype == np.float32
    return data


def _assert_within_tolerance(
    model: ModelDescr, weights_format: str, actual: Any, expected: Any
) -> None:
    comparison = compare_arrays(actual, expected, get_tolerance(model, OUTPUT, weights_format))
    assert comparison.passed, comparison.describe(("b", "c", "y", "x"))


# ---- device choice ------------------------------------------------------------------------------


def test_default_device_is_the_gpu(example: ModelDescr) -> None:
    assert torch_device(None) == torch.device("cuda")
    with create_prediction_pipeline(example, weights_format="torchscript") as pipeline:
        adapter = pipeline.adapter
        assert isinstance(adapter, TorchAdapter) and adapter.device.type == "cuda"
        module = adapter._module
        assert module is not None
        assert {p.device.type for p in module.parameters()} == {"cuda"}


@pytest.mark.parametrize("weights_format", FORMATS)
def test_numbered_device(example: ModelDescr, weights_format: str) -> None:
    with create_prediction_pipeline(
        example, weights_format=weights_format, devices=["cuda:0"]
    ) as pipeline:
        adapter = pipeline.adapter
        assert isinstance(adapter, TorchAdapter)
        assert adapter.device == torch.device("cuda", 0)
        assert adapter._module is not None
        assert {p.device for p in adapter._module.parameters()} == {torch.device("cuda", 0)}


def test_device_beyond_the_machine(example: ModelDescr, tmp_path: Path) -> None:
    count = torch.cuda.device_count()
    with pytest.raises(PluginError, match=rf"has {count} CUDA device\(s\).*cuda:0"):
        create_prediction_pipeline(example, weights_format="torchscript", devices=[f"cuda:{count}"])
    result = run_cli(
        "predict", EXAMPLE, "--inputs", EXAMPLE_DIR / "test_input.npy", "--outputs",
        tmp_path / "out.npy", "--device", f"cuda:{count}", "--weights-format", "torchscript",
    )  # fmt: skip
    assert result.exit_code != 0
    assert f"has {count} CUDA device(s)" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.npy").exists()


# ---- the bundled example model on the GPU -----------------------------------------------------


@pytest.fixture(scope="module", params=FORMATS)
def pipelines(
    request: pytest.FixtureRequest, example: ModelDescr
) -> Iterator[tuple[str, PredictionPipeline, PredictionPipeline]]:
    """(weights format, CPU pipeline, GPU pipeline) of the example model."""
    weights_format: str = request.param
    with (
        create_prediction_pipeline(example, weights_format=weights_format, devices=["cpu"]) as cpu,
        create_prediction_pipeline(example, weights_format=weights_format, devices=["cuda"]) as gpu,
    ):
        yield weights_format, cpu, gpu


def test_whole_image_on_gpu_matches_cpu_and_test_output(
    example: ModelDescr, pipelines: tuple[str, PredictionPipeline, PredictionPipeline]
) -> None:
    weights_format, cpu, gpu = pipelines
    on_gpu = _predicted(gpu, _test_input())
    on_cpu = _predicted(cpu, _test_input())
    assert on_gpu.shape == on_cpu.shape == _test_output().shape
    _assert_within_tolerance(example, weights_format, on_gpu, _test_output())
    _assert_within_tolerance(example, weights_format, on_gpu, on_cpu)


@pytest.mark.parametrize(("blocksize", "batch_size"), [(2, 1), (4, 3)])
def test_blockwise_on_gpu_matches_cpu(
    example: ModelDescr,
    pipelines: tuple[str, PredictionPipeline, PredictionPipeline],
    blocksize: int,
    batch_size: int,
) -> None:
    weights_format, cpu, gpu = pipelines
    image = _large_input()
    kw: dict[str, Any] = {"blocksize_parameter": blocksize, "batch_size": batch_size}
    on_gpu = _predicted(gpu, image, **kw)
    on_cpu = _predicted(cpu, image, **kw)
    assert on_gpu.shape == image.shape
    _assert_within_tolerance(example, weights_format, on_gpu, on_cpu)


@pytest.mark.parametrize("weights_format", FORMATS)
def test_cli_predict_on_cuda(example: ModelDescr, weights_format: str, tmp_path: Path) -> None:
    np.save(tmp_path / "large.npy", _large_input())
    outputs = {}
    for name, extra in {"whole": (), "tiled": ("--blocksize", "2", "--batch-size", "2")}.items():
        for device in ("cpu", "cuda"):
            target = tmp_path / f"{name}_{device}.npy"
            result = run_cli(
                "predict", EXAMPLE, "--inputs", tmp_path / "large.npy", "--outputs", target,
                "--axes", "bcyx", "--device", device, "--weights-format", weights_format,
                "--quiet", *extra,
            )  # fmt: skip
            assert result.exit_code == 0, result.output
            outputs[name, device] = np.load(target)
    for name in ("whole", "tiled"):
        _assert_within_tolerance(
            example, weights_format, outputs[name, "cuda"], outputs[name, "cpu"]
        )


@pytest.mark.parametrize("determinism", ["seed_only", "full"])
@pytest.mark.parametrize("weights_format", FORMATS)
def test_cli_test_on_cuda(weights_format: str, determinism: str) -> None:
    exit_code, summary = run_test(
        EXAMPLE, "--weights-format", weights_format, "--device", "cuda",
        "--determinism", determinism,
    )  # fmt: skip
    assert_passed(exit_code, summary, [weights_format], 1)


# ---- memory and determinism --------------------------------------------------------------------


@pytest.mark.parametrize("weights_format", FORMATS)
def test_closing_the_pipeline_returns_gpu_memory(example: ModelDescr, weights_format: str) -> None:
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    baseline = torch.cuda.memory_allocated()
    with create_prediction_pipeline(
        example, weights_format=weights_format, devices=["cuda"]
    ) as pipeline:
        _predicted(pipeline, _large_input(), blocksize_parameter=2, batch_size=2)
        assert torch.cuda.memory_allocated() > baseline  # the weights are on the GPU
    assert pipeline.adapter is None
    assert torch.cuda.memory_allocated() == baseline


@pytest.mark.parametrize("weights_format", FORMATS)
def test_full_determinism_on_cuda_repeats_outputs(example: ModelDescr, weights_format: str) -> None:
    enable_determinism("full", [weights_format])
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    runs = []
    for _ in range(2):
        with create_prediction_pipeline(
            example, weights_format=weights_format, devices=["cuda"]
        ) as pipeline:
            runs.append(_predicted(pipeline, _large_input(), blocksize_parameter=2, batch_size=3))
    np.testing.assert_array_equal(runs[0], runs[1])


# ---- float32 precision ---------------------------------------------------------------------------


def _tf32_switches() -> tuple[bool, bool, str]:
    return (
        torch.backends.cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
        torch.get_float32_matmul_precision(),
    )


@pytest.mark.skipif(
    torch.cuda.is_available() and torch.cuda.get_device_capability() < (8, 0),
    reason="TF32 needs an Ampere or newer GPU (compute capability 8.0)",
)
def test_ieee_float32_by_default_and_tf32_on_request(
    example: ModelDescr, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without TF32 the GPU is as exact as the CPU; with torch's TF32 convolutions it is not."""
    torch.backends.cudnn.allow_tf32 = True  # torch's default, which the adapter overrides
    switches = _tf32_switches()
    image = _large_input()

    def run(device: str) -> Any:
        with create_prediction_pipeline(
            example, weights_format="torchscript", devices=[device]
        ) as pipeline:
            return _predicted(pipeline, image)

    on_cpu = run("cpu")
    ieee = run("cuda")
    assert _tf32_switches() == switches  # restored after each forward
    monkeypatch.setenv("BIOIMAGEIO_TORCH_ALLOW_TF32", "1")
    tf32 = run("cuda")
    assert float(np.abs(ieee - on_cpu).max()) < 1e-5
    assert float(np.abs(tf32 - on_cpu).max()) > 1e-5
