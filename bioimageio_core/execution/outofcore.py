"""Out-of-core prediction of one stored sample: the same stages, read and written block by block.

Nothing of image size is held: statistics come from passes over segments of the stored inputs
(:mod:`~bioimageio_core.execution.statistics`), each block is read from the files (its outer
region), preprocessed there (every preprocessing step works element by element once the
statistics are known; the statistics of kept axes are cut to the block), padded, run, stitched
and written into chunked outputs (:func:`bioimageio_core.io.open_output_array`).

The work is cut into :class:`Task` s: sets of blocks that together own whole chunks of every
output, so that tasks can run anywhere in any order (a task that runs twice writes the same
data; the output records a task's chunks once they are written, and a resumed run skips tasks
whose chunks are all recorded). Output chunks follow the blocks' inner regions; along an output
axis where those do not fall on one regular grid (models that crop their output), chunks span the
whole axis and a task takes every block along it. :func:`predict_stored` runs the tasks in this
process; :mod:`~bioimageio_core.execution.distributed` runs them on a dask cluster.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from bioimageio_core.blocks import Block, OutputBlockMapper, SampleBlock, batched
from bioimageio_core.errors import OutputError
from bioimageio_core.execution.batch import stack
from bioimageio_core.execution.forward import Call, Forward
from bioimageio_core.execution.inprocess import Batch, Outputs, ProgressCallback, forwarded
from bioimageio_core.execution.plan import Blocking, BlockPlan
from bioimageio_core.execution.pointwise import whole_tensor_steps
from bioimageio_core.execution.processing import check_statistics_inputs, paddings_for
from bioimageio_core.execution.statistics import (
    Runner,
    run_here,
    run_in_threads,
    stored_statistics,
)
from bioimageio_core.execution.stitch import Stitcher
from bioimageio_core.execution.stored import Array, Region, StoredSample
from bioimageio_core.execution.write import WriteBehind
from bioimageio_core.io import ArrayMetadata, OutputArray, open_output_array
from bioimageio_core.io._chunks import ChunkGrid
from bioimageio_core.ops import BoundOp, apply_ops
from bioimageio_core.prefetch import PrefetchPolicy, prefetched
from bioimageio_core.sample import Sample
from bioimageio_core.shapes import DataDependentSize, ModelShape
from bioimageio_core.stats import Measure, MeasureValue
from bioimageio_core.tensor import Padding, Tensor
from bioimageio_core.threads import thread_budget

if TYPE_CHECKING:
    from bioimageio_core.adapters import ModelAdapter
    from bioimageio_core.pipeline import PredictionPipeline


# --- can it stream? ---------------------------------------------------------------------------


def stream_problem(
    pipeline: PredictionPipeline,
    *,
    skip_preprocessing: bool = False,
    skip_postprocessing: bool = False,
    fresh: bool = True,
) -> str | None:
    """Why ``pipeline`` cannot predict out-of-core (None: it can).

    ``fresh``: the pipeline has seen no sample yet (running dataset statistics are then those
    of the sample predicted, which the out-of-core statistics compute).
    """
    if pipeline.upstreams:
        return "chained models (output_of) are predicted in memory"
    whole = whole_tensor_steps(pipeline.preprocessing, pipeline.shape, statistics_known=True)
    if not skip_preprocessing and whole:
        return f"its preprocessing ({', '.join(sorted(set(whole)))}) does not work element by element"
    if not skip_postprocessing and not pipeline.postprocessing_is_pointwise():
        post = sorted({op.spec.id for op in pipeline.postprocessing})
        return (
            f"its postprocessing ({', '.join(post)}) needs the whole output (statistics of "
            "it, or a step that does not work element by element)"
        )
    for t in pipeline.io_shape.outputs:
        if any(isinstance(a.size, DataDependentSize) for a in t.axes):
            return f"output {t.id!r} has a data dependent size"
    if pipeline.running_dataset_measures and not fresh:
        return (
            "its dataset statistics are running statistics of the samples this pipeline "
            "predicted so far"
        )
    return None


# --- reading and preprocessing a block ----------------------------------------------------------


def crop_statistics(
    stat: Mapping[Measure, MeasureValue], block: SampleBlock
) -> dict[Measure, MeasureValue]:
    """``stat`` with values over kept axes cut to the outer region of each member's block."""
    out: dict[Measure, MeasureValue] = {}
    for measure, value in stat.items():
        member = block.members.get(measure.member_id)
        if not isinstance(value, Tensor) or member is None:
            out[measure] = value
            continue
        region: dict[str, slice] = {}
        for axis_id, axis_block in zip(member.axes, member.axis_blocks, strict=True):
            if axis_id in value.dims:
                full = block.sample_shape[measure.member_id][axis_id]
                if value.sizes[axis_id] == full and axis_block.outer != (0, full):
                    region[axis_id] = slice(*axis_block.outer)
        out[measure] = value[region] if region else value
    return out


