"""Prediction on a dask cluster: equal to one process bit for bit, statistics on the workers,
a dead worker's tasks retried, resumable, and the CLI's --workers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from pipeline_models import InputDef, OutputDef, conv_model, kernel

from bioimageio_core.cli import main
from bioimageio_core.errors import InputError
from bioimageio_core.execution import outofcore
from bioimageio_core.io import load_tensor, save_tensor
from bioimageio_core.io.staging import OutputNotice
from bioimageio_core.prediction import predict, predict_many
from bioimageio_core.tensor import Tensor

Array = np.ndarray[Any, Any]
SAMPLE_ZMUV = [{"id": "zero_mean_unit_variance", "kwargs": {"axes": ["y", "x"]}}]
DATASET_RANGE = [
    {
        "id": "scale_range",
        "kwargs": {"axes": ["batch", "y", "x"], "min_percentile": 2, "max_percentile": 99},
    }
]


def volume(y: int, x: int, seed: int = 0) -> Array:
    return (np.random.default_rng(seed).normal(size=(y, x)) * 25 + 60).astype("float32")


def _stored(tmp_path: Path, name: str, x: Array) -> str:
    save_tensor(tmp_path / name, Tensor(x, ("y", "x")))
    return str(tmp_path / name)


def test_the_cluster_equals_one_process_bit_for_bit(tmp_path: Path, client: Any) -> None:
    model = conv_model(
        tmp_path,
        [InputDef("raw", preprocessing=SAMPLE_ZMUV)],
        [OutputDef("out", kernel(2, seed=3), halo=2, postprocessing=[{"id": "sigmoid"}])],
    )
    x = volume(333, 270)
    source = _stored(tmp_path, "x.zarr", x)
    expected = predict(model=model, inputs=x, blocksize_parameter=2, batch_size=3)
    progress: list[tuple[int, int]] = []
    result = predict(
        model=model,
        inputs=source,
        save_output_path=tmp_path / "pred.zarr",
        blocksize_parameter=2,
        batch_size=3,
        client=client,
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert not result.members and result.written == {"out": tmp_path / "pred.zarr"}
    got = load_tensor(tmp_path / "pred.zarr").data
    np.testing.assert_array_equal(got, expected.members["out"].data)
    total = progress[-1][1]
    assert progress[0] == (0, total) and progress[-1] == (total, total) and total > 6


def test_dataset_statistics_are_computed_on_the_workers(tmp_path: Path, client: Any) -> None:
    model = conv_model(tmp_path, [InputDef("raw", preprocessing=DATASET_RANGE)])
    xs = [volume(150 + 20 * i, 140, seed=i) for i in range(3)]
    sources = [_stored(tmp_path, f"x{i}.zarr", x) for i, x in enumerate(xs)]
    expected = list(predict_many(model=model, inputs=xs, axes="yx", blocksize_parameter=1))
    reports: list[Any] = []
    results = list(
        predict_many(
            model=model,
            inputs=sources,
            save_output_path=tmp_path / "out" / "{sample_id}.zarr",
            blocksize_parameter=1,
            client=client,
            on_dataset_statistics=reports.append,
        )
    )
    assert reports[0].origin == "computed" and reports[0].n_samples == 3
    for result, exp in zip(results, expected, strict=True):
        got = load_tensor(result.written["out"]).data
        np.testing.assert_array_equal(got, exp.members["out"].data)


def test_the_tasks_of_a_dead_worker_are_run_again(tmp_path: Path, client: Any) -> None:
    model = conv_model(tmp_path, outputs=[OutputDef("out", kernel(2), halo=2)])
    x = volume(400, 400)
    source = _stored(tmp_path, "x.zarr", x)
    victim = sorted(client.scheduler_info()["workers"])[0]
    killed: list[bool] = []

    def kill_one_worker(done: int, total: int) -> None:
        if done >= 3 and not killed:
            killed.append(True)
            try:  # the worker dies mid-run; its nanny starts a new one, which loads the model
                client.run(os._exit, 1, workers=[victim])
            except Exception:  # it died before answering
                pass

    result = predict(
        model=model,
        inputs=source,
        save_output_path=tmp_path / "pred.zarr",
        blocksize_parameter=0,
        client=client,
        on_progress=kill_one_worker,
    )
    assert killed
    expected = predict(model=model, inputs=x, blocksize_parameter=0)
    np.testing.assert_array_equal(load_tensor(result.written["out"]).data, expected.members["out"].data)
    client.wait_for_workers(2, timeout=60)
    assert victim not in client.scheduler_info()["workers"]  # it was replaced


def test_an_interrupted_run_is_resumed_on_the_cluster(tmp_path: Path, client: Any) -> None:
    model = conv_model(tmp_path, outputs=[OutputDef("out", kernel(1), halo=1)])
    x = volume(300, 300, seed=5)
    source = _stored(tmp_path, "x.zarr", x)
    out = tmp_path / "pred.zarr"

    def interrupt(done: int, total: int) -> None:
        if done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict(model=model, inputs=source, save_output_path=out, blocksize_parameter=0,
                client=client, resume=True, on_progress=interrupt)  # fmt: skip
    assert not out.exists()
    progress: list[tuple[int, int]] = []
    with pytest.warns(OutputNotice, match="resuming"):
        predict(model=model, inputs=source, save_output_path=out, blocksize_parameter=0,
                client=client, resume=True, on_progress=lambda d, t: progress.append((d, t)))  # fmt: skip
    assert progress[0][0] >= 4  # recorded chunks are not written again
    expected = predict(model=model, inputs=x, blocksize_parameter=0)
    np.testing.assert_array_equal(load_tensor(out).data, expected.members["out"].data)


def test_the_cluster_writes_zarr_and_needs_files(tmp_path: Path, client: Any) -> None:
    model = conv_model(tmp_path)
    x = volume(80, 80)
    source = _stored(tmp_path, "x.zarr", x)
    with pytest.raises(InputError, match="cannot predict on a cluster: the outputs .* by several workers"):
        predict(model=model, inputs=source, save_output_path=tmp_path / "o.npy", client=client)
    with pytest.raises(InputError, match="cannot predict on a cluster: the inputs are not all files"):
        predict(model=model, inputs=x, save_output_path=tmp_path / "o.zarr", client=client)


def test_cli_workers(tmp_path: Path) -> None:
    model = conv_model(tmp_path, outputs=[OutputDef("out", kernel(1), halo=1)])
    x = volume(200, 160)
    _stored(tmp_path, "img.zarr", x)
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["predict", str(tmp_path / "rdf.yaml"), "-i", str(tmp_path / "img.zarr"),
         "-o", str(tmp_path / "pred" / "{sample_id}.zarr"), "--blocksize", "0", "--workers", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "started a local dask cluster: 2 worker process(es)" in result.stderr
    assert "dask dashboard:" in result.stderr
    expected = predict(model=model, inputs=x, blocksize_parameter=0)
    np.testing.assert_array_equal(
        load_tensor(tmp_path / "pred" / "img.zarr").data, expected.members["out"].data
    )
    both = runner.invoke(
        main,
        ["predict", str(tmp_path / "rdf.yaml"), "-i", str(tmp_path / "img.zarr"),
         "--workers", "1", "--scheduler", "tcp://127.0.0.1:1"],
    )  # fmt: skip
    assert both.exit_code == 1 and "give --workers or --scheduler, not both" in both.stderr


def test_cli_scheduler(tmp_path: Path, client: Any) -> None:
    """--scheduler ADDRESS predicts on a running cluster (here the fixture's) and leaves it up."""
    model = conv_model(tmp_path, outputs=[OutputDef("out", kernel(1), halo=1)])
    x = volume(200, 160)
    _stored(tmp_path, "img.zarr", x)
    result = CliRunner().invoke(
        main,
        ["predict", str(tmp_path / "rdf.yaml"), "-i", str(tmp_path / "img.zarr"),
         "-o", str(tmp_path / "pred.zarr"), "--blocksize", "0",
         "--scheduler", client.scheduler.address],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = predict(model=model, inputs=x, blocksize_parameter=0)
    np.testing.assert_array_equal(
        load_tensor(tmp_path / "pred.zarr").data, expected.members["out"].data
    )
    assert len(client.scheduler_info()["workers"]) == 2  # the cluster is not closed


def test_a_failing_task_fails_the_prediction_and_leaves_no_output(
    tmp_path: Path, client: Any
) -> None:
    model = conv_model(tmp_path, outputs=[OutputDef("out", kernel(1), halo=1)])
    source = _stored(tmp_path, "x.zarr", volume(300, 300))

    def spoil_the_input(done: int, total: int) -> None:
        if done == 0:  # planned (statistics known), no task started yet
            for chunk in (tmp_path / "x.zarr" / "c").rglob("*"):
                if chunk.is_file():
                    chunk.write_bytes(b"not a chunk")

    with pytest.raises(RuntimeError, match="decompression"):  # zarr's error, from a worker
        predict(model=model, inputs=source, save_output_path=tmp_path / "p.zarr",
                blocksize_parameter=0, client=client, on_progress=spoil_the_input)  # fmt: skip
    assert not (tmp_path / "p.zarr").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_tasks_shrink_towards_the_end_of_a_cluster_run(
    tmp_path: Path, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default a task takes CLUSTER_BATCHES_PER_TASK batches, the last ones fewer, so that
    the workers (one thread each here: 2 task slots) finish together."""
    from bioimageio_core.execution import distributed

    jobs: list[Any] = []

    def prepare_job(*args: Any, **kwargs: Any) -> Any:
        jobs.append(outofcore.prepare_job(*args, **kwargs))
        return jobs[-1]

    monkeypatch.setattr(distributed, "prepare_job", prepare_job)
    model = conv_model(tmp_path, outputs=[OutputDef("out", kernel(1), halo=1)])
    source = _stored(tmp_path, "x.zarr", volume(600, 600))
    predict(model=model, inputs=source, save_output_path=tmp_path / "p.zarr",
            blocksize_parameter=0, batch_size=2, client=client)  # fmt: skip
    assert distributed.task_slots(client) == 2
    counts = [len(t.blocks) for t in jobs[0].layout.tasks]
    blocks = len(jobs[0].plan.grid)
    sizes = outofcore.task_sizes(-(-blocks // 2), distributed.CLUSTER_BATCHES_PER_TASK, slots=2)
    assert sizes[0] == distributed.CLUSTER_BATCHES_PER_TASK and sizes[-4:] == [1, 1, 1, 1]
    assert counts[:-1] == [2 * s for s in sizes[:-1]] and sum(counts) == blocks
    predict(model=model, inputs=source, save_output_path=tmp_path / "q.zarr",
            blocksize_parameter=0, client=client, blocks_per_task=3)  # fmt: skip
    counts = [len(t.blocks) for t in jobs[1].layout.tasks]
    assert set(counts[:-1]) == {3} and counts[-1] <= 3  # the size asked for, to the end


def test_clusters_we_start_spend_no_cpu_on_dashboard_chores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cluster of start_local_cluster runs with LOCAL_CLUSTER_CONFIG (no statistical
    profiler, fewer health checks, glibc's own malloc settings in the workers); the calling
    process keeps its dask configuration and environment."""
    import dask.config

    from bioimageio_core.execution.distributed import (
        LOCAL_CLUSTER_CONFIG,
        close_client,
        start_local_cluster,
    )

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    before = {key: dask.config.get(key) for key in LOCAL_CLUSTER_CONFIG}
    assert before["distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"] is not None
    client = start_local_cluster(1, threads=1)
    try:
        settings = [k for k in LOCAL_CLUSTER_CONFIG if "pre-spawn-environ" not in k]
        [found] = client.run(lambda: {k: dask.config.get(k) for k in settings}).values()
        assert found == {k: LOCAL_CLUSTER_CONFIG[k] for k in settings}
        [env] = client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values()
        assert env is None
        [callbacks] = client.run(
            lambda dask_worker: {k: pc.callback_time for k, pc in dask_worker.periodic_callbacks.items()}
        ).values()  # fmt: skip
        assert "profile" not in callbacks and callbacks["tick"] == 1000
        assert callbacks["memory_monitor"] == 500
        ticks = client.run_on_scheduler(
            lambda dask_scheduler: dask_scheduler.periodic_callbacks["tick"].callback_time
        )
        assert ticks == 1000
    finally:
        close_client(client, own_cluster=True)
    assert {key: dask.config.get(key) for key in LOCAL_CLUSTER_CONFIG} == before
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ  # the nanny set none here either


def test_workers_share_the_cores() -> None:
    from bioimageio_core.execution.distributed import threads_per_worker  # needs dask

    assert threads_per_worker(2, cores=2) == 1
    assert threads_per_worker(3, cores=16) == 5
    assert threads_per_worker(8, cores=4) == 1


def test_one_clients_consent_never_reaches_the_next_clients_models(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A shared worker builds each client's pipeline with that client's settings only."""
    from bioimageio_core.execution.distributed import PipelineRecipe

    seen: list[str | None] = []

    def record(*args: Any, **kwargs: Any) -> None:
        seen.append(os.environ.get("BIOIMAGEIO_ALLOW_REMOTE_CODE"))

    monkeypatch.setattr("bioimageio_core.pipeline.create_prediction_pipeline", record)
    for key, value in list(os.environ.items()):  # given back after the test
        if key.startswith("BIOIMAGEIO_"):
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("BIOIMAGEIO_ALLOW_REMOTE_CODE", raising=False)
    monkeypatch.setenv("BIOIMAGEIO_ONNX_INTRA_OP_THREADS", "1")  # the worker's own setting

    def recipe(environ: dict[str, str]) -> PipelineRecipe:
        return PipelineRecipe(
            model=None, weights_format=None, devices=None, batch_size=1,
            default_blocksize_parameter=10, border=None, axes_none_scope="dataset",
            fixed_dataset_statistics={}, environ=environ,
        )  # fmt: skip

    recipe({"BIOIMAGEIO_ALLOW_REMOTE_CODE": "1"}).create()
    recipe({}).create()
    assert seen == ["1", None]
    assert os.environ["BIOIMAGEIO_ONNX_INTRA_OP_THREADS"] == "1"


def _pools() -> dict[str, Any]:
    """What limits the threads of this worker's pools."""
    import zarr

    from bioimageio_core.threads import thread_budget

    return {
        "budget": thread_budget(),
        "zarr codec pool": zarr.config.get("threading.max_workers"),
        "onnxruntime": os.environ.get("BIOIMAGEIO_ONNX_INTRA_OP_THREADS"),
        "omp": os.environ.get("OMP_NUM_THREADS"),
    }


def test_a_worker_with_one_thread_gives_every_pool_one(tmp_path: Path, client: Any) -> None:
    model = conv_model(tmp_path, [InputDef("raw")], [OutputDef("out", kernel(1), halo=1)])
    source = _stored(tmp_path, "x.zarr", volume(150, 140))
    predict(model=model, inputs=source, save_output_path=tmp_path / "p.zarr", client=client)
    found = client.run(_pools)
    assert len(found) == 2
    for pools in found.values():
        assert pools == {"budget": 1, "zarr codec pool": 1, "onnxruntime": "1", "omp": "1"}


def test_a_joining_worker_takes_its_threads_from_its_nthreads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker of a cluster started elsewhere (--scheduler): its ``nthreads`` governs the
    pools the worker's environment leaves open; what the environment sets stays."""
    import zarr

    from bioimageio_core.execution.distributed import ModelPlugin, PipelineRecipe
    from bioimageio_core.threads import LIBRARY_THREAD_VARIABLES, set_thread_budget, thread_budget

    monkeypatch.setattr(PipelineRecipe, "create", lambda self: "pipeline")
    for name in LIBRARY_THREAD_VARIABLES:  # given back after the test
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "2")
    before = zarr.config.get("threading.max_workers")

    class Worker:
        class state:  # dask's WorkerState, as far as the plugin reads it
            nthreads = 3

    recipe = PipelineRecipe(
        model=None, weights_format=None, devices=None, batch_size=1,
        default_blocksize_parameter=10, border=None, axes_none_scope="dataset",
        fixed_dataset_statistics={}, environ={},
    )  # fmt: skip
    plugin = ModelPlugin(recipe, "p")
    try:
        plugin.setup(Worker())
        assert plugin.pipeline == "pipeline"
        assert thread_budget() == 3 and zarr.config.get("threading.max_workers") == 3
        assert os.environ["OMP_NUM_THREADS"] == "3"
        assert os.environ["BIOIMAGEIO_ONNX_INTRA_OP_THREADS"] == "3"
        assert os.environ["MKL_NUM_THREADS"] == "2"
    finally:
        set_thread_budget(None)
        zarr.config.set({"threading.max_workers": before})
