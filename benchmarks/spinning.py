"""onnxruntime's intra-op thread spinning on and off, for local blockwise prediction.

The onnx backend keeps onnxruntime's default (spinning) unless ``BIOIMAGEIO_ONNX_ALLOW_SPINNING``
says otherwise, and ``serve`` turns it off; this benchmark holds the numbers behind both.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from statistics import median
from typing import Any

import numpy as np

from benchmarks._common import (
    EXAMPLE_MODEL,
    Config,
    Result,
    interleaved,
    load_note,
    median_ratio,
    onnx_pipeline,
    random_image,
)
from benchmarks.models import build_small_conv2d


def _alternate(
    pipelines: dict[str, Any], x: np.ndarray[Any, Any], block: int, repeats: int
) -> tuple[dict[str, list[float]], dict[str, list[float]], float, int]:
    """Wall and CPU times per pipeline (alternating runs), the largest output difference
    between them, the blocks per run."""
    cpu: dict[str, list[float]] = {k: [] for k in pipelines}
    last: dict[str, np.ndarray[Any, Any]] = {}
    counted = [0]

    def count(done: int, total: int) -> None:
        counted[0] = total

    def job(kind: str) -> None:
        pipeline = pipelines[kind]
        started = time.process_time()
        out = pipeline.predict_sample_with_fixed_blocking(
            pipeline.digest(x, axes="bcyx"),
            {str(pipeline.shape.inputs[0].id): {"y": block, "x": block}},
            on_progress=count,
        )
        cpu[kind].append(time.process_time() - started)
        last[kind] = np.asarray(next(iter(out.members.values())).data)

    times = interleaved({k: functools.partial(job, k) for k in pipelines}, repeats)
    cpu = {k: v[1:] for k, v in cpu.items()}  # without the warm-up round
    diff = float(np.abs(last["spinning"] - last["sleeping"]).max())
    return times, cpu, diff, counted[0]


@contextlib.contextmanager
def _busy_process(busy: bool) -> Iterator[None]:
    """With ``busy``, another process that keeps one core busy meanwhile."""
    if not busy:
        yield
        return
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        yield
    finally:
        process.kill()
        process.wait()


def onnx_spinning(cfg: Config) -> Result:
    result = Result(
        title="17. onnxruntime thread spinning (local prediction)",
        description=(
            "The same blockwise prediction with onnxruntime's idle intra-op threads spinning "
            "(busy-waiting for the next operator: onnxruntime's default, kept by the onnx "
            "backend) and sleeping (`BIOIMAGEIO_ONNX_ALLOW_SPINNING=0`, what `serve` sets); two "
            "pipelines, runs alternate; 2 threads per session. Each case runs twice: as it is, "
            "and with another process beside it that keeps one core busy (as a server's request "
            "threads or its clients, or another job, would). CPU = the process's CPU time per "
            "run (all threads)."
        ),
        columns=[
            "model", "input", "block", "blocks/run", "beside", "spinning (s)", "sleeping (s)",
            "sleeping / spinning (median ratio)", "CPU spinning (s)", "CPU sleeping (s)",
            "max abs diff",
        ],
        goal=(
            "numbers for the defaults: spinning where a prediction has the cores to itself, "
            "sleeping where other work needs them (a server)"
        ),
    )  # fmt: skip
    small = build_small_conv2d(cfg.work_dir / "small_conv2d_spinning")
    cases = [
        ("tiny U-Net", EXAMPLE_MODEL, cfg.pick(1024, 2048), 512),
        ("tiny U-Net", EXAMPLE_MODEL, cfg.pick(1024, 2048), 256),
        ("small_conv2d", small, cfg.pick(256, 512), 32),
    ]
    load_before = os.getloadavg()[0]
    ratios: dict[bool, list[float]] = {False: [], True: []}
    for name, model, side, block in cases:
        x = random_image((1, 1, side, side))
        pipelines = {"spinning": onnx_pipeline(model, True), "sleeping": onnx_pipeline(model, False)}
        try:
            for busy in (False, True):
                with _busy_process(busy):
                    times, cpu, diff, blocks = _alternate(pipelines, x, block, max(cfg.repeats, 5))
                ratio = median_ratio(times["sleeping"], times["spinning"])
                ratios[busy].append(ratio)
                result.rows.append(
                    (
                        name, f"{side}²", f"{block}²", blocks,
                        "a busy process" if busy else "nothing", median(times["spinning"]),
                        median(times["sleeping"]), f"{ratio:.2f}", median(cpu["spinning"]),
                        median(cpu["sleeping"]), diff,
                    )
                )  # fmt: skip
        finally:
            for pipeline in pipelines.values():
                pipeline.close()

    def listed(values: list[float]) -> str:
        return ", ".join(f"{r:.2f}" for r in values)

    result.verdict = (
        f"time sleeping / spinning: {listed(ratios[False])} alone, {listed(ratios[True])} "
        "beside a busy process"
    )
    result.notes.append(
        load_note(load_before, "other processes of this shared machine count as well")
        + ". Below 1: sleeping threads are faster."
    )
    return result


__all__ = ["onnx_spinning"]
