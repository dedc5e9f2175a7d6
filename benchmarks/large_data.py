"""Out-of-core and distributed prediction (benchmarks 11–16).

* 11 memory: peak RSS of out-of-core prediction over three volume sizes, minus what the process
  holds after loading the model: O(batch × block), independent of the volume;
* 12 throughput: out-of-core vs in-memory on the same volume (zarr in, zarr out);
* 13 workers: block throughput of 1 vs 2 dask workers with one thread each;
* 14 task overhead: what a dask task costs beyond the block it runs;
* 15 scaling: a 100 GB volume on 1, 8 and 64 workers, on paper, from the measurements above;
* 16 large volume (only with ``--only large_volume``): a volume of several GB with
  ``--workers 2``, killed, resumed, compared with the in-memory result.

The model is ``light3d`` (``benchmarks/models.py``, onnx weights): per-sample
zero-mean-unit-variance normalisation (so a statistics pass precedes prediction), two 3×3×3
convolutions, sigmoid.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from benchmarks._common import (
    ROOT,
    Config,
    Result,
    bench_env,
    environ,
    median_ratio,
    run_process,
)
from benchmarks.models import build_light3d, build_small_conv2d

MEASURED = "large_data_measurements.json"
"""Numbers the scaling model (benchmark 15) reads from the benchmarks before it."""


def _model(cfg: Config) -> Path:
    folder = cfg.work_dir / "light3d"
    path = folder / "rdf.yaml"
    return path if path.exists() else build_light3d(folder)


def _side(cfg: Config) -> int:
    return int(cfg.pick(256, 512))


def _blocksize(cfg: Config) -> int:
    """Blocksize parameter: 64³ blocks quick, 96³ full (32 + 8n; halo 4)."""
    return int(cfg.pick(4, 8))


def write_volume(path: Path, mb: float, side: int, seed: int = 0) -> tuple[int, ...]:
    """A float32 zarr volume of about ``mb`` MiB (``z × side × side``), written slab by slab."""
    from bioimageio_core.io import open_output_array

    z = max(8, round(mb * 2**20 / (4 * side * side)))
    shape = (z, side, side)
    if path.exists():
        shutil.rmtree(path)
    rng = np.random.default_rng(seed)
    slab = 32
    with open_output_array(path, shape, "float32", "zyx", chunks=(64, 128, 128)) as out:
        for z0 in range(0, z, slab):
            n = min(slab, z - z0)
            data = rng.standard_normal((n, side, side), dtype=np.float32) * 40 + 100 + z0 % 17
            out.write_block((slice(z0, z0 + n),), data)
    return shape


def _record(cfg: Config, **values: Any) -> None:
    path = cfg.work_dir / MEASURED
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(values)
    path.write_text(json.dumps(data))


def _recorded(cfg: Config) -> dict[str, Any]:
    path = cfg.work_dir / MEASURED
    return json.loads(path.read_text()) if path.exists() else {}


# --- 10: memory -----------------------------------------------------------------------------

_MEMORY_JOB = r"""
import json, re, sys, time
from pathlib import Path
from bioimageio_core.pipeline import create_prediction_pipeline
from bioimageio_core.prediction import predict

model, warm, volume, out, n, mode = sys.argv[1:7]

def hwm():
    return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024

with create_prediction_pipeline(model, weights_format="onnx", devices=["cpu"]) as pp:
    predict(model=pp, inputs=warm, save_output_path=out + ".warm.zarr", blocksize_parameter=int(n),
            out_of_core=mode == "out-of-core")
    base, t0 = hwm(), time.perf_counter()
    predict(model=pp, inputs=volume, save_output_path=out, blocksize_parameter=int(n),
            out_of_core=mode == "out-of-core")
    print(json.dumps({"base": base, "peak": hwm(), "seconds": time.perf_counter() - t0}))
