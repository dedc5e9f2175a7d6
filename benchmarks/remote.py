"""Remote prediction over loopback (`bioimageio-run serve`) against local prediction.

* ``remote_overhead``: a 2048² image predicted blockwise by the same pipeline, once with a local
  onnx adapter and once with the ``remote`` adapter talking to a server on 127.0.0.1 (the same
  backend, the same threads); runs alternate; overhead = median of per-round ratios − 1, and per
  block = (median remote − median local) / blocks.
* ``remote_throughput``: forward calls per second with 1, 2, 4 and 8 clients at once (threads of
  this process, each with its own connection) on one loaded model, for a small and a larger
  block; the server runs one model's calls one at a time, so more clients raise throughput only
  by overlapping transfer and (de)serialisation with computing.
"""

from __future__ import annotations

import functools
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from benchmarks._common import (
    EXAMPLE_MODEL,
    Config,
    Result,
    bench_env,
    environ,
    fastest_ratio,
    interleaved,
    load_note,
    median_ratio,
    onnx_pipeline,
    random_image,
)

PUBLISHED_MODEL = (
    Path(__file__).resolve().parents[2]
    / "shared" / "conformance" / "models" / "unet2d_nuclei_broad" / "bioimageio.yaml"
)  # fmt: skip
"""A published model of realistic size, read from ../shared when present (never copied here)."""

OVERHEAD_GOAL = 0.10


def _server(cfg: Config, store: Path, threads: int | None = None) -> Any:
    from bioimageio_core.server.testing import ServerProcess

    env = bench_env(threads or cfg.threads)
    env["BIOIMAGEIO_CACHE_PATH"] = str(cfg.work_dir / "server-cache")
    return ServerProcess(store=store, env=env)


def _onnx_only(description: Path, work_dir: Path) -> Path:
    """A copy of a model folder whose description keeps only its onnx weights (the others may
    be URLs, and uploading a model to the server packages every file it names)."""
    import shutil

    import yaml

    folder = work_dir / f"{description.parent.name}-onnx"
    shutil.copytree(description.parent, folder, dirs_exist_ok=True)
    data = yaml.safe_load(description.read_text())
    onnx = dict(data["weights"]["onnx"])
    onnx.pop("parent", None)
    data["weights"] = {"onnx": onnx}
    copy = folder / description.name
    copy.chmod(0o644)
    copy.write_text(yaml.safe_dump(data, sort_keys=False))
    return copy


def _blockwise(
    pipeline: Any, x: np.ndarray[Any, Any], block: int, batch: int, counted: list[int]
) -> np.ndarray[Any, Any]:
    """Predict ``x`` in blocks of ``block``² (``batch`` per call); the block count goes to
    ``counted[0]``."""

    def count(done: int, total: int) -> None:
        counted[0] = total

    out = pipeline.predict_sample_with_fixed_blocking(
        pipeline.digest(x, axes="bcyx"),
        {"raw": {"y": block, "x": block}},
        batch_size=batch,
        on_progress=count,
    )
    return np.asarray(out.members["probability"].data)


def _counted_requests(pipeline: Any, run: Callable[[], object]) -> tuple[int, int]:
    """The forward calls and requests the server counted for ``pipeline``'s model during
    ``run()``."""
    client = pipeline.adapter.client
    key = pipeline.adapter.remote.key

    def counts() -> tuple[int, int]:
        [model] = [m for m in client.info().raw["models"] if m["model"] == key]
        return int(model["calls"]), int(model["requests"])

    calls, requests = counts()
    run()
    calls_after, requests_after = counts()
    return calls_after - calls, requests_after - requests


