"""Shared helpers of the benchmark suite: timing, subprocess measurements, results, machine info.

Timings on a shared machine are noisy, so every comparison here is a ratio of two things measured
in the same run, alternating (A B A B …), summarised by medians.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_MODEL = ROOT / "examples" / "tiny-nuclei-unet" / "rdf.yaml"
EXAMPLE_DIR = EXAMPLE_MODEL.parent


@dataclass(frozen=True)
class Config:
    """Settings every benchmark reads: ``quick`` shrinks sizes and repeats for a smoke run."""

    quick: bool
    threads: int
    repeats: int
    work_dir: Path
    reference: bool = False

    def pick(self, quick: Any, full: Any) -> Any:
        return quick if self.quick else full


@dataclass
class Result:
    """One benchmark's outcome, rendered as a section of ``docs/benchmarks.md``."""

    title: str
    description: str
    columns: Sequence[str]
    rows: list[Sequence[Any]] = field(default_factory=list)
    goal: str = ""
    verdict: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def interleaved(
    runs: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Wall times of each callable, run in alternation ``repeats`` times after ``warmup`` rounds."""
    for _ in range(warmup):
        for fn in runs.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(repeats):
        # alternate the order too, so that neither side always runs on a warmer cache
        order = list(runs.items()) if i % 2 == 0 else list(reversed(runs.items()))
        for name, fn in order:
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def median_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """Median of the per-round ratios (rounds are paired by position)."""
    return median(a / b for a, b in zip(numerator, denominator, strict=True))


def fastest_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """Ratio of the fastest runs (min/min): what other processes on a shared machine disturb
    least."""
    return min(numerator) / min(denominator)


def random_image(shape: tuple[int, ...], seed: int = 1) -> np.ndarray[Any, Any]:
    """A reproducible float32 image in [0, 1)."""
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def load_note(before: float, meaning: str) -> str:
    """A result note: the machine's 1-minute load average ``before`` a benchmark and now, and
    ``meaning``, what it says about the numbers (in parentheses)."""
    return (
        f"Load average of the machine (1 min) before and after: {before:.1f}, "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores ({meaning})"
    )


SPINNING_ENV = "BIOIMAGEIO_ONNX_ALLOW_SPINNING"


@contextlib.contextmanager
def environ(**values: str) -> Iterator[None]:
    """Environment variables set for the ``with`` block (settings are read when used)."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def onnx_pipeline(model: Path, spinning: bool) -> Any:
    """A local onnx prediction pipeline whose onnxruntime threads spin or not (the onnx
    backend reads ``BIOIMAGEIO_ONNX_ALLOW_SPINNING`` when it creates the session)."""
    from bioimageio_core import create_prediction_pipeline

    with environ(**{SPINNING_ENV: "1" if spinning else "0"}):
        return create_prediction_pipeline(model, weights_format="onnx", devices=["cpu"])


@dataclass(frozen=True)
class ProcessRun:
    """Wall time and peak resident memory of one child process."""

    seconds: float
    peak_mb: float
    returncode: int
    output: str


_LAUNCHER = """
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
rc = subprocess.run(sys.argv[2:], stdout=sys.stdout, stderr=subprocess.STDOUT).returncode
seconds = time.perf_counter() - t0
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(sys.argv[1], "w") as f:
    json.dump({"seconds": seconds, "peak_kb": peak_kb, "returncode": rc}, f)
"""
"""Runs the measured command as its child. A process forked from a large parent inherits the
parent's peak RSS (Linux keeps the high-water mark across exec), so the command is started from
this small launcher instead of from the benchmark process."""


def run_process(
    args: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> ProcessRun:
    """Run ``args`` to completion: wall time and peak RSS (``getrusage`` of the launcher's children)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        launcher = [sys.executable, "-c", _LAUNCHER, str(report), *args]
        proc = subprocess.run(launcher, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        out.seek(0)
        text = out.read().decode(errors="replace")
        if not report.exists():
            raise RuntimeError(f"the launcher failed ({proc.returncode}):\n{text[-2000:]}")
        data = json.loads(report.read_text())
    return ProcessRun(data["seconds"], data["peak_kb"] / 1024, data["returncode"], text)


def bench_env(threads: int) -> dict[str, str]:
    """Environment for child processes: the same thread settings as the parent's measurements."""
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        BIOIMAGEIO_ONNX_INTRA_OP_THREADS=str(threads),
    )
    return env


def set_threads(threads: int) -> None:
    """Thread settings of this process (torch; onnxruntime sessions take them per session)."""
    os.environ["BIOIMAGEIO_ONNX_INTRA_OP_THREADS"] = str(threads)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass


def onnx_session(path: Path, threads: int) -> Any:
    """An onnxruntime session with the options the onnx backend uses."""
    import onnxruntime as ort  # type: ignore[import-untyped]

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    spinning = os.environ.get(SPINNING_ENV, "").strip().lower()
    if spinning:  # as the onnx backend: onnxruntime's default unless set
        options.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if spinning in ("1", "true", "yes", "on") else "0"
        )
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


REFERENCE_CLI_ENV = "BENCH_REFERENCE_CLI"


def reference_cli() -> str | None:
    """The reference's ``bioimageio`` command: ``$BENCH_REFERENCE_CLI`` (e.g. from a separate
    environment, so that its dependencies cannot change ours), else next to this interpreter."""
    import shutil

    given = os.environ.get(REFERENCE_CLI_ENV)
    if given:
        return given if Path(given).exists() else None
    return shutil.which("bioimageio", path=str(Path(sys.executable).parent))


def reference_versions() -> str:
    """Versions of bioimageio.core / bioimageio.spec behind :func:`reference_cli`."""
    cli = reference_cli()
    if cli is None:
        return "not installed"
    python = Path(cli).parent / "python"
    code = "from importlib.metadata import version as v; print(v('bioimageio.core'), v('bioimageio.spec'), v('pydantic'))"
    try:
        out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
        core, spec, pydantic = out.stdout.split()
    except (OSError, ValueError, subprocess.SubprocessError):
        return f"{cli} (version unknown)"
    return f"bioimageio.core {core}, bioimageio.spec {spec}, pydantic {pydantic} ({cli})"


def machine_info() -> dict[str, str]:
    return {
        "CPU": cpu_model(),
        "cores (os.cpu_count)": str(os.cpu_count()),
        "OS": platform.platform(),
        "Python": sys.version.split()[0],
        "numpy": _version("numpy"),
        "torch": _version("torch"),
        "onnxruntime": _version("onnxruntime"),
        "bioimageio-run": _version("bioimageio-run"),
        "reference implementation": reference_versions(),
    }


def fmt(value: Any) -> str:
    """Table cell text: floats with sensible precision."""
    if isinstance(value, float):
        if value == 0 or abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        if abs(value) >= 0.01:
            return f"{value:.3f}"
        return f"{value:.2e}"
    return str(value)