"""


def _model_and_volume(cfg: Config, name: str, mb: float) -> tuple[Path, int, Path, tuple[int, ...]]:
    """The light3d model, its blocksize parameter, and a zarr volume of ``mb`` MB written to
    ``name`` in the work folder, with its shape."""
    volume = cfg.work_dir / name
    shape = write_volume(volume, mb, _side(cfg))
    return _model(cfg), _blocksize(cfg), volume, shape


def _memory_run(cfg: Config, model: Path, warm: Path, volume: Path, mode: str) -> dict[str, float]:
    out = cfg.work_dir / f"mem-{mode}-{volume.stem}.zarr"
    run = run_process(
        [sys.executable, "-c", _MEMORY_JOB, str(model), str(warm), str(volume), str(out),
         str(_blocksize(cfg)), mode],
        env={**bench_env(cfg.threads), "PYTHONPATH": str(ROOT)},
        cwd=cfg.work_dir,
    )  # fmt: skip
    if run.returncode != 0:
        raise RuntimeError(f"memory job failed:\n{run.output[-3000:]}")
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(Path(str(out) + ".warm.zarr"), ignore_errors=True)
    result: dict[str, float] = json.loads(run.output.strip().splitlines()[-1])
    return result


def outofcore_memory(cfg: Config) -> Result:
    """Benchmark 11."""
    model = _model(cfg)
    side, n = _side(cfg), _blocksize(cfg)
    block = 32 + 8 * n
    sizes = cfg.pick((16, 48, 128), (256, 1024, 3072))
    result = Result(
        title="11. Out-of-core memory vs volume size",
        description=(
            f"light3d (onnx) on float32 zarr volumes of z×{side}×{side}, blocks of {block}³ "
            "(halo 4), batch size 1, one fresh process per run. 'after warm-up' is the peak RSS "
            "once the model is loaded and a small volume was predicted the same way; the "
            "increase is what predicting the large volume holds beyond it. Out-of-core: the "
            "input is read and the output written block by block (statistics in a pass over "
            "segments first); in memory (the smaller volumes): the whole input is read, "
            "normalised and predicted into a whole output."
        ),
        columns=["volume (MB)", "mode", "after warm-up (MB)", "peak (MB)", "increase (MB)", "increase / volume", "wall (s)"],
        goal="the out-of-core increase does not grow with the volume (O(batch × block))",
    )  # fmt: skip
    warm = cfg.work_dir / "warm.zarr"
    write_volume(warm, 2 * block**3 * 4 / 2**20, block, seed=9)
    increases = []
    for mb in sizes:
        volume = cfg.work_dir / f"volume{mb}.zarr"
        write_volume(volume, mb, side)
        modes = ["out-of-core"] + (["in memory"] if mb <= sizes[1] else [])
        for mode in modes:
            found = _memory_run(cfg, model, warm, volume, mode)
            increase = found["peak"] - found["base"]
            if mode == "out-of-core":
                increases.append(increase)
            result.rows.append(
                [mb, mode, found["base"], found["peak"], increase, f"{increase / mb:.2f}×", found["seconds"]]
            )  # fmt: skip
        shutil.rmtree(volume)
    shutil.rmtree(warm)
    flat = max(increases) <= 1.5 * min(increases) + 64
    result.verdict = (
        f"out-of-core increase {', '.join(f'{i:.0f}' for i in increases)} MB for "
        f"{', '.join(str(s) for s in sizes)} MB volumes: "
        + ("flat (independent of the volume)" if flat else "NOT flat")
    )
    _record(cfg, memory_increase_mb=max(increases), block=block)
    return result


# --- 11: throughput -----------------------------------------------------------------------------


def outofcore_throughput(cfg: Config) -> Result:
    """Benchmark 12."""
    mb = cfg.pick(48, 256)
    model, n, volume, shape = _model_and_volume(cfg, "throughput.zarr", mb)
    block = 32 + 8 * n
    warm = cfg.work_dir / "throughput-warm.zarr"
    write_volume(warm, 2 * block**3 * 4 / 2**20, block, seed=9)
    modes = ("out-of-core", "in memory")
    result = Result(
        title="12. Out-of-core vs in-memory throughput",
        description=(
            f"light3d (onnx, {cfg.threads} threads) on one float32 zarr volume of "
            f"{'×'.join(map(str, shape))} ({mb} MB), blocks of {block}³, zarr output. "
            "Out-of-core reads the blocks (the next ones in a background thread while the model "
            "runs; each zarr chunk decoded once), normalises each with the sample's statistics "
            "(computed first in passes over the volume, in as many threads as the process may "
            "use) and writes each block's chunks; in memory reads the whole volume, normalises "
            "it, predicts it and saves it. Two settings, the ways alternating in each: *one "
            "prediction per process* (what `bioimageio-run predict` does: a fresh process loads "
            "the model, predicts a small volume the same way to warm up, then the timed volume) "
            "and *repeated in one process* (the model loaded once; each way runs twice in a row "
            "and the second run is timed, so that each reuses the memory its own previous run "
            "left, as a loop over many volumes does), the latter also with the model on one "
            "thread, which leaves a core to reading, decoding and writing."
        ),
        columns=["setting", "mode", "median wall (s)", "MB/s (input)", "min wall (s)", "ratio (median of rounds)"],
        goal="out-of-core ≥ 0.95× the in-memory throughput",
    )  # fmt: skip
    load_before = os.getloadavg()
    fresh: dict[str, list[float]] = {m: [] for m in modes}
    for i in range(cfg.repeats):
        for mode in modes if i % 2 == 0 else modes[::-1]:
            fresh[mode].append(_memory_run(cfg, model, warm, volume, mode)["seconds"])
    repeated, equal = _repeated_in_process(cfg, model, volume, n, cfg.repeats, cfg.threads)
    one_thread, equal_1 = _repeated_in_process(cfg, model, volume, n, cfg.repeats, 1)
    equal = equal and equal_1
    ratios = {}
    settings = (
        ("one prediction per process", fresh),
        ("repeated in one process", repeated),
        ("repeated, the model on 1 thread", one_thread),
    )
    for setting, times in settings:
        ratios[setting] = median_ratio(times["in memory"], times["out-of-core"])
        for mode in modes:
            ts = times[mode]
            shown = f"{ratios[setting]:.2f}×" if mode == "out-of-core" else ""
            result.rows.append([setting, mode, median(ts), mb / median(ts), min(ts), shown])
    per_process, in_loop = ratios["one prediction per process"], ratios["repeated in one process"]
    spare_core = ratios["repeated, the model on 1 thread"]
    result.verdict = (
        f"out-of-core throughput {per_process:.2f}× in-memory with one prediction per process "
        f"(goal ≥ 0.95: {'met' if per_process >= 0.95 else 'MISSED'}), {in_loop:.2f}× repeated "
        f"in one process ({'met' if in_loop >= 0.95 else 'MISSED'}), {spare_core:.2f}× "
        f"repeated with a core left to reading and writing "
        f"({'met' if spare_core >= 0.95 else 'MISSED'}); outputs "
        f"{'bit-identical' if equal else 'DIFFER'}"
    )
    result.notes.append(
        f"Load average (1 min) before / after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} cores. Out-of-core does more work beside the model than in "
        "memory: the statistics pass decodes the volume once more, and each block is read, "
        "normalised and written on its own; on 2 cores that work competes with the model's two "
        "threads. In memory pays instead for allocating and touching the whole volume several "
        "times over (input, normalised copy, output), which a fresh process pays in full and a "
        "repeated run in one process partly reuses. With a core left beside the model (more "
        "cores than model threads, as on most workstations and cluster nodes), out-of-core's "
        "reading and writing run beside the model instead of competing with it."
    )
    _record(cfg, ooc_seconds=median(fresh["out-of-core"]), ooc_mb=mb)
    for p in (volume, warm):
        shutil.rmtree(p, ignore_errors=True)
    return result


def _repeated_in_process(
    cfg: Config, model: Path, volume: Path, n: int, rounds: int, threads: int
) -> tuple[dict[str, list[float]], bool]:
    """Wall times of each way, the model (on ``threads`` onnxruntime threads) loaded once in this
    process, each timed run preceded by an untimed one of the same way; and whether the two
    ways' outputs are equal."""
    from bioimageio_core.pipeline import create_prediction_pipeline
    from bioimageio_core.prediction import predict

    outputs = {"out-of-core": cfg.work_dir / "t-ooc.zarr", "in memory": cfg.work_dir / "t-mem.zarr"}
    times: dict[str, list[float]] = {m: [] for m in outputs}
    with environ(BIOIMAGEIO_ONNX_INTRA_OP_THREADS=str(threads)):
        pipeline = create_prediction_pipeline(model, weights_format="onnx", devices=["cpu"])
    with pipeline as pp:
        order = list(outputs)
        for i in range(rounds):
            for mode in order if i % 2 == 0 else order[::-1]:
                for timed in (False, True):
                    start = time.perf_counter()
                    predict(model=pp, inputs=str(volume), save_output_path=outputs[mode],
                            blocksize_parameter=n, out_of_core=mode == "out-of-core")  # fmt: skip
                    if timed:
                        times[mode].append(time.perf_counter() - start)
        equal = bool(np.array_equal(*(np.asarray(_load(p)) for p in outputs.values())))
    for p in outputs.values():
        shutil.rmtree(p, ignore_errors=True)
    return times, equal