@attrs.frozen(eq=False)
class StoredReader:
    """Block data read from stored inputs: the outer region, preprocessed (with the sample's
    statistics cut to the block), then padded; equal to cutting the block out of the whole
    preprocessed sample."""

    sample: StoredSample
    preprocessing: tuple[BoundOp, ...]
    stat: Mapping[Measure, MeasureValue]
    paddings: Mapping[str, Padding]

    def __call__(self, block: SampleBlock) -> dict[str, Array]:
        members = {
            m: self.sample.members[m].tensor(b.outer_slices)
            for m, b in block.members.items()
            if m in self.sample.members
        }
        if self.preprocessing:
            ops = [op for op in self.preprocessing if op.target.member_id in members]
            members = apply_ops(ops, members, crop_statistics(self.stat, block))
        return {
            m: t.pad(block.members[m].padding, self.paddings.get(m, "reflect")).data
            for m, t in members.items()
        }


# --- outputs and tasks --------------------------------------------------------------------------


@attrs.frozen
class Task:
    """Blocks (indices in the plan's grid) that together own whole chunks of every output, and
    for each output the regions to record as written once they are."""

    index: int
    blocks: tuple[int, ...]
    regions: Mapping[str, tuple[Region, ...]] = attrs.field(eq=False)


@attrs.frozen
class Layout:
    """How the outputs of a plan are chunked and the blocks grouped into tasks."""

    shapes: Mapping[str, tuple[int, ...]]
    chunks: Mapping[str, tuple[int, ...]]
    tasks: tuple[Task, ...]


def plan_layout(
    plan: BlockPlan, io_shape: ModelShape, blocks_per_task: int, slots: int | None = None
) -> Layout:
    """Output chunks along the blocks' inner regions, and tasks of about ``blocks_per_task``
    blocks (whole batches) that own whole chunks; with ``slots`` (tasks that run at once),
    the last tasks are smaller (:func:`task_sizes`)."""
    sizes = {k: v for k, v in plan.output_sizes.items() if v is not None}
    mapper = OutputBlockMapper(io_shape, sizes)
    grid = plan.grid
    axes = list(grid.grid)
    shapes = {t.id: tuple(sizes[(t.id, a)] for a in t.axis_ids) for t in io_shape.outputs}
    inners: dict[str, list[set[tuple[int, int]]]] = {
        oid: [set() for _ in shape] for oid, shape in shapes.items()
    }
    follows: dict[tuple[str, int], str] = {}  # (output, axis index) -> grid axis
    for g, axis in enumerate(axes):
        stride = math.prod(grid.grid[a] for a in axes[g + 1 :])
        seen: dict[tuple[str, int], set[tuple[int, int]]] = {}
        for k in range(grid.grid[axis]):
            for oid, out in mapper(grid[k * stride]).items():
                for j, axis_block in enumerate(out.axis_blocks):
                    inners[oid][j].add(axis_block.inner)
                    seen.setdefault((oid, j), set()).add(axis_block.inner)
        for key, found in seen.items():
            if len(found) > 1:
                follows[key] = axis
    chunks: dict[str, tuple[int, ...]] = {}
    misaligned: set[str] = set()
    for oid, shape in shapes.items():
        out_chunks = []
        for j, size in enumerate(shape):
            ranges = sorted(r for r in inners[oid][j] if r[1] > r[0])
            step = ranges[0][1] - ranges[0][0] if ranges else size
            aligned = bool(ranges) and all(
                start % step == 0 and (stop % step == 0 or stop == size) for start, stop in ranges
            )
            if len(ranges) > 1 and not aligned:
                misaligned.add(follows[(oid, j)])
                step = size
            out_chunks.append(max(1, step if len(ranges) > 1 else size))
        chunks[oid] = tuple(out_chunks)
    tasks = _tasks(plan, mapper, axes, misaligned, blocks_per_task, slots)
    return Layout(shapes, chunks, tasks)


