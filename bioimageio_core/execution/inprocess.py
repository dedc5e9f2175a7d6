"""The in-process executor: the block loop plan → read → batch → forward → stitch → write.

Batches are read and stacked by :func:`~bioimageio_core.prefetch.prefetched` (in a background
thread while the backend runs, when that pays). Forward calls run in the calling thread, or, for
an adapter that keeps several in flight (:attr:`ModelAdapter.calls_in_flight`, the ``remote``
adapter), in that many worker threads while the calling thread stitches and writes; results are
taken in block order either way, so the output is the same.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from bioimageio_core.blocks import SampleBlock, batched
from bioimageio_core.execution.batch import stack
from bioimageio_core.execution.forward import Call, Forward
from bioimageio_core.execution.plan import BlockPlan
from bioimageio_core.execution.read import Array, BlockReader
from bioimageio_core.execution.stitch import Stitcher
from bioimageio_core.execution.write import OutputTargets
from bioimageio_core.prefetch import PrefetchPolicy, prefetched

if TYPE_CHECKING:
    from bioimageio_core.adapters import ModelAdapter

ProgressCallback = Callable[[int, int], None]
"""``callback(blocks_done, blocks_total)``, called after every forward call."""

Batch = tuple[list[SampleBlock], dict[str, Array], int]
"""Blocks of one forward call, their stacked data and the number of blocks stacked."""

Outputs = list[dict[str, Array]]
"""The outputs of each block of one forward call."""

ForwardCalls = Callable[["ModelAdapter", Sequence[Call]], list[Outputs]]
"""``calls(adapter, calls)``: :meth:`Forward.calls`, or it wrapped (e.g. in a lock)."""

FORWARD_THREAD_PREFIX = "bioimageio-forward"


def read_batches(
    blocks: Iterable[SampleBlock],
    reader: BlockReader,
    plan: BlockPlan,
    input_axes: dict[str, tuple[str, ...]],
) -> Iterable[Batch]:
    """Read and stack the blocks, ``plan.batch_size`` per forward call (lazily)."""

    def prepare(batch: list[SampleBlock]) -> Batch:
        arrays, n_stacked = stack([reader(sb) for sb in batch], input_axes, plan.fill_to)
        return batch, arrays, n_stacked

    return map(prepare, batched(blocks, plan.batch_size))


def grouped(batches: Iterable[Batch], limit: int) -> Iterator[list[Batch]]:
    """Consecutive batches, as many together as fit in ``limit`` bytes of input (at least one;
    ``limit`` 0: one each)."""
    group: list[Batch] = []
    size = 0
    for batch in batches:
        nbytes = sum(a.nbytes for a in batch[1].values())
        if group and size + nbytes > limit:
            yield group
            group, size = [], 0
        group.append(batch)
        size += nbytes
    if group:
        yield group


def forwarded(
    batches: Iterable[Batch],
    adapter: ModelAdapter,
    forward: ForwardCalls,
    policy: PrefetchPolicy,
) -> Generator[tuple[list[SampleBlock], Outputs], None, None]:
    """Each batch's blocks with their outputs, in the order of ``batches``.

    Consecutive batches go to the adapter together, as many as fit in its
    :attr:`~ModelAdapter.request_bytes`. With ``adapter.calls_in_flight`` n > 1, up to n such
    requests run at once in worker threads while the caller handles earlier results; each wait
    for a result is reported to ``policy``. An error of a call is raised when its turn comes;
    calls not yet started are cancelled, and the ones running are waited for (the adapter stays
    usable).
    """
    depth = max(1, adapter.calls_in_flight)

    def call(group: list[Batch]) -> list[Outputs]:
        return forward(adapter, [(arrays, n, len(blocks)) for blocks, arrays, n in group])

    groups = grouped(batches, adapter.request_bytes)
    if depth == 1:
        for group in groups:
            wall, cpu = time.perf_counter(), time.process_time()
            results = call(group)
            policy.observe_call(time.perf_counter() - wall, time.process_time() - cpu)
            for (blocks, _, _), outputs in zip(group, results, strict=True):
                yield blocks, outputs
        return
    pending: deque[tuple[list[Batch], Future[list[Outputs]]]] = deque()

    def next_results() -> Iterator[tuple[list[SampleBlock], Outputs]]:
        group, future = pending.popleft()
        wall, cpu = time.perf_counter(), time.process_time()
        results = future.result()
        policy.observe_call(time.perf_counter() - wall, time.process_time() - cpu)
        for (blocks, _, _), outputs in zip(group, results, strict=True):
            yield blocks, outputs

    with ThreadPoolExecutor(depth, thread_name_prefix=FORWARD_THREAD_PREFIX) as pool:
        try:
            for group in groups:
                pending.append((group, pool.submit(call, group)))
                if len(pending) >= depth:
                    yield from next_results()
            while pending:
                yield from next_results()
        finally:
            for _, future in pending:
                future.cancel()


def run_blocks(
    plan: BlockPlan,
    reader: BlockReader,
    adapter: ModelAdapter,
    forward: Forward,
    stitcher: Stitcher,
    targets: OutputTargets,
    *,
    on_progress: ProgressCallback | None = None,
) -> None:
    """Predict every block of ``plan`` in this process and write the outputs into ``targets``."""
    policy = PrefetchPolicy()
    batches = prefetched(read_batches(plan.grid, reader, plan, forward.input_axes), policy)
    results = forwarded(batches, adapter, forward.calls, policy)
    done = 0
    try:
        for batch, outputs_per_block in results:
            for sb, outputs in zip(batch, outputs_per_block, strict=True):
                for oid, (block, inner) in stitcher(sb, outputs).items():
                    targets.write(oid, block, inner, stitcher.output_sizes)
            done += len(batch)
            if on_progress is not None:
                on_progress(done, plan.n_blocks)
    finally:
        results.close()  # waits for forward calls in flight
        batches.close()  # stops the prefetching thread


__all__ = [
    "Batch",
    "ForwardCalls",
    "Outputs",
    "ProgressCallback",
    "forwarded",
    "grouped",
    "read_batches",
    "run_blocks",
]