def _load(path: Path) -> Any:
    from bioimageio_core.io import load_tensor

    return load_tensor(path).data


# --- 12: workers --------------------------------------------------------------------------------


def _worker_cpu(client: Any) -> float:
    """CPU seconds the worker processes of ``client`` have used so far, together."""
    return float(sum(client.run(time.process_time).values()))


def _cluster_rate(
    client: Any, model: Path, volume: Path, out: Path, n: int, blocks_per_task: int | None = None
) -> tuple[float, int, float, float]:
    """Blocks per second of the block phase of one prediction on ``client`` (timed from the
    first to the last progress report: statistics, probe and model loading excluded), the
    cores the workers used meanwhile (their CPU time / wall time) and the cores this process
    used (with a local cluster it holds the scheduler and the nannies besides the client).
    ``blocks_per_task``: None for the cluster's default tasks."""
    from bioimageio_core.prediction import predict

    marks: list[tuple[float, int, int, float, float]] = []

    def mark(done: int, total: int) -> None:
        if not marks or done == total:
            here = time.process_time()
            marks.append((time.perf_counter(), done, total, _worker_cpu(client), here))

    predict(model=model, inputs=str(volume), save_output_path=out, blocksize_parameter=n,
            weights_format="onnx", client=client, on_progress=mark,
            blocks_per_task=blocks_per_task)  # fmt: skip
    shutil.rmtree(out, ignore_errors=True)
    (t0, d0, total, c0, h0), (t1, d1, _, c1, h1) = marks[0], marks[-1]
    wall = t1 - t0
    return (d1 - d0) / wall, total, (c1 - c0) / wall, (h1 - h0) / wall


