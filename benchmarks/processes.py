"""Whole-process benchmarks: cold start (4), peak memory vs input size (6), the reference (7).

Every measurement runs in a fresh child process; wall time and peak RSS (``wait4`` rusage of that
child) are taken from outside.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from benchmarks._common import (
    EXAMPLE_MODEL,
    Config,
    ProcessRun,
    Result,
    bench_env,
    random_image,
    reference_cli,
    run_process,
)

REFERENCE_HELP_S = 3.7
REFERENCE_JOB_S = 8.0
REFERENCE_JOB_MB = 394.0


def _cli(name: str) -> str:
    """The console script ``name`` next to this interpreter (the bench environment's)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


def _repeat(args: Sequence[str], cfg: Config, cwd: Path, repeats: int) -> list[ProcessRun]:
    runs = []
    for _ in range(repeats):
        run = run_process(args, env=bench_env(cfg.threads), cwd=cwd)
        if run.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({run.returncode}):\n{run.output[-2000:]}")
        runs.append(run)
    return runs


def _row(label: str, runs: Sequence[ProcessRun]) -> list[object]:
    return [
        label,
        median(r.seconds for r in runs),
        min(r.seconds for r in runs),
        median(r.peak_mb for r in runs),
    ]


def cold_start(cfg: Config) -> Result:
    """Benchmark 4: `--help`, `validate`, and a full `predict` of a 512² image."""
    work = cfg.work_dir / "cold_start"
    work.mkdir(parents=True, exist_ok=True)
    np.save(work / "image512.npy", random_image((512, 512), seed=0))
    cli = _cli("bioimageio-run")
    py = sys.executable
    predict = [cli, "predict", str(EXAMPLE_MODEL), "-i", "image512.npy", "-o"]
    jobs: list[tuple[str, list[str]]] = [
        ("python -c pass (interpreter floor)", [py, "-c", "pass"]),
        ("python -c 'import onnxruntime' (framework floor)", [py, "-c", "import onnxruntime"]),
        ("python -c 'import torch' (framework floor)", [py, "-c", "import torch"]),
        ("bioimageio-run --help", [cli, "--help"]),
        (
            "bioimageio-run validate examples/tiny-nuclei-unet/rdf.yaml",
            [cli, "validate", str(EXAMPLE_MODEL)],
        ),
        (
            "bioimageio-run predict 512² (default format: torchscript)",
            [*predict, "out_default.npy", "--overwrite"],
        ),
        (
            "bioimageio-run predict 512² --weights-format onnx",
            [*predict, "out_onnx.npy", "--overwrite", "--weights-format", "onnx"],
        ),
    ]
    repeats = max(3, cfg.repeats - 2)
    result = Result(
        title="4. Cold start (whole process)",
        description=(
            f"Each command in a fresh process, {repeats} runs, interpreter of the bench environment; "
            "peak RSS is the child's maximum resident set size."
        ),
        columns=["command", "median wall (s)", "min wall (s)", "peak RSS (MB)"],
        goal=f"well under the reference: `bioimageio --help` {REFERENCE_HELP_S} s on this machine",
    )
    runs: dict[str, list[ProcessRun]] = {label: [] for label, _ in jobs}
    for _ in range(repeats):  # interleaved: one run of every command per round
        for label, args in jobs:
            runs[label] += _repeat(args, cfg, work, 1)
    for label, _ in jobs:
        result.rows.append(_row(label, runs[label]))
    help_s = median(r.seconds for r in runs["bioimageio-run --help"])
    result.verdict = (
        f"`bioimageio-run --help` {help_s:.2f} s = {help_s / REFERENCE_HELP_S:.0%} of the "
        f"reference's `bioimageio --help` ({REFERENCE_HELP_S} s, measured earlier on this machine)"
    )
    out = np.load(work / "out_onnx.npy")
    result.notes.append(
        f"predict output: shape {out.shape}, dtype {out.dtype}, range [{out.min():.3f}, {out.max():.3f}]"
    )
    return result


_MEMORY_JOB = """
import re, sys, numpy as np
from pathlib import Path
from benchmarks._common import set_threads
set_threads(int(sys.argv[3]))
from bioimageio_core import create_prediction_pipeline
size = int(sys.argv[1])
x = np.load(sys.argv[2], mmap_mode="r")
with create_prediction_pipeline(sys.argv[4], weights_format="onnx", devices=["cpu"]) as p:
    p.predict_sample_block(p.digest(np.zeros((1, 1, 256, 256), "float32"), axes="bcyx"))
    hwm = lambda: int(re.search(r"VmHWM:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1))
    base = hwm()
    out = p.predict_sample_with_fixed_blocking(p.digest(x, axes="yx"), {"raw": {"y": 256, "x": 256}})
    peak = hwm()
print(base / 1024, peak / 1024)
"""


def memory(cfg: Config) -> Result:
    """Benchmark 6: peak RSS of tiled prediction vs input size, one subprocess per size."""
    work = cfg.work_dir / "memory"
    work.mkdir(parents=True, exist_ok=True)
    sizes = cfg.pick((512, 1024, 2048), (1024, 2048, 4096))
    result = Result(
        title="6. Memory vs input size (tiled prediction)",
        description=(
            "Tiny U-Net (onnx), 256×256 blocks, float32 input read from a memory-mapped `.npy`, "
            "one fresh process per size. 'model loaded' is the peak RSS after loading the model "
            "and one warm-up block; the difference to the peak is what prediction itself holds. "
            "The whole-sample arrays (normalised input, output) are inherent: the table divides the "
            "increase by the input size."
        ),
        columns=[
            "input",
            "blocks",
            "input (MB)",
            "model loaded (MB)",
            "peak (MB)",
            "increase (MB)",
            "increase / input size",
        ],
        goal="flat in the number of blocks: increase / input size constant (no per-block growth)",
    )
    ratios = []
    for size in sizes:
        path = work / f"image{size}.npy"
        np.save(path, random_image((size, size), seed=0))
        run = run_process(
            [
                sys.executable,
                "-c",
                _MEMORY_JOB,
                str(size),
                str(path),
                str(cfg.threads),
                str(EXAMPLE_MODEL),
            ],
            env={**bench_env(cfg.threads), "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
            cwd=work,
        )
        if run.returncode != 0:
            raise RuntimeError(f"memory job {size} failed:\n{run.output[-2000:]}")
        base, peak = (float(v) for v in run.output.strip().splitlines()[-1].split())
        input_mb = size * size * 4 / 2**20
        blocks = (-(-size // (256 - 64))) ** 2
        ratios.append((peak - base) / input_mb)
        result.rows.append(
            [
                f"{size}²",
                blocks,
                input_mb,
                base,
                peak,
                peak - base,
                f"{(peak - base) / input_mb:.2f}×",
            ]
        )
        path.unlink()
    # per-block growth would make the ratio rise with the input size (more blocks per MB held)
    flat = ratios[-1] <= ratios[-2] + 0.5
    result.verdict = (
        f"increase / input size {', '.join(f'{r:.2f}×' for r in ratios)} for "
        f"{', '.join(str(row[1]) for row in result.rows)} blocks: "
        + ("flat in the number of blocks" if flat else "NOT flat: grows with the number of blocks")
    )
    return result


def _diff(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> str:
    d = np.abs(a.astype("float64") - b)
    return f"{float(d.max()):.2e} (mean {float(d.mean()):.1e}, {float((d > 1e-3).mean()):.2%} of pixels > 1e-3)"


def _whole_image_prediction(image: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    from bioimageio_core import predict

    out = predict(
        model=EXAMPLE_MODEL, inputs=image, axes="bcyx", weights_format="onnx", devices=["cpu"]
    )
    return next(iter(out.members.values())).data  # type: ignore[no-any-return]


def reference(cfg: Config) -> Result:
    """Benchmark 7: the same CLI job through the reference `bioimageio predict` and ours."""
    result = Result(
        title="7. Against the reference implementation (bioimageio.core)",
        description=(
            "The same job (2048² float32 `.npy`, tiny U-Net, blockwise, onnx weights) through "
            "`bioimageio predict --blockwise` and `bioimageio-run predict --blocksize 10`, "
            "alternating, whole-process wall time and peak RSS; outputs compared."
        ),
        columns=["command", "median wall (s)", "peak RSS (MB)", "ours / reference"],
        goal=f"well under the reference ({REFERENCE_HELP_S} s for --help; {REFERENCE_JOB_S} s / {REFERENCE_JOB_MB:.0f} MB for a 2048² tiled job, measured earlier)",
    )
    ref_cli = reference_cli()
    if not cfg.reference or ref_cli is None:
        result.verdict = (
            "skipped: not asked for (--reference)"
            if not cfg.reference
            else "skipped: bioimageio.core is not installed (no `bioimageio` command found)"
        )
        result.notes.append(
            "Run `nox -s bench -- --reference` to install bioimageio.core into the bench "
            f"environment only. Facts measured earlier on this machine for the reference: "
            f"`bioimageio --help` {REFERENCE_HELP_S} s; a 2048² tiled U-Net job {REFERENCE_JOB_S} s / "
            f"{REFERENCE_JOB_MB:.0f} MB with about 4.4 s of model compute."
        )
        return result
    work = cfg.work_dir / "reference"
    (work / "raw").mkdir(parents=True, exist_ok=True)
    size = cfg.pick(1024, 2048)
    image = random_image((1, 1, size, size), seed=0)
    np.save(work / "raw" / "001.npy", image)
    np.save(work / "image.npy", image)
    cli = _cli("bioimageio-run")
    jobs = {
        "bioimageio --help": [ref_cli, "--help"],
        "bioimageio-run --help": [cli, "--help"],
        "bioimageio predict --blockwise": [
            ref_cli,
            "predict",
            str(EXAMPLE_MODEL),
            "--inputs",
            "raw/001.npy",
            "--outputs",
            "ref_out/{output_id}/{sample_id}.npy",
            "--blockwise=10",
            "--weight-format",
            "onnx",
            "--overwrite",
        ],
        "bioimageio-run predict --blocksize 10": [
            cli,
            "predict",
            str(EXAMPLE_MODEL),
            "-i",
            "image.npy",
            "-o",
            "ours_out.npy",
            "--blocksize",
            "10",
            "--weights-format",
            "onnx",
            "--overwrite",
        ],
    }
    runs: dict[str, list[ProcessRun]] = {k: [] for k in jobs}
    for _ in range(max(2, cfg.repeats - 2)):
        for label, args in jobs.items():
            runs[label] += _repeat([str(a) for a in args], cfg, work, 1)
    pairs = [
        ("bioimageio --help", "bioimageio-run --help"),
        ("bioimageio predict --blockwise", "bioimageio-run predict --blocksize 10"),
    ]
    for ref_label, our_label in pairs:
        ref_t = median(r.seconds for r in runs[ref_label])
        ref_m = median(r.peak_mb for r in runs[ref_label])
        our_t = median(r.seconds for r in runs[our_label])
        our_m = median(r.peak_mb for r in runs[our_label])
        result.rows.append([ref_label, ref_t, ref_m, ""])
        result.rows.append(
            [our_label, our_t, our_m, f"time {our_t / ref_t:.2f}×, memory {our_m / ref_m:.2f}×"]
        )
    ref_outputs = sorted((work / "ref_out").rglob("*.npy"))
    if not ref_outputs:
        raise RuntimeError(
            f"the reference wrote no output:\n{runs['bioimageio predict --blockwise'][-1].output[-2000:]}"
        )
    ref_out = ref_outputs[0]
    a, b = np.load(ref_out).squeeze(), np.load(work / "ours_out.npy").squeeze()
    whole = _whole_image_prediction(image).squeeze()
    ours_vs_whole = float(np.max(np.abs(b.astype("float64") - whole)))
    tiling = (
        "Our tiled output equals the untiled prediction: tiles stay inside the sample (default "
        "`border='inside'`), so a border tile sees the real border. "
        if ours_vs_whole < 1e-4
        else "Our tiled output differs from the untiled one where the model's receptive field "
        "exceeds its declared halo. "
    )
    result.notes.append(
        f"Outputs ({a.shape}): reference vs ours max abs difference {_diff(a, b)}. Against a "
        f"prediction of the whole image in one call (no tiling): reference {_diff(a, whole)}, "
        f"ours {_diff(b, whole)}. "
        + tiling
        + "The reference centres every tile on its inner region and reflect-pads beyond the "
        "sample border (see docs/compatibility.md)."
    )
    help_row, job_row = result.rows[1], result.rows[3]
    result.verdict = f"ours / reference: `--help` {help_row[3]}; {size}² tiled job {job_row[3]}"
    return result