def _clients(
    url: str, key: str, x: np.ndarray[Any, Any], n: int, seconds: float
) -> tuple[list[float], list[float], float]:
    """``n`` clients calling ``key`` for ``seconds``: the latency of every call, its share
    outside the server (latency − the server's ``Server-Timing``), the wall time."""
    from bioimageio_core.remote import ServerClient

    axes = {"raw": ["batch", "channel", "y", "x"]}
    latencies: list[float] = []
    transport: list[float] = []
    lock = threading.Lock()
    ready = threading.Barrier(n + 1)
    stop = [0.0]

    def work() -> None:
        with ServerClient(url) as client:
            client.predict(key, {"raw": x}, axes)  # connect outside the timing
            ready.wait()
            while time.perf_counter() < stop[0]:
                t0 = time.perf_counter()
                client.predict(key, {"raw": x}, axes)
                latency = time.perf_counter() - t0
                with lock:
                    latencies.append(latency)
                    transport.append(latency - client.last_timing.get("server", 0.0) / 1e3)

    threads = [threading.Thread(target=work) for _ in range(n)]
    for t in threads:
        t.start()
    stop[0] = time.perf_counter() + seconds
    started = time.perf_counter()
    ready.wait()
    for t in threads:
        t.join()
    return latencies, transport, time.perf_counter() - started


def _percent(cell: object) -> float:
    return float(str(cell).rstrip("%"))


def _measure(
    result: Result,
    url: str,
    name: str,
    model: Path,
    cases: list[tuple[int, int, int, bool]],
    x: np.ndarray[Any, Any],
    repeats: int,
) -> None:
    """Rows of benchmark 8 for ``model`` on the server at ``url`` (all cases with the server's
    number of model threads)."""
    from bioimageio_core import create_prediction_pipeline

    threads = cases[0][0]
    with environ(BIOIMAGEIO_ONNX_INTRA_OP_THREADS=str(threads)):
        local = onnx_pipeline(model, spinning=False)  # as `serve` runs it
        spinning = onnx_pipeline(model, spinning=True)  # the local default
    remote = create_prediction_pipeline(model, weights_format="onnx", server=url)
    with environ(BIOIMAGEIO_REMOTE_REQUEST_BYTES="1"):
        single = create_prediction_pipeline(model, weights_format="onnx", server=url)
    with local, spinning, remote, single:
        for _, block, batch, one_per_request in cases:
            counted: list[int] = [0]
            chosen = single if one_per_request else remote
            jobs = {
                "local": functools.partial(_blockwise, local, x, block, batch, counted),
                "spinning": functools.partial(_blockwise, spinning, x, block, batch, counted),
                "remote": functools.partial(_blockwise, chosen, x, block, batch, counted),
            }
            reference = jobs["local"]()
            diff = float(np.abs(reference - jobs["spinning"]()).max())
            calls, requests = _counted_requests(chosen, jobs["remote"])
            diff = max(diff, float(np.abs(reference - jobs["remote"]()).max()))
            times = interleaved(jobs, max(repeats, 7))
            ratio = median_ratio(times["remote"], times["local"]) - 1
            fastest = fastest_ratio(times["remote"], times["local"]) - 1
            vs_spinning = fastest_ratio(times["remote"], times["spinning"]) - 1
            per_block = (min(times["remote"]) - min(times["local"])) / counted[0] * 1e3
            per_request = "1 (one per request)" if one_per_request else f"{calls / requests:.3g}"
            result.rows.append(
                (
                    name, threads, "×".join(map(str, x.shape[2:])), f"{block}²", batch,
                    counted[0], per_request, median(times["local"]), median(times["remote"]),
                    f"{ratio:+.1%}", f"{fastest:+.1%}", per_block, median(times["spinning"]),
                    f"{vs_spinning:+.1%}", diff,
                )
            )  # fmt: skip