def workers(cfg: Config) -> Result:
    """Benchmark 13."""
    from bioimageio_core.execution.distributed import close_client, start_local_cluster

    mb = cfg.pick(32, 192)
    model, n, volume, shape = _model_and_volume(cfg, "workers.zarr", mb)
    result = Result(
        title="13. Workers: 1 vs 2 (one thread each)",
        description=(
            f"light3d (onnx) on {'×'.join(map(str, shape))} ({mb} MB zarr), blocks of "
            f"{32 + 8 * n}³, on a local dask cluster of 1 and of 2 worker processes with one "
            "thread each: every pool of a worker has one thread (onnxruntime, zarr's codecs; "
            "the block loop reads and writes in the task's thread, `bioimageio_core.threads`); "
            "both clusters are up, runs alternate. Throughput of the block phase (first to last "
            "progress report: model "
            "loading, the statistics pass and the dtype probe excluded); 'cores the workers got' "
            "is their CPU time over that wall time (2 would be two full cores), 'cores of the "
            "driver' the same for this process, which holds the scheduler, the nannies and the "
            "client. The clusters are what `--workers` starts (`start_local_cluster`: dask's "
            "profiler off, its health checks slowed, the workers' memory allocator as in any "
            "process) and the tasks the cluster default (up to 8 blocks, fewer towards the end). "
            "This machine has 2 cores shared with other work: the load average during the runs "
            "is noted."
        ),
        columns=["workers", "blocks", "median blocks/s", "per-round rates", "cores the workers got", "cores of the driver"],
        goal="2 workers ≥ 1.7× the throughput of 1",
    )
    one = start_local_cluster(1, threads=1)
    two = start_local_cluster(2, threads=1)
    rates: dict[int, list[float]] = {1: [], 2: []}
    cores: dict[int, list[float]] = {1: [], 2: []}
    driver: dict[int, list[float]] = {1: [], 2: []}
    load_before = os.getloadavg()
    try:
        total = 0
        for i in range(cfg.repeats + 1):  # the first round warms up (not counted)
            order = [(1, one), (2, two)] if i % 2 == 0 else [(2, two), (1, one)]
            for count, client in order:
                rate, total, used, here = _cluster_rate(
                    client, model, volume, cfg.work_dir / "w.zarr", n
                )
                if i:
                    rates[count].append(rate)
                    cores[count].append(used)
                    driver[count].append(here)
    finally:
        close_client(one, own_cluster=True)
        close_client(two, own_cluster=True)
    load_after = os.getloadavg()
    for count in (1, 2):
        result.rows.append(
            [count, total, median(rates[count]), ", ".join(f"{r:.2f}" for r in rates[count]),
             median(cores[count]), median(driver[count])]
        )  # fmt: skip
    speedup = median(b / a for a, b in zip(rates[1], rates[2], strict=True))
    result.verdict = (
        f"2 workers {speedup:.2f}× the throughput of 1 (goal ≥ 1.7) — "
        f"{'met' if speedup >= 1.7 else 'MISSED'}"
    )
    per_core = median(
        (r2 / c2) / (r1 / c1)
        for r1, c1, r2, c2 in zip(rates[1], cores[1], rates[2], cores[2], strict=True)
    )
    result.notes.append(
        f"Load average (1 min) before / after: {load_before[0]:.2f} / {load_after[0]:.2f} on "
        f"{os.cpu_count()} cores. Blocks per CPU second of the workers, 2 workers vs 1: "
        f"{per_core:.2f}× (1.0: a worker does its blocks as cheaply as a single one, i.e. the "
        "throughput scales with the cores the workers get; what they get depends on the "
        "machine's other load)."
    )
    voxels = (32 + 8 * n - 8) ** 3
    _record(cfg, rate_1=median(rates[1]), rate_2=median(rates[2]), inner_voxels=voxels)
    shutil.rmtree(volume)
    return result


