"""The in-process executor: the block loop plan → read → batch → forward → stitch → write.

Batches are read and stacked by :func:`~bioimageio_core.prefetch.prefetched` (in a background
thread while the backend runs, when that pays); everything else runs in the calling thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from bioimageio_core.blocks import SampleBlock, batched
from bioimageio_core.execution.batch import stack
from bioimageio_core.execution.forward import Forward
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
    done = 0
    try:
        for batch, arrays, n_stacked in batches:
            wall, cpu = time.perf_counter(), time.process_time()
            results = forward(adapter, arrays, n_stacked, len(batch))
            policy.observe_call(time.perf_counter() - wall, time.process_time() - cpu)
            for sb, outputs in zip(batch, results, strict=True):
                for oid, (block, inner) in stitcher(sb, outputs).items():
                    targets.write(oid, block, inner, stitcher.output_sizes)
            done += len(batch)
            if on_progress is not None:
                on_progress(done, plan.n_blocks)
    finally:
        batches.close()  # stops the prefetching thread


__all__ = ["Batch", "ProgressCallback", "read_batches", "run_blocks"]