def remote_overhead(cfg: Config) -> Result:

    result = Result(
        title="8. Remote prediction overhead (loopback server)",
        description=(
            "One image, blockwise through `PredictionPipeline."
            "predict_sample_with_fixed_blocking`, with the project's tiny U-Net (a few ms of "
            "model per 256² block: the worst case for a fixed cost per call) and, when "
            "../shared/conformance is present, the published unet2d_nuclei_broad (onnx, fixed "
            "512² input, halo 32): a local adapter vs. the `remote` adapter and a "
            "`bioimageio-run serve` process on 127.0.0.1 with the same backend and threads. "
            "Statistics, preprocessing, tiling, stitching and postprocessing run in the client "
            "in both cases; remote adds the `.npz` encoding and decoding on both sides and an "
            "HTTP round trip per request, and keeps two requests in flight (the next one "
            "travels while the server computes one and the client stitches the last). A "
            "request holds consecutive forward calls up to 4 MiB of input (the default of "
            "`BIOIMAGEIO_REMOTE_REQUEST_BYTES`; 'calls per request' is what the server "
            "counted); rows with 1 call per request set it to 1, as a request per call. "
            "onnxruntime's threads do not spin on either side (`serve`'s default; set here for "
            "the local adapter), so the ratio measures the remote path, not the thread setting "
            "(benchmark 17); the last columns compare remote with a local adapter at the local "
            "default (spinning threads) too. The goal is judged on the default grouping. "
            "Runs alternate, at least 7 rounds; overhead = "
            "median of per-round ratios − 1, and the ratio of the fastest runs (min/min) − 1, "
            "which other processes on this shared machine disturb least: the goal is judged on "
            "it. Per block = (fastest remote − fastest local) / blocks. Client and server share "
            "this machine's 2 cores: with the model on 2 threads (local and on the server) "
            "everything competes for them; with the model on 1 thread (both sides) one core is "
            "left to the rest, as when client and server are two machines."
        ),
        columns=[
            "model",
            "model threads",
            "input",
            "block",
            "batch",
            "blocks",
            "calls per request",
            "local (s)",
            "remote (s)",
            "overhead (median ratio)",
            "overhead (min/min)",
            "overhead per block (ms)",
            "local, spinning threads (s)",
            "vs spinning local (min/min)",
            "max abs diff",
        ],
        goal=f"overhead ≤ {OVERHEAD_GOAL:.0%} of local prediction on loopback",
    )
    shape = cfg.pick((1, 1, 512, 512), (1, 1, 2048, 2048))
    # (threads of the model, block, batch, one call per request)
    tiny_cases = [
        (cfg.threads, 256, 1, True), (cfg.threads, 256, 1, False), (cfg.threads, 256, 8, False),
        (cfg.threads, 512, 1, False), (cfg.threads, 512, 4, False), (1, 256, 1, False),
        (1, 512, 1, False),
    ]  # fmt: skip
    if cfg.quick:
        tiny_cases = [tiny_cases[0], tiny_cases[1], tiny_cases[5]]
    models: list[tuple[str, Path, list[tuple[int, int, int, bool]]]] = [
        ("tiny U-Net", EXAMPLE_MODEL, tiny_cases)
    ]
    if PUBLISHED_MODEL.exists():
        published = _onnx_only(PUBLISHED_MODEL, cfg.work_dir)
        cases = [(cfg.threads, 512, 1, True), (cfg.threads, 512, 1, False), (1, 512, 1, False)]
        models.append(("unet2d_nuclei_broad", published, cases))
    x = random_image(shape)
    load_before = os.getloadavg()[0]
    for threads in sorted({c[0] for _, _, cases in models for c in cases}, reverse=True):
        with tempfile.TemporaryDirectory() as store, _server(cfg, Path(store), threads) as server:
            for name, model, cases in models:
                chosen_cases = [c for c in cases if c[0] == threads]
                if chosen_cases:
                    _measure(result, server.url, name, model, chosen_cases, x, cfg.repeats)
    single = [r for r in result.rows if str(r[6]).startswith("1 (")]
    grouped = [r for r in result.rows if r not in single]  # the default: calls grouped
    met = [r for r in grouped if _percent(r[10]) / 100 <= OVERHEAD_GOAL]
    if any(row[-1] != 0.0 for row in result.rows):
        result.verdict = (
            f"outputs differ from local prediction (max abs diff {max(r[-1] for r in result.rows)})"
        )
    else:
        parts = []
        for threads in dict.fromkeys(int(r[1]) for r in grouped):
            per_model = []
            for name in dict.fromkeys(str(r[0]) for r in grouped if r[1] == threads):
                rows = [r for r in grouped if r[0] == name and r[1] == threads]
                overheads = [_percent(r[10]) for r in rows]
                alone = [_percent(r[10]) for r in single if r[0] == name and r[1] == threads]
                per_model.append(
                    f"{name} {min(overheads):+.1f}% to {max(overheads):+.1f}%"
                    + (f" (one call per request: {alone[0]:+.1f}%)" if alone else "")
                )
            parts.append(f"model on {threads} thread(s): {', '.join(per_model)}")
        result.verdict = (
            f"goal met in {len(met)} of {len(grouped)} cases with the default grouping "
            f"({'; '.join(parts)}); outputs equal local ones bit for bit"
        )
    result.notes.append(
        load_note(
            load_before,
            "other processes compete with both sides; above the core count the ratios mostly "
            "measure them",
        )
        + "."
    )
    result.notes.append(
        "What a forward call costs beyond the model (benchmark 9, 'outside the server'): the "
        "client's `.npz` encoding and decoding (about 0.2 and 0.07 ms per MB), the HTTP request "
        "(`http.client`, one kept-alive connection per thread), uvicorn's parsing (h11) and "
        "the hand-over to a worker thread and back on the server, and the loopback transfer. "
        "Several calls per request pay the HTTP part once; two requests in flight hide most "
        "of the rest behind the server's compute and the client's stitching. What shows is "
        "the CPU time both sides spend on it, taken from the model when client, server and "
        "other processes share the cores (the rows with the model on 2 threads); with the "
        "model on one thread, a core is left to the client and to the server's HTTP work, as "
        "when the server runs on a machine of its own."
    )
    return result


