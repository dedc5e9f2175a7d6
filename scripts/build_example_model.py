"""Rebuild the bundled example model ``examples/tiny-nuclei-unet`` from a fixed seed.

Trains a small 2D U-Net to segment nuclei in synthetic fluorescence images, then writes
pytorch_state_dict, torchscript and ONNX weights, test tensors, an example image, a cover and the
0.5 description. Needs torch (==2.13.0, see constraints.txt), onnx, imageio and PyYAML::

    python -m pip install -c constraints.txt torch==2.13.0 onnx imageio pyyaml
    python scripts/build_example_model.py [--steps 1500]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / "examples" / "tiny-nuclei-unet"
SEED = 20261123
HALO = 32
MIN_SIZE = 96
STEP = 16
EPS = 1e-6


def _load_architecture() -> Any:
    spec = importlib.util.spec_from_file_location("tiny_nuclei_unet_arch", MODEL_DIR / "unet.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TinyUNet


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(3 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    k = _gaussian_kernel(sigma)
    r = len(k) // 2
    padded = np.pad(image, r, mode="reflect")
    rows = np.apply_along_axis(lambda v: np.convolve(v, k, mode="valid"), 1, padded)
    return np.apply_along_axis(lambda v: np.convolve(v, k, mode="valid"), 0, rows)


def synthetic_nuclei(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic fluorescence image (float, roughly 0..1.5) and its nucleus mask."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    mask = np.zeros((size, size), dtype=bool)
    signal = np.zeros((size, size), dtype=np.float64)
    n_nuclei = rng.integers(max(1, size * size // 2500), max(2, size * size // 700))
    for _ in range(n_nuclei):
        cy, cx = rng.uniform(0, size, 2)
        ry, rx = rng.uniform(3.5, 11.0, 2)
        angle = rng.uniform(0, np.pi)
        c, s = np.cos(angle), np.sin(angle)
        dy, dx = yy - cy, xx - cx
        u = (c * dx + s * dy) / rx
        v = (-s * dx + c * dy) / ry
        inside = u * u + v * v <= 1.0
        mask |= inside
        signal[inside] = np.maximum(signal[inside], rng.uniform(0.2, 1.0))
    texture = 1.0 + 0.15 * rng.standard_normal((size, size))
    image = _blur(signal * texture, 1.2)
    gy, gx = rng.uniform(-0.1, 0.1, 2)
    background = 0.1 + gy * yy / size + gx * xx / size
    noisy = image + background + rng.normal(0, rng.uniform(0.05, 0.25), (size, size))
    return noisy, mask


def normalize(x: np.ndarray) -> np.ndarray:
    """The description's preprocessing: zero mean, unit variance over y and x (population std)."""
    x = x.astype(np.float32)
    mean = x.mean(axis=(-2, -1), keepdims=True, dtype=np.float64)
    std = x.std(axis=(-2, -1), keepdims=True, dtype=np.float64)
    return ((x - mean) / (std + EPS)).astype(np.float32)