# --- 13: task overhead --------------------------------------------------------------------------


def task_overhead(cfg: Config) -> Result:
    """Benchmark 14."""
    from bioimageio_core.execution.distributed import close_client, start_local_cluster
    from bioimageio_core.io import save_tensor
    from bioimageio_core.pipeline import create_prediction_pipeline
    from bioimageio_core.prediction import predict
    from bioimageio_core.tensor import Tensor

    model = build_small_conv2d(cfg.work_dir / "small_conv2d")
    size = cfg.pick(512, 1024)
    image = cfg.work_dir / "tasks.zarr"
    rng = np.random.default_rng(0)
    save_tensor(image, Tensor(rng.standard_normal((size, size), dtype=np.float32), ("y", "x")))
    n = 2  # 32² blocks, halo 4: a few µs of model per block
    result = Result(
        title="14. Scheduling overhead per task",
        description=(
            f"small_conv2d (onnx, one thread) on a {size}² zarr image in 32² blocks (one block per "
            "task): the block phase on a 1-worker dask cluster vs the same out-of-core prediction "
            "in this process; the difference per task is what dask and the task wrapper add (the "
            "worker reads its block, a forward call of a few µs, writes one chunk and records "
            "it in both cases). Also dask's own floor: a no-op task."
        ),
        columns=["run", "tasks", "median block phase (s)", "per task (ms)"],
        goal="well under the compute of a useful block (≥ 100 ms for 3D models)",
    )
    os.environ["BIOIMAGEIO_ONNX_INTRA_OP_THREADS"] = "1"
    local: list[float] = []
    remote: list[float] = []
    client = start_local_cluster(1, threads=1)
    try:
        with create_prediction_pipeline(model, weights_format="onnx", devices=["cpu"]) as pp:
            for i in range(cfg.repeats + 1):
                marks: list[tuple[float, int, int]] = []
                predict(model=pp, inputs=str(image), save_output_path=cfg.work_dir / "l.zarr",
                        blocksize_parameter=n, out_of_core=True,
                        on_progress=lambda d, t, m=marks: m.append((time.perf_counter(), d, t)))  # fmt: skip
                shutil.rmtree(cfg.work_dir / "l.zarr")
                tasks = marks[-1][2]
                if i:
                    local.append(marks[-1][0] - marks[0][0])
                rate, tasks, _, _ = _cluster_rate(
                    client, model, image, cfg.work_dir / "r.zarr", n, blocks_per_task=1
                )
                if i:
                    remote.append(tasks / rate)
        t0 = time.perf_counter()
        futures = client.map(_noop, range(2000), pure=False)
        client.gather(futures)
        noop = (time.perf_counter() - t0) / 2000
    finally:
        close_client(client, own_cluster=True)
        del os.environ["BIOIMAGEIO_ONNX_INTRA_OP_THREADS"]
    per_task = (median(remote) - median(local)) / tasks
    result.rows.append(["in this process (out-of-core)", tasks, median(local), 1000 * median(local) / tasks])
    result.rows.append(["1 dask worker", tasks, median(remote), 1000 * median(remote) / tasks])
    result.rows.append(["dask no-op task", 2000, noop * 2000, 1000 * noop])
    result.verdict = f"a task costs {1000 * per_task:.2f} ms more on the cluster than in this process"
    _record(cfg, task_overhead_s=per_task)
    shutil.rmtree(image)
    return result


