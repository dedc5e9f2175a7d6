"""The dask.distributed executor: the out-of-core stages as tasks on a cluster.

Extra ``distributed`` (``dask[distributed]``); this module is imported only when a prediction
runs on a cluster (``--workers``, ``--scheduler``, ``predict(..., client=...)``).

* Each worker loads the model once: a worker plugin (:class:`ModelPlugin`) builds the pipeline
  from a small picklable :class:`PipelineRecipe` when the worker starts (or joins) and keeps it
  until the prediction ends.
* Tasks carry block coordinates (:class:`~bioimageio_core.execution.outofcore.Task`), never
  pixels: a worker reads its blocks from the input files, preprocesses them, runs the model and
  writes whole chunks of the outputs itself (:meth:`bioimageio_core.io.SharedOutput.open`);
  tasks return a block count. The job (inputs, plan, statistics) is sent to each worker once.
* Tasks are idempotent (a rerun writes the same data), so dask may retry the tasks of a worker
  that died; the outputs record each task's chunks once written, which ``resume`` uses.
* Statistics run as :class:`~bioimageio_core.execution.statistics.SegmentJob` s on the workers
  (:func:`cluster_runner`); their small results are merged in job order, so the numbers equal
  those of one process.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import dask.config
from dask.distributed import Client, LocalCluster, WorkerPlugin, as_completed, get_worker

from bioimageio_core.adapters import ModelAdapter
from bioimageio_core.errors import BioimageioError, PluginError
from bioimageio_core.execution.outofcore import (
    StoredOptions,
    StreamJob,
    Task,
    TaskProgress,
    TaskRunner,
    open_outputs,
    prepare_job,
    probe_dtypes,
    write_pending,
)
from bioimageio_core.execution.plan import Blocking
from bioimageio_core.execution.statistics import Runner
from bioimageio_core.execution.stored import StoredSample, close_stored
from bioimageio_core.io import OutputArray, SharedOutput
from bioimageio_core.sample import Sample
from bioimageio_core.stats import MeasureValue
from bioimageio_core.threads import (
    missing_thread_environment,
    set_thread_budget,
    thread_environment,
    usable_cores,
)

if TYPE_CHECKING:
    from bioimageio_core.pipeline import PredictionPipeline

CLUSTER_BATCHES_PER_TASK = 8
"""Batches of blocks one task runs on a cluster by default, the last tasks fewer
(:func:`~bioimageio_core.execution.outofcore.task_sizes`); ``blocks_per_task`` overrides. dask
spends a millisecond or two of the scheduler's, the client's and the worker's time on each task."""

WORKER_ENVIRONMENT = frozenset({"BIOIMAGEIO_ONNX_INTRA_OP_THREADS"})
"""Settings of the worker's machine, never taken from the client's environment."""


