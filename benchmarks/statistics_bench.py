"""Benchmark 5: percentile normalisation (``scale_range``) against ``numpy.percentile``."""

from __future__ import annotations

from statistics import median
from typing import Any

import numpy as np

from benchmarks._common import Config, Result, interleaved, median_ratio

LOW, HIGH, EPS = 1.0, 99.8, 1e-6


def _ours(x: np.ndarray[Any, Any]) -> Any:
    from bioimageio_core.ops import apply_ops, build_ops, required_measures
    from bioimageio_core.spec import ProcessingStep, ScaleRangeKwargs
    from bioimageio_core.stats import StatsCalculator
    from bioimageio_core.tensor import Tensor

    step = ProcessingStep(
        id="scale_range",
        kwargs=ScaleRangeKwargs(axes=("y", "x"), min_percentile=LOW, max_percentile=HIGH, eps=EPS),
    )
    ops = build_ops("raw", [step])
    members = {"raw": Tensor(x, ("batch", "channel", "y", "x"))}

    def run() -> np.ndarray[Any, Any]:
        # what the pipeline's preprocessing calls: statistics of the raw sample, then the ops
        stat = StatsCalculator(required_measures(ops)).update_and_get_all(members)
        return apply_ops(ops, members, stat)["raw"].data  # type: ignore[no-any-return]

    return run


def _numpy(x: np.ndarray[Any, Any]) -> Any:
    def run() -> np.ndarray[Any, Any]:
        lo, hi = np.percentile(x, [LOW, HIGH], axis=(2, 3), keepdims=True)
        return (x - lo) / (hi - lo + EPS)  # type: ignore[no-any-return]

    return run


def statistics(cfg: Config) -> Result:
    result = Result(
        title="5. Percentile normalisation",
        description=(
            f"`scale_range` (percentiles {LOW} / {HIGH} over y, x): a fresh `StatsCalculator` "
            "and `ops.apply_ops` (statistics + op, the calls the pipeline makes) vs. "
            "`numpy.percentile` + the same arithmetic; alternating runs."
        ),
        columns=["input", "dtype", "ours (s)", "numpy (s)", "ours / numpy", "max abs diff"],
        goal="no slower than numpy.percentile",
    )
    sizes = cfg.pick((1024, 2048), (2048, 4096))
    worst = 0.0
    worst_job = None
    for size in sizes:
        for dtype in ("float32", "uint16"):
            rng = np.random.default_rng(0)
            x = (rng.random((1, 1, size, size)) * 4000).astype(dtype)
            ours, ref = _ours(x), _numpy(x)
            times = interleaved({"ours": ours, "numpy": ref}, max(3, cfg.repeats), warmup=1)
            ratio = median_ratio(times["ours"], times["numpy"])
            if ratio > worst:
                worst, worst_job = ratio, (f"{size}² {dtype}", ours)
            diff = float(np.max(np.abs(np.asarray(ours(), dtype="float64") - ref())))
            result.rows.append(
                [
                    f"{size}²",
                    dtype,
                    median(times["ours"]),
                    median(times["numpy"]),
                    f"{ratio:.2f}×",
                    f"{diff:.1e}",
                ]
            )
    if worst > 1.05 and worst_job is not None:
        from benchmarks.tiling import profile_top

        result.notes.append(f"Profile (cProfile, own time) of ours, {worst_job[0]}:")
        result.notes += [f"- {row}" for row in profile_top(worst_job[1])]
    result.verdict = (
        f"{'met' if worst <= 1.05 else 'MISSED'}: at most {worst:.2f}× the time of numpy.percentile"
    )
    return result