def _noop(x: int) -> int:
    return x


# --- 14: scaling on paper -------------------------------------------------------------------------


def scaling(cfg: Config) -> Result:
    """Benchmark 15: the measurements of 11–14 applied to a 100 GB volume."""
    found = _recorded(cfg)
    result = Result(
        title="15. Scaling on paper: a 100 GB volume",
        description=(
            "What a 100 GB float32 volume (25·10⁹ voxels) with light3d in 96³ blocks (halo 4: "
            "88³ inner voxels per block, 1.33× the voxels read) would cost, from the numbers "
            "measured above on this machine. Per worker: the block rate of one worker with one "
            "thread (benchmark 13), the task overhead (14); reading and writing from the "
            "out-of-core run (12: its whole wall time per MB, compute included, so the IO "
            "share is an upper bound). Not measured here: the bandwidth of a shared file "
            "system (assumed 2 GB/s for reads and writes together), the network, the dask "
            "scheduler beyond 2 workers (it runs thousands of tasks per second, far more than "
            "needed), GPUs."
        ),
        columns=["workers", "blocks", "compute + overhead (h)", "statistics pass (h)", "storage bound (h)", "estimate (h)"],
        goal="a model to plan a cluster run, honest about its assumptions",
    )  # fmt: skip
    needed = ("rate_1", "task_overhead_s", "ooc_seconds", "ooc_mb")
    if not all(k in found for k in needed):
        result.verdict = "skipped: run benchmarks 12, 13 and 14 first (the default order does)"
        return result
    inner = 88**3
    blocks = 25e9 / inner
    per_block = 1 / found["rate_1"] * (inner / found.get("inner_voxels", inner))
    total_mb = 100e3
    read_rate = found["ooc_mb"] / found["ooc_seconds"]  # MB of input per second, all included
    bandwidth = 2000.0  # MB/s, assumed shared storage
    compute_1 = blocks * (per_block + found["task_overhead_s"]) / 3600
    stats_1 = total_mb / (read_rate * 4) / 3600  # one read pass, about 4× faster than predicting
    storage = 3 * total_mb / bandwidth / 3600  # statistics pass + read + write
    for w in (1, 8, 64):
        compute, stats = compute_1 / w, stats_1 / w
        result.rows.append([w, f"{blocks:.3g}", compute, stats, storage, max(compute + stats, storage)])
    result.verdict = (
        f"estimates in the table; beyond about {round((compute_1 + stats_1) / storage)} workers "
        "the assumed storage bandwidth, not compute, sets the time"
    )
    result.notes.append(
        f"Inputs of the model: {1 / per_block:.2f} blocks/s per worker (one thread, 96³ blocks, "
        f"scaled to 88³ inner voxels), {1000 * found['task_overhead_s']:.2f} ms per task, "
        f"{read_rate:.0f} MB/s of input for a whole out-of-core prediction in one process. "
        "Per-worker numbers assume each worker keeps one core as here; with a GPU per worker "
        "the compute column shrinks by the GPU's speed-up and storage becomes the limit sooner."
    )
    return result