def task_sizes(batches: int, most: int, slots: int | None = None) -> list[int]:
    """The batches each task takes, in order, ``batches`` in all: ``most`` each; with ``slots``
    (the tasks that run at once), never more than a ``2 * slots``-th of the batches left (at
    least one), so that tasks shrink towards the end and the slots run out of work at about
    the same time instead of waiting for the last long task (guided self-scheduling)."""
    if most < 1 or (slots is not None and slots < 1):
        raise ValueError(f"a task takes at least one batch on at least one slot (got {most}, {slots})")
    sizes: list[int] = []
    left = batches
    while left > 0:
        size = most if slots is None else max(1, min(most, left // (2 * slots)))
        sizes.append(min(size, left))
        left -= sizes[-1]
    return sizes


def _tasks(
    plan: BlockPlan,
    mapper: OutputBlockMapper,
    axes: Sequence[str],
    misaligned: Collection[str],
    blocks_per_task: int,
    slots: int | None,
) -> tuple[Task, ...]:
    grid = plan.grid
    groups: list[list[int]] = []
    if not misaligned:
        batch = plan.batch_size
        most = max(1, math.ceil(blocks_per_task / batch))
        first = 0
        for size in task_sizes(math.ceil(len(grid) / batch), most, slots):
            stop = min(first + size * batch, len(grid))
            groups.append(list(range(first, stop)))
            first = stop
    else:
        by_key: dict[tuple[int, ...], list[int]] = {}
        for index in range(len(grid)):
            at = grid.position(index)
            by_key.setdefault(tuple(at[a] for a in axes if a not in misaligned), []).append(index)
        groups = list(by_key.values())
    tasks = []
    for i, indices in enumerate(groups):
        blocks = [mapper(grid[index]) for index in indices]
        regions: dict[str, tuple[Region, ...]] = {}
        for oid in blocks[0]:
            inner = [b[oid].inner_slices for b in blocks]
            regions[oid] = tuple(inner) if not misaligned else (_bounding_box(inner),)
        tasks.append(Task(i, tuple(indices), regions))
    return tuple(tasks)


def _bounding_box(regions: Sequence[Region]) -> Region:
    return tuple(
        slice(min(r[d].start for r in regions), max(r[d].stop for r in regions))
        for d in range(len(regions[0]))
    )


def task_is_done(
    task: Task, grids: Mapping[str, ChunkGrid], done: Mapping[str, frozenset[tuple[int, ...]]]
) -> bool:
    """Whether every chunk the task's regions touch is recorded as written in every output."""
    return all(
        index in done[oid]
        for oid, regions in task.regions.items()
        for region in regions
        for index in grids[oid].touched(region)
    )


# --- one sample, ready to run anywhere ----------------------------------------------------------


@attrs.frozen(eq=False)
class StreamJob:
    """Everything a process needs to run the tasks of one stored sample (picklable; no data
    of image size): the inputs, the plan, the statistics, how inputs are padded, the tasks."""

    sample: StoredSample
    plan: BlockPlan
    layout: Layout
    stat: Mapping[Measure, MeasureValue]
    paddings: Mapping[str, Padding]
    skip_preprocessing: bool
    postprocess: bool


class TaskRunner:
    """Runs tasks of one :class:`StreamJob` with a loaded pipeline, writing into ``outputs``
    (opened output arrays by output id). ``lock``: held around each forward call (threads that
    share one model); reading, stitching and writing run outside it."""

    def __init__(
        self,
        pipeline: PredictionPipeline,
        job: StreamJob,
        outputs: Mapping[str, OutputArray],
        lock: AbstractContextManager[Any] | None = None,
    ) -> None:
        self.job = job
        self.outputs = outputs
        self.lock = lock or nullcontext()
        self.forward: Forward = pipeline.forward
        self.adapter: ModelAdapter | None = pipeline.adapter
        self.reader = StoredReader(
            job.sample,
            () if job.skip_preprocessing else pipeline.preprocessing,
            job.stat,
            job.paddings,
        )
        self.stitcher = Stitcher(
            pipeline.io_shape,
            job.plan.output_sizes,
            weights_format=pipeline.weights_format,
            postprocessing=pipeline.postprocessing if job.postprocess else (),
            stat=job.stat,
        )

    def blocks(self, task: Task) -> list[SampleBlock]:
        return [self.job.plan.grid[i] for i in task.blocks]

    def run(self, task: Task, on_blocks: Callable[[int], None] | None = None) -> int:
        """Predict and write the task's blocks, then record its regions as written; returns the
        number of blocks."""
        return self.run_all([task], on_blocks)

    def run_all(
        self, tasks: Iterable[Task], on_blocks: Callable[[int], None] | None = None
    ) -> int:
        """:meth:`run` for each of ``tasks`` in turn. While the model runs, the next blocks are
        read and the last ones written, each in a background thread, when that pays and the
        thread budget allows (:class:`~bioimageio_core.prefetch.PrefetchPolicy`; in a process
        whose budget is one thread, next to a model that keeps it busy, everything runs in the
        calling thread); a task's regions are recorded once its blocks are written."""
        if self.adapter is None:
            raise OutputError("the prediction pipeline was unloaded")
        adapter = self.adapter
        policy = PrefetchPolicy()
        tags: deque[tuple[Task, bool]] = deque()

        def tagged() -> Iterator[Batch]:
            # each batch's task and whether it is its task's last, in the order of the batches
            for task, last, batch in self._batches(tasks):
                tags.append((task, last))
                yield batch

        def locked(adapter: ModelAdapter, calls: Sequence[Call]) -> list[Outputs]:
            with self.lock:
                return self.forward.calls(adapter, calls)

        batches = prefetched(tagged(), policy)
        results = forwarded(batches, adapter, locked, policy)
        n = 0
        try:
            with WriteBehind() as behind:

                def write(function: Callable[..., None], *args: Any) -> None:
                    # once writes go to the background they stay there: order is kept
                    if policy.beside_backend:
                        behind.submit(function, *args)
                    else:
                        function(*args)

                for batch, outputs_per_block in results:
                    task, last = tags.popleft()
                    for sb, outputs in zip(batch, outputs_per_block, strict=True):
                        for oid, (block, inner) in self.stitcher(sb, outputs).items():
                            write(self.write, oid, block, inner)
                    n += len(batch)
                    if last:
                        write(self.record, task)
                    if on_blocks is not None:
                        on_blocks(len(batch))
        finally:
            results.close()
            batches.close()
        return n

    def record(self, task: Task) -> None:
        """Record the task's regions as written (after its blocks are)."""
        for oid, regions in task.regions.items():
            for region in regions:
                self.outputs[oid].mark_done(region)

    def _batches(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, bool, Batch]]:
        """Every task's batches, read lazily, each with its task and whether it is the last."""
        plan = self.job.plan
        for task in tasks:
            groups = list(batched(self.blocks(task), plan.batch_size))
            for i, batch in enumerate(groups):
                parts = [self.reader(sb) for sb in batch]
                arrays, n_stacked = stack(parts, self.forward.input_axes, plan.fill_to)
                yield task, i == len(groups) - 1, (batch, arrays, n_stacked)

    def write(self, output_id: str, block: Block, inner: Array) -> None:
        target = self.outputs[output_id]
        if inner.dtype != target.dtype:
            raise OutputError(
                f"output {output_id!r} came out as {inner.dtype}, but {target.location} holds "
                f"{target.dtype}",
                hint="predict into a new output (the existing one was written another way)",
            )
        target.write_block(block.inner_slices, inner, done=False, owned=True)


def probe_dtypes(pipeline: PredictionPipeline, job: StreamJob) -> dict[str, str]:
    """The dtype of every output, from the first block (run, not written)."""
    runner = TaskRunner(pipeline, job, {})
    block = job.plan.grid[0]
    arrays = runner.reader(block)
    assert runner.adapter is not None
    (outputs,) = runner.forward(runner.adapter, arrays, 1, 1)
    return {oid: inner.dtype.str for oid, (_, inner) in runner.stitcher(block, outputs).items()}


@attrs.frozen
class StoredOptions:
    """How an out-of-core prediction runs and writes, wherever its tasks run.

    ``overwrite``: replace existing output files; ``resume``: continue outputs of an earlier
    interrupted run of the same job; ``metadata``: output id → coordinates written with it;
    ``on_progress``: called with (blocks written, blocks in all); ``blocks_per_task``: the
    blocks a task takes (None: one batch, or the caller's default).
    """

    overwrite: bool = True
    resume: bool = False
    skip_preprocessing: bool = False
    skip_postprocessing: bool = False
    metadata: Mapping[str, ArrayMetadata] | None = None
    on_progress: ProgressCallback | None = None
    blocks_per_task: int | None = None


def prepare_job(
    pipeline: PredictionPipeline,
    sample: StoredSample,
    blocking: Blocking,
    options: StoredOptions | None = None,
    *,
    run: Runner = run_here,
    statistics_jobs: int = 1,
    task_slots: int | None = None,
) -> StreamJob:
    """Plan one stored sample: blocks, statistics (computed with ``run`` in about
    ``statistics_jobs`` jobs per pass), paddings, tasks (of ``options.blocks_per_task``; the
    last ones smaller with ``task_slots``, the tasks that run at once: :func:`task_sizes`)."""
    options = options or StoredOptions()
    skip_preprocessing = options.skip_preprocessing
    block_plan = pipeline.plan_blocks(sample.shape, blocking)
    stat: dict[Any, Any] = {}
    if not skip_preprocessing:
        stats = pipeline.pre_stats
        needed: list[Measure] = list(stats.sample_measures)
        if stats.updating:
            needed += list(stats.dataset_measures)
        else:
            stat.update(stats.dataset_values())
        check_statistics_inputs(needed, sample.members)
        if needed:
            stat.update(stored_statistics([sample], needed, run=run, jobs=statistics_jobs))
        stat.update(pipeline.fixed_dataset_statistics)
    placeholders = Sample(
        members={
            m: Tensor(np.broadcast_to(np.zeros((), s.dtype), s.shape), s.dims)
            for m, s in sample.members.items()
        }
    )
    paddings = paddings_for(
        pipeline.input_paddings,
        placeholders,
        pipeline.preprocessing,
        stat,
        pipeline.shape,
        preprocessed=not skip_preprocessing,
    )
    per_task = options.blocks_per_task or block_plan.batch_size
    layout = plan_layout(block_plan, pipeline.io_shape, per_task, task_slots)
    return StreamJob(
        sample,
        block_plan,
        layout,
        stat,
        paddings,
        skip_preprocessing,
        postprocess=not options.skip_postprocessing,
    )


def fingerprint(pipeline: PredictionPipeline, job: StreamJob, dtypes: Mapping[str, str]) -> str:
    """What identifies a streamed prediction: the model, the inputs, the blocks, the statistics
    and the outputs; a resumed run continues only an output of the same fingerprint."""
    formats = pipeline.model.weights.available_formats
    weights = pipeline.model.weights[pipeline.weights_format] if pipeline.weights_format in formats else None
    stat = {
        str(m): (v.data.tolist() if isinstance(v, Tensor) else float(v))
        for m, v in sorted(job.stat.items(), key=lambda item: str(item[0]))
    }
    inputs = {
        m: [s.location if "://" in s.location else os.path.abspath(s.location), s.shape, s.dtype]
        for m, s in sorted(job.sample.members.items())
    }
    data = {
        "model": [pipeline.model.name, str(getattr(pipeline.model, "id", None))],
        "weights": [pipeline.weights_format, getattr(weights, "sha256", None)],
        "inputs": inputs,
        "blocks": [len(job.plan.grid), str(job.plan.grid[0].members), job.plan.batch_size],
        "stat": stat,
        "outputs": {oid: [job.layout.shapes[oid], dtypes[oid]] for oid in sorted(dtypes)},
        "processing": [job.skip_preprocessing, job.postprocess],
    }
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def open_outputs(
    pipeline: PredictionPipeline,
    job: StreamJob,
    paths: Mapping[str, Path],
    dtypes: Mapping[str, str],
    options: StoredOptions,
) -> dict[str, OutputArray]:
    """Create (or, with ``options.resume``, reopen) every output, chunked as the job's layout
    says."""
    fp = fingerprint(pipeline, job, dtypes)
    metadata = options.metadata or {}
    axes = {t.id: t.axis_ids for t in pipeline.io_shape.outputs}
    opened: dict[str, OutputArray] = {}
    try:
        for oid, path in paths.items():
            opened[oid] = open_output_array(
                path,
                job.layout.shapes[oid],
                np.dtype(dtypes[oid]),
                axes[oid],
                overwrite=options.overwrite,
                chunks=job.layout.chunks[oid],
                resume=options.resume,
                fingerprint=fp,
                metadata=metadata.get(oid),
            )
    except BaseException:
        for out in opened.values():
            out.discard()
        raise
    return opened


def pending_tasks(job: StreamJob, outputs: Mapping[str, OutputArray]) -> list[Task]:
    """The job's tasks whose chunks are not all recorded as written."""
    grids = {oid: out.chunk_grid for oid, out in outputs.items()}
    done = {oid: out.done_chunks() for oid, out in outputs.items()}
    return [t for t in job.layout.tasks if not task_is_done(t, grids, done)]


def predict_stored(
    pipeline: PredictionPipeline,
    sample: StoredSample,
    blocking: Blocking,
    paths: Mapping[str, Path],
    options: StoredOptions | None = None,
) -> Sample:
    """Predict a stored sample in this process, block by block, into the files ``paths``
    (output id → path; every output). Returns a sample without members whose ``written`` names
    the files."""
    options = options or StoredOptions()
    threads = thread_budget()  # the statistics pass reads segments in that many threads
    job = prepare_job(
        pipeline, sample, blocking, options, run=run_in_threads(threads), statistics_jobs=threads
    )
    outputs = open_outputs(pipeline, job, paths, probe_dtypes(pipeline, job), options)

    def run(tasks: list[Task], progress: TaskProgress) -> None:
        if progress.done:  # what a resumed run finds written already
            progress.advance(0)
        TaskRunner(pipeline, job, outputs).run_all(tasks, progress.advance)

    return write_pending(job, sample, outputs, run, options)


@attrs.define
class TaskProgress:
    """The blocks of a job written so far, each step reported to ``on_progress``."""

    total: int
    done: int
    on_progress: ProgressCallback | None

    def advance(self, n: int) -> None:
        """``n`` more blocks are written."""
        self.done += n
        if self.on_progress is not None:
            self.on_progress(self.done, self.total)


def write_pending(
    job: StreamJob,
    sample: StoredSample,
    outputs: Mapping[str, OutputArray],
    run: Callable[[list[Task], TaskProgress], None],
    options: StoredOptions,
) -> Sample:
    """Let ``run`` write the job's pending tasks into ``outputs`` (each step reported to
    ``options.on_progress``), then commit every output.

    On any failure (interrupts included) each output is kept for the next resumed run
    (``options.resume``) or removed. Returns a sample without members whose ``written`` names
    the files.
    """
    try:
        tasks = pending_tasks(job, outputs)
        total = job.plan.n_blocks
        done = total - sum(len(t.blocks) for t in tasks)
        run(tasks, TaskProgress(total, done, options.on_progress))
        written = {oid: out.finalize() for oid, out in outputs.items()}
    except BaseException:
        for out in outputs.values():
            if options.resume:
                out.release()  # kept for the next resumed run
            else:
                out.discard()
        raise
    stat: dict[Any, Any] = dict(job.stat)
    return Sample(members={}, stat=stat, id=sample.id, written=written)


__all__ = [
    "Layout",
    "StoredReader",
    "StoredOptions",
    "StreamJob",
    "Task",
    "TaskProgress",
    "TaskRunner",
    "crop_statistics",
    "fingerprint",
    "open_outputs",
    "pending_tasks",
    "plan_layout",
    "predict_stored",
    "prepare_job",
    "probe_dtypes",
    "stream_problem",
    "task_is_done",
    "task_sizes",
    "write_pending",
]