def remote_throughput(cfg: Config) -> Result:
    from bioimageio_core import load_description
    from bioimageio_core.remote import ModelRef, ServerClient
    from bioimageio_core.remote.package import upload_package

    result = Result(
        title="9. Remote prediction throughput (several clients)",
        description=(
            "Forward calls per second on one model loaded in a loopback server, with N "
            "clients sending calls at once (threads of one process, a connection each), for a "
            "96² block (the model's smallest input: mostly transfer and HTTP) and a 256² block "
            "(mostly computing). Latency = median time of one call as a client sees it; outside "
            "the server = latency minus the time the server reports (`Server-Timing`, which "
            "includes waiting behind other clients' calls): the HTTP round trip and the client's "
            "encoding and decoding. The server runs one model's calls one at a time. Each client "
            "waits for its answer before it sends the next call (no calls in flight)."
        ),
        columns=[
            "block", "clients", "calls", "calls/s", "median latency (ms)",
            "outside the server (ms)", "vs 1 client",
        ],
    )
    seconds = cfg.pick(2.0, 6.0)
    descr = load_description(EXAMPLE_MODEL, perform_io_checks=False)
    with tempfile.TemporaryDirectory() as store, _server(cfg, Path(store)) as server:
        with ServerClient(server.url) as client, upload_package(descr) as package:
            sha = client.ensure_package(package)
            key = client.load_model(ModelRef(package=sha), weights_format="onnx").key
        for side in (96, 256):
            x = random_image((1, 1, side, side))
            base = 0.0
            for n in (1, 2, 4, 8):
                latencies, transport, wall = _clients(server.url, key, x, n, seconds)
                rate = len(latencies) / wall
                base = base or rate
                result.rows.append(
                    (
                        f"{side}²", n, len(latencies), rate, median(latencies) * 1e3,
                        median(transport) * 1e3, f"{rate / base:.2f}×",
                    )
                )
    best = {r[0]: max(float(x[3]) for x in result.rows if x[0] == r[0]) for r in result.rows}
    result.verdict = "; ".join(f"{b}: up to {v:.0f} calls/s" for b, v in best.items())
    return result


__all__ = ["remote_overhead", "remote_throughput"]