def train(steps: int) -> torch.nn.Module:
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    model = _load_architecture()(in_channels=1, out_channels=1, features=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    for step in range(steps):
        pairs = [synthetic_nuclei(rng, 64) for _ in range(16)]
        x = torch.from_numpy(normalize(np.stack([p[0] for p in pairs])[:, None]))
        y = torch.from_numpy(np.stack([p[1] for p in pairs])[:, None].astype(np.float32))
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        if step % 250 == 0 or step == steps - 1:
            print(f"step {step:5d}  loss {loss.item():.4f}", flush=True)
    return model.eval()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def to_uint16(image: np.ndarray) -> np.ndarray:
    return np.clip(image * 2000 + 200, 0, 65535).astype(np.uint16)


def write_cover(path: Path, image: np.ndarray, probability: np.ndarray) -> None:
    lo, hi = np.percentile(image, [1, 99.8])
    left = np.clip((image - lo) / (hi - lo), 0, 1)
    cover = np.concatenate([left, probability], axis=1)
    iio.imwrite(path, (cover * 255).astype(np.uint8))


def description(files: dict[str, Path]) -> dict[str, Any]:
    def ref(key: str) -> dict[str, str]:
        return {"source": files[key].name, "sha256": sha256(files[key])}

    return {
        "format_version": "0.5.14",
        "type": "model",
        "name": "Tiny nuclei U-Net",
        "description": "A small 2D U-Net that segments nuclei in fluorescence images. Trained on "
        "synthetic data; an example model of bioimageio-run.",
        "authors": [{"name": "bioimageio-run developers"}],
        "cite": [
            {
                "text": "Ronneberger et al. U-Net: Convolutional Networks for Biomedical Image "
                "Segmentation. MICCAI 2015",
                "doi": "10.1007/978-3-319-24574-4_28",
            }
        ],
        "license": "MIT",
        "tags": ["unet2d", "pytorch", "onnx", "nuclei", "segmentation", "fluorescence-light-microscopy"],
        "documentation": ref("documentation"),
        "covers": [ref("cover")],
        "version": "0.1.0",
        "inputs": [
            {
                "id": "raw",
                "description": "fluorescence image of nuclei",
                "axes": [
                    {"type": "batch"},
                    {"type": "channel", "channel_names": ["raw_intensity"]},
                    {"type": "space", "id": "y", "size": {"min": MIN_SIZE, "step": STEP}},
                    {"type": "space", "id": "x", "size": {"min": MIN_SIZE, "step": STEP}},
                ],
                "test_tensor": ref("test_input"),
                "sample_tensor": ref("sample_input"),
                "data": {"type": "float32"},
                "preprocessing": [
                    {"id": "ensure_dtype", "kwargs": {"dtype": "float32"}},
                    {"id": "zero_mean_unit_variance", "kwargs": {"axes": ["y", "x"], "eps": EPS}},
                ],
            }
        ],
        "outputs": [
            {
                "id": "probability",
                "description": "probability of each pixel to belong to a nucleus",
                "axes": [
                    {"type": "batch"},
                    {"type": "channel", "channel_names": ["foreground"]},
                    {
                        "type": "space",
                        "id": "y",
                        "size": {"tensor_id": "raw", "axis_id": "y"},
                        "halo": HALO,
                    },
                    {
                        "type": "space",
                        "id": "x",
                        "size": {"tensor_id": "raw", "axis_id": "x"},
                        "halo": HALO,
                    },
                ],
                "test_tensor": ref("test_output"),
                "sample_tensor": ref("sample_output"),
                "data": {"type": "float32", "range": [0.0, 1.0]},
                "postprocessing": [{"id": "sigmoid"}],
            }
        ],
        "weights": {
            "pytorch_state_dict": {
                **ref("state_dict"),
                "architecture": {
                    **ref("architecture"),
                    "callable": "TinyUNet",
                    "kwargs": {"in_channels": 1, "out_channels": 1, "features": 8},
                },
                "pytorch_version": torch.__version__.split("+")[0],
            },
            "torchscript": {
                **ref("torchscript"),
                "pytorch_version": torch.__version__.split("+")[0],
                "parent": "pytorch_state_dict",
            },
            "onnx": {**ref("onnx"), "opset_version": 17, "parent": "pytorch_state_dict"},
        },
        "config": {
            "bioimageio": {
                "reproducibility_tolerance": [
                    {"absolute_tolerance": 1e-4, "relative_tolerance": 1e-4}
                ]
            }
        },
    }


DOCUMENTATION = """# Tiny nuclei U-Net

A small 2D U-Net (two resolution levels, 8/16/32 channels, about 30k parameters) that predicts,
for every pixel of a fluorescence image of nuclei, the probability that it belongs to a nucleus.

## Training data
Synthetic images generated by `scripts/build_example_model.py` of the bioimageio-run repository:
ellipses of random size, orientation and brightness on a sloped background, blurred, with
Gaussian noise. The script rebuilds this model from a fixed seed.

## Input and output
Input `raw`: one channel, y and x of size 96 + n*16. It is normalised to zero mean and unit
variance per image. Output `probability`: same size as the input, values in [0, 1]. The outer 32
pixels of each tile are context only (halo 32), so tiled prediction matches whole-image prediction.

## Validation
The test tensors were produced with the pytorch_state_dict weights; the torchscript and ONNX
weights reproduce them within 1e-4. This is a demonstration model: it has only seen synthetic data.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500, help="training steps (default 1500)")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    model = train(args.steps)
    TinyUNet = _load_architecture()

    files = {
        "architecture": MODEL_DIR / "unet.py",
        "state_dict": MODEL_DIR / "weights.pt",
        "torchscript": MODEL_DIR / "weights_torchscript.pt",
        "onnx": MODEL_DIR / "weights.onnx",
        "test_input": MODEL_DIR / "test_input.npy",
        "test_output": MODEL_DIR / "test_output.npy",
        "sample_input": MODEL_DIR / "sample_input.png",
        "sample_output": MODEL_DIR / "sample_output.png",
        "example_image": MODEL_DIR / "example_image.png",
        "cover": MODEL_DIR / "cover.png",
        "documentation": MODEL_DIR / "README.md",
    }
    torch.save(model.state_dict(), files["state_dict"])
    reloaded = TinyUNet(in_channels=1, out_channels=1, features=8)
    reloaded.load_state_dict(torch.load(files["state_dict"], weights_only=True))
    reloaded.eval()
    torch.jit.save(torch.jit.script(reloaded), files["torchscript"])

    rng = np.random.default_rng(SEED + 1)
    test_raw, _ = synthetic_nuclei(rng, 256)
    test_input = to_uint16(test_raw)[None, None].astype(np.float32)
    with torch.no_grad():
        logits = reloaded(torch.from_numpy(normalize(test_input))).numpy()
    test_output = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
    np.save(files["test_input"], test_input)
    np.save(files["test_output"], test_output)
    iio.imwrite(files["sample_input"], test_input[0, 0].astype(np.uint16))
    iio.imwrite(files["sample_output"], (test_output[0, 0] * 255).astype(np.uint8))
    write_cover(files["cover"], test_input[0, 0], test_output[0, 0])

    example_raw, _ = synthetic_nuclei(np.random.default_rng(SEED + 2), 512)
    iio.imwrite(files["example_image"], to_uint16(example_raw))

    torch.onnx.export(
        reloaded,
        (torch.from_numpy(normalize(test_input)),),
        str(files["onnx"]),
        dynamo=False,
        input_names=["raw"],
        output_names=["probability"],
        dynamic_axes={"raw": {0: "batch", 2: "y", 3: "x"}, "probability": {0: "batch", 2: "y", 3: "x"}},
        opset_version=17,
    )
    files["documentation"].write_text(DOCUMENTATION, encoding="utf-8")
    rdf = description(files)
    with (MODEL_DIR / "rdf.yaml").open("w", encoding="utf-8") as f:
        yaml.safe_dump(rdf, f, sort_keys=False)
    total = sum(p.stat().st_size for p in MODEL_DIR.iterdir() if p.is_file())
    print(f"wrote {MODEL_DIR} ({total / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