# --- clusters ----------------------------------------------------------------------------------


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Threads each of ``workers`` local workers gets so that together they use the cores once."""
    return max(1, (cores or usable_cores()) // max(1, workers))


LOCAL_CLUSTER_CONFIG: Mapping[str, Any] = {
    # dask's nanny starts workers with glibc's MALLOC_TRIM_THRESHOLD_=65536, which also turns
    # off glibc's adaptive mmap threshold: every array above 128 KiB is then mapped afresh and
    # unmapped when freed, so each block costs thousands of page faults (much of a light
    # model's time). Unset, a worker reuses its freed memory as any Python process does (and
    # keeps it: its resident memory stays near its peak between predictions).
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    # the statistical profiler samples every worker thread every 10 ms (dashboard only)
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    # checks of each process's event loop, memory and load: 50, 10 and 2 times a second by
    # default; a blocked loop is still reported (after 3 s), memory still bounded
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
}
"""dask settings of the clusters :func:`start_local_cluster` starts (their scheduler, nannies
and workers; the calling process's dask configuration stays as it is): what costs CPU beside
the tasks of a prediction, on every worker, all the time."""


def start_local_cluster(workers: int, threads: int | None = None) -> Client:
    """A :class:`~dask.distributed.LocalCluster` of ``workers`` processes (``threads`` each,
    default :func:`threads_per_worker`) and a client of it; :func:`close_client` (with
    ``own_cluster=True``) closes both.

    Every pool of a worker uses ``threads`` threads (torch, onnxruntime, BLAS, zarr's codecs:
    :func:`~bioimageio_core.threads.thread_environment`; the block loop's own threads:
    the worker's thread budget, :class:`ModelPlugin`). The cluster runs with
    :data:`LOCAL_CLUSTER_CONFIG`.
    """
    threads = threads or threads_per_worker(workers)
    env = thread_environment(threads)
    with dask.config.set(LOCAL_CLUSTER_CONFIG):  # read as the scheduler and nannies start
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            dashboard_address=":0",
            env=env,
        )
    return Client(cluster, set_as_default=False)


def connect(address: str) -> Client:
    """A client of the running dask scheduler at ``address`` (``tcp://host:8786``, …).

    Raises:
        BioimageioError: the scheduler cannot be reached.
    """
    try:
        return Client(address, set_as_default=False, timeout="30s")
    except (OSError, TimeoutError) as e:
        raise BioimageioError(
            f"cannot reach the dask scheduler at {address} ({type(e).__name__}: {e})",
            hint="check the address (tcp://host:8786) and that the scheduler runs",
        ) from None


def close_client(client: Client, *, own_cluster: bool) -> None:
    """Close ``client`` and, with ``own_cluster`` (one it started), its cluster."""
    cluster = client.cluster
    client.close()
    if own_cluster and cluster is not None:
        cluster.close()


def dashboard_link(client: Client) -> str | None:
    """The dask dashboard's address, None when the cluster serves none (no bokeh)."""
    services = client.scheduler_info().get("services", {})
    return str(client.dashboard_link) if "dashboard" in services else None


def worker_count(client: Client) -> int:
    return max(1, len(client.scheduler_info().get("workers", {})))


def task_slots(client: Client) -> int:
    """Tasks the workers of ``client`` run at once (their threads together)."""
    workers = client.scheduler_info().get("workers", {}).values()
    return max(1, sum(int(w.get("nthreads", 1)) for w in workers))


# --- the model on the workers ------------------------------------------------------------------


@attrs.frozen
class PipelineRecipe:
    """How a worker builds the prediction pipeline (picklable; the model description travels,
    its files are read by the worker). ``environ``: the client's ``BIOIMAGEIO_*`` settings
    (cache, consent to run code, offline …; not the threads, :data:`WORKER_ENVIRONMENT`),
    applied in the worker before loading."""

    model: Any
    weights_format: str | None
    devices: tuple[str, ...] | None
    batch_size: int
    default_blocksize_parameter: Any
    border: Any
    axes_none_scope: str
    fixed_dataset_statistics: Mapping[Any, MeasureValue]
    environ: Mapping[str, str]

    def create(self) -> Any:
        from bioimageio_core.pipeline import create_prediction_pipeline

        use_client_settings(self.environ)
        return create_prediction_pipeline(
            self.model,
            weights_format=self.weights_format,
            devices=self.devices,
            batch_size=self.batch_size,
            default_blocksize_parameter=self.default_blocksize_parameter,
            border=self.border,
            axes_none_scope=self.axes_none_scope,  # type: ignore[arg-type]
            fixed_dataset_statistics=dict(self.fixed_dataset_statistics),
        )


def use_client_settings(environ: Mapping[str, str]) -> None:
    """Make this worker's ``BIOIMAGEIO_*`` settings those of the client: ``environ`` is applied
    and a setting the client did not make is removed, so that one client's consent to run code
    (or any other setting) never carries over to the next client's models on a shared worker.
    The worker's own :data:`WORKER_ENVIRONMENT` stays."""
    for key in [k for k in os.environ if k.startswith("BIOIMAGEIO_")]:
        if key not in WORKER_ENVIRONMENT and key not in environ:
            del os.environ[key]
    os.environ.update({k: v for k, v in environ.items() if k not in WORKER_ENVIRONMENT})


def recipe_of(pipeline: Any, weights_format: str | None, devices: Sequence[str] | None) -> PipelineRecipe:
    """The recipe that builds ``pipeline`` again (with its fixed dataset statistics)."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if k.startswith("BIOIMAGEIO_") and k not in WORKER_ENVIRONMENT
    }
    return PipelineRecipe(
        model=pipeline.model,
        weights_format=weights_format,
        devices=None if devices is None else tuple(devices),
        batch_size=pipeline.default_batch_size,
        default_blocksize_parameter=pipeline.default_blocksize_parameter,
        border=pipeline.border,
        axes_none_scope=pipeline.axes_none_scope,
        fixed_dataset_statistics=dict(pipeline.fixed_dataset_statistics),
        environ=environ,
    )


class ElsewhereAdapter(ModelAdapter):
    """The adapter of a pipeline in a process that plans a distributed prediction: the model
    runs on the workers, never here."""

    def __init__(self, model: Any, weights_format: str | None) -> None:
        self.weights_format = weights_format or ""
        self.input_ids = tuple(str(t.id) for t in model.inputs)
        self.output_ids = tuple(str(t.id) for t in model.outputs)

    def forward(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        raise PluginError("this model runs on the cluster's workers, not in this process")

    def unload(self) -> None:
        """Nothing is loaded here."""


def planning_pipeline(
    model: Any, weights_format: str | None, batch_size: int
) -> PredictionPipeline:
    """A pipeline of ``model`` (a description or any source) that plans predictions whose
    forward calls run on a cluster: its weights are not loaded here."""
    from bioimageio_core.loading import as_model_description
    from bioimageio_core.pipeline import create_prediction_pipeline

    descr = as_model_description(model)
    return create_prediction_pipeline(
        descr,
        weights_format=weights_format,
        batch_size=batch_size,
        model_adapter=ElsewhereAdapter(descr, weights_format),
    )


class ModelPlugin(WorkerPlugin):
    """Loads the model once per worker and keeps what the worker's tasks share: the pipeline,
    a lock that lets one task at a time use the model, the task runners and opened outputs."""

    def __init__(self, recipe: PipelineRecipe, name: str) -> None:
        self.recipe = recipe
        self.name = name
        self._fresh()

    def _fresh(self) -> None:
        self.pipeline: Any = None
        self.lock = threading.Lock()
        """Held around each forward call."""
        self.setup_lock = threading.Lock()
        """Held while a job's runner is made."""
        self._runners: dict[str, tuple[TaskRunner, dict[str, OutputArray]]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"recipe": self.recipe, "name": self.name}  # what travels to the workers

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.recipe, self.name = state["recipe"], state["name"]
        self._fresh()

    def setup(self, worker: Any) -> None:
        """Give this worker's prediction its threads (the worker's ``nthreads``: every pool,
        :mod:`bioimageio_core.threads`; library settings the worker's environment makes stay),
        then load the model."""
        threads = worker_threads(worker)
        os.environ.update(missing_thread_environment(threads, os.environ))
        set_thread_budget(threads)
        self.pipeline = self.recipe.create()

    def teardown(self, worker: Any) -> None:
        self.release_all()
        if self.pipeline is not None:
            self.pipeline.unload()
            self.pipeline = None
        close_stored()

    def runner(self, key: str, job: StreamJob, shared: Mapping[str, SharedOutput]) -> TaskRunner:
        """The runner of job ``key`` (outputs opened from this worker on first use)."""
        found = self._runners.get(key)
        if found is None:
            outputs = {oid: handle.open() for oid, handle in shared.items()}
            found = (TaskRunner(self.pipeline, job, outputs, self.lock), outputs)
            self._runners[key] = found
        return found[0]

    def release(self, key: str) -> None:
        """Close the outputs of job ``key`` opened here (the owner finishes them)."""
        found = self._runners.pop(key, None)
        if found is not None:
            for out in found[1].values():
                out.close()

    def release_all(self) -> None:
        for key in list(self._runners):
            self.release(key)


def worker_threads(worker: Any) -> int:
    """The threads a dask worker runs tasks in (its ``nthreads``; 1 when it does not say)."""
    state = getattr(worker, "state", None)
    threads = getattr(state, "nthreads", None) or getattr(worker, "nthreads", None)
    return max(1, int(threads)) if isinstance(threads, int) else 1


def _plugin(name: str) -> ModelPlugin:
    plugin = get_worker().plugins.get(name)
    if not isinstance(plugin, ModelPlugin) or plugin.pipeline is None:
        raise PluginError(f"the model is not loaded on this worker (plugin {name!r} missing)")
    return plugin


def run_task(
    plugin_name: str, key: str, job: StreamJob, shared: Mapping[str, SharedOutput], task: Task
) -> int:
    """Run one task on a worker (what the scheduler runs); returns its number of blocks."""
    plugin = _plugin(plugin_name)
    with plugin.setup_lock:
        runner = plugin.runner(key, job, shared)
    return runner.run(task)  # the model is used by one task of this worker at a time


def probe_task(plugin_name: str, job: StreamJob) -> dict[str, str]:
    """The outputs' dtypes from the job's first block, on a worker."""
    plugin = _plugin(plugin_name)
    with plugin.lock:
        return probe_dtypes(plugin.pipeline, job)


def release_task(plugin_name: str, key: str, dask_worker: Any = None) -> None:
    plugin = (dask_worker or get_worker()).plugins.get(plugin_name)
    if isinstance(plugin, ModelPlugin):
        plugin.release(key)


def cluster_runner(client: Client) -> Runner:
    """The :data:`~bioimageio_core.execution.statistics.Runner` of ``client``'s workers."""

    def run(function: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        futures = client.map(function, list(items), pure=False)
        return list(client.gather(futures))

    return run


@contextmanager
def loaded_model(client: Client, recipe: PipelineRecipe) -> Any:
    """The model loaded on every worker of ``client`` while the block runs (a worker plugin);
    yields the plugin's name."""
    name = f"bioimageio-run-model-{uuid.uuid4().hex[:12]}"
    try:
        client.register_plugin(ModelPlugin(recipe, name), name=name)
    except BioimageioError:
        raise
    except Exception as e:
        raise PluginError(
            f"the workers could not load the model ({type(e).__name__}: {e})",
            hint="check that every worker has the backend plugin installed and can read the "
            "model's files",
        ) from e
    try:
        yield name
    finally:
        try:
            client.unregister_worker_plugin(name)
        except Exception:  # the cluster is gone already; nothing to unload there
            pass


# --- one sample ---------------------------------------------------------------------------------


def predict_distributed(
    client: Client,
    plugin_name: str,
    pipeline: Any,
    sample: StoredSample,
    blocking: Blocking,
    paths: Mapping[str, Path],
    options: StoredOptions | None = None,
) -> Sample:
    """Predict a stored sample on the workers of ``client`` (the model loaded there by the
    plugin ``plugin_name``) into the files ``paths``; ``pipeline`` (in this process, weights not
    needed) plans the job. Returns a sample without members whose ``written`` names the files."""
    options = options or StoredOptions()
    workers = worker_count(client)
    slots = None
    if options.blocks_per_task is None:
        # several batches per task (reading and writing overlap, dask's cost per task is
        # spread), fewer towards the end so that the workers finish together
        batch = blocking.batch_size or pipeline.default_batch_size
        options = attrs.evolve(options, blocks_per_task=CLUSTER_BATCHES_PER_TASK * batch)
        slots = task_slots(client)
    job = prepare_job(
        pipeline,
        sample,
        blocking,
        options,
        run=cluster_runner(client),
        statistics_jobs=4 * workers,
        task_slots=slots,
    )
    light = attrs.evolve(job, layout=attrs.evolve(job.layout, tasks=()))
    [sent] = client.scatter([light], broadcast=True)
    dtypes = client.submit(probe_task, plugin_name, sent, pure=False).result()
    outputs = open_outputs(pipeline, job, paths, dtypes, options)
    key = uuid.uuid4().hex[:12]

    def run(tasks: list[Task], progress: TaskProgress) -> None:
        futures: list[Any] = []
        try:
            shared = {oid: out.shared() for oid, out in outputs.items()}
            progress.advance(0)
            futures = [
                client.submit(
                    run_task, plugin_name, key, sent, shared, task, pure=False,
                    key=f"bioimageio-run-{key}-task-{task.index}",
                )
                for task in tasks
            ]  # fmt: skip
            blocks = {f.key: len(t.blocks) for f, t in zip(futures, tasks, strict=True)}
            for future in as_completed(futures, loop=client.loop):
                if future.status != "finished":
                    future.result()  # raises the task's error
                # a finished task wrote all its blocks: its result (their number) stays on
                # the worker, which saves a round trip per task
                progress.advance(blocks[future.key])
            client.run(release_task, plugin_name, key)
        except BaseException:
            try:
                # tasks not started stay so; running ones finish their chunks
                client.cancel(futures)
                client.run(release_task, plugin_name, key)
            except Exception:
                pass
            raise

    return write_pending(job, sample, outputs, run, options)


__all__ = [
    "CLUSTER_BATCHES_PER_TASK",
    "LOCAL_CLUSTER_CONFIG",
    "ElsewhereAdapter",
    "ModelPlugin",
    "PipelineRecipe",
    "close_client",
    "cluster_runner",
    "connect",
    "dashboard_link",
    "loaded_model",
    "planning_pipeline",
    "predict_distributed",
    "probe_task",
    "use_client_settings",
    "recipe_of",
    "run_task",
    "start_local_cluster",
    "task_slots",
    "threads_per_worker",
    "worker_count",
    "worker_threads",
]