# --- 15: the large volume (not in the default list) -----------------------------------------------


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants (MB)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


class _Sampler:
    """Peak resident memory of a process tree, sampled every 0.2 s in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss_mb(self.pid))
            time.sleep(0.2)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "bioimageio_core.cli", *args]


def large_volume(cfg: Config) -> Result:
    """Benchmark 16: several GB with --workers 2, killed and resumed, vs the in-memory result."""
    gb = float(os.environ.get("BENCH_LARGE_GB", cfg.pick(0.25, 3)))
    model = _model(cfg)
    n = 12  # 128³ blocks, halo 4
    volume = cfg.work_dir / "large.zarr"
    out = cfg.work_dir / "large-pred.zarr"
    t0 = time.perf_counter()
    shape = write_volume(volume, gb * 1024, 1024 if gb >= 1 else 512)
    written_s = time.perf_counter() - t0
    result = Result(
        title="16. A volume of several GB on 2 workers, killed and resumed",
        description=(
            f"light3d (onnx) on a float32 zarr volume of {'×'.join(map(str, shape))} "
            f"({gb:g} GiB), blocks of {32 + 8 * n}³, `bioimageio-run predict --workers 2 --resume` "
            "(2 worker processes, 1 thread each); the run is killed (SIGKILL to the command and "
            "its workers) once 40% of the output chunks are recorded, then run again with "
            "--resume, then compared with the "
            "in-memory prediction of the same volume (`predict(..., out_of_core=False)`). Peak "
            "memory: resident memory of the command and all its worker processes together, "
            "sampled every 0.2 s."
        ),
        columns=["run", "wall (s)", "blocks done / total", "peak RSS, all processes (MB)"],
        goal="bounded memory, a killed run resumed, equal to the in-memory result",
    )
    env = {**bench_env(1), "PYTHONPATH": str(ROOT)}
    args = _cli("predict", str(model), "-i", str(volume), "-o", str(out), "--blocksize", str(n),
                "--weights-format", "onnx", "--workers", "2", "--resume", "--overwrite")  # fmt: skip
    total_blocks = _blocks(shape, n)
    kill_at = float(os.environ.get("BENCH_KILL_AT", 0.4))  # share of the chunks recorded
    proc = subprocess.Popen(args, env=env, cwd=cfg.work_dir, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    sampler = _Sampler(proc.pid)
    t0 = time.perf_counter()
    killed = False
    while proc.poll() is None:
        if _leftover_record(cfg.work_dir, out.name) >= kill_at * total_blocks:
            os.killpg(proc.pid, signal.SIGKILL)  # the command and its worker processes
            proc.wait()
            killed = True
            break
        time.sleep(0.5)
    first_s, first_peak = time.perf_counter() - t0, sampler.stop()
    record = _leftover_record(cfg.work_dir, out.name)
    result.rows.append(["first run (killed)" if killed else "first run (finished)", first_s,
                        f"{record} chunks recorded / {total_blocks}", first_peak])  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, env=env, cwd=cfg.work_dir, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    sampler = _Sampler(proc.pid)
    output, _ = proc.communicate()
    resumed_s, resumed_peak = time.perf_counter() - t0, sampler.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"the resumed run failed:\n{output[-3000:]}")
    result.rows.append(["resumed (--resume)", resumed_s, f"{total_blocks} / {total_blocks}", resumed_peak])
    # the in-memory result, in a child process (its peak is the whole volume several times)
    check = cfg.work_dir / "inmemory.zarr"
    compare = subprocess.Popen(
        [sys.executable, "-c", _IN_MEMORY_JOB, str(model), str(volume), str(check), str(n), str(out)],
        env={**bench_env(2), "PYTHONPATH": str(ROOT)}, cwd=cfg.work_dir,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    sampler = _Sampler(compare.pid)
    t0 = time.perf_counter()
    text, _ = compare.communicate()
    memory_s, memory_peak = time.perf_counter() - t0, sampler.stop()
    if compare.returncode != 0:
        raise RuntimeError(f"the in-memory run failed:\n{text[-3000:]}")
    verdict = json.loads(text.strip().splitlines()[-1])
    result.rows.append(["in memory (one process, 2 threads)", memory_s, f"{total_blocks} / {total_blocks}", memory_peak])
    result.verdict = (
        f"{'killed after ' + format(first_s, '.0f') + ' s, ' if killed else ''}resumed: "
        f"{'equal to' if verdict['equal'] else 'DIFFERENT from'} the in-memory result "
        f"(max abs difference {verdict['max_diff']:g}); peak RSS of all processes "
        f"{max(first_peak, resumed_peak):.0f} MB out-of-core vs {memory_peak:.0f} MB in memory "
        f"for a {gb:g} GiB volume"
    )
    result.notes.append(
        f"Writing the input volume took {written_s:.0f} s. The resumed run skipped the tasks "
        "whose chunks the killed run had recorded; it redid the statistics pass and loaded the "
        "model on its fresh workers. Last lines of the resumed run:\n\n```\n"
        + "\n".join(output.strip().splitlines()[-6:]) + "\n```"
    )
    for p in (volume, out, check):
        shutil.rmtree(p, ignore_errors=True)
    return result


_IN_MEMORY_JOB = r"""
import json, sys
import numpy as np
from bioimageio_core.io import open_array
from bioimageio_core.prediction import predict
model, volume, target, n, streamed = sys.argv[1:6]
result = predict(model=model, inputs=volume, blocksize_parameter=int(n), weights_format="onnx",
                 out_of_core=False)
expected = result.members["out"].data
with open_array(streamed) as opened:
    z = opened.shape[2]
    equal, max_diff = True, 0.0
    for z0 in range(0, z, 64):
        got = opened.read_block((slice(None), slice(None), slice(z0, z0 + 64)))
        want = expected[:, :, z0 : z0 + 64]
        equal = equal and bool(np.array_equal(got, want))
        max_diff = max(max_diff, float(np.abs(got.astype("f8") - want).max()))
print(json.dumps({"equal": equal, "max_diff": max_diff}))
"""


def _blocks(shape: tuple[int, ...], n: int) -> int:
    inner = 32 + 8 * n - 8
    total = 1
    for s in shape:
        total *= -(-s // inner)
    return total


def _leftover_record(folder: Path, name: str) -> int:
    """Chunks recorded in the temporary output a killed run left (0 when none)."""
    for path in folder.iterdir():
        if path.name.startswith(".tmp-") and path.name.endswith(name):
            record = path / ".bioimageio_run_done"
            return len(list(record.iterdir())) if record.exists() else 0
    return 0

