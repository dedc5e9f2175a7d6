"""Write: the inner regions of output blocks into the whole outputs.

Outputs go into the caller's preallocated arrays, into arrays a factory creates once the first
block shows the dtype (files written block by block: :class:`FileOutputs`), or into new arrays in
memory.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bioimageio_core.blocks import Block, SupportsSetItem, output_shape, write_inner
from bioimageio_core.errors import BioimageioError, InputError, OutputError
from bioimageio_core.execution.read import Array
from bioimageio_core.io import ArrayMetadata, OutputArray, open_output_array
from bioimageio_core.shapes import ModelShape, TensorAxis
from bioimageio_core.tensor import Tensor

OutputArrays = Mapping[str, SupportsSetItem]
"""Preallocated outputs by output tensor id, each of the whole output sample's shape."""
OutputFactory = Callable[[str, tuple[int, ...], np.dtype[Any]], SupportsSetItem]
"""``factory(output_id, shape, dtype)`` creates an output array once the first block's output
(after blockwise postprocessing) shows its dtype."""
Outputs = OutputArrays | OutputFactory


class OutputTargets:
    """The arrays one prediction writes its outputs into, created when first written to.

    ``outputs``: the caller's arrays or factory (None: new arrays in memory). Outputs in
    ``in_memory`` (those whose shape postprocessing changes) are always stitched in memory
    first. ``io_shape``: the outputs as the model returns them.

    Raises:
        InputError: ``outputs`` lacks an array for an output.
    """

    def __init__(
        self, outputs: Outputs | None, io_shape: ModelShape, in_memory: Collection[str] = ()
    ) -> None:
        self.io_shape = io_shape
        self.in_memory = frozenset(in_memory)
        self.factory: OutputFactory | None = outputs if callable(outputs) else None
        self.arrays: dict[str, Any] = {}
        if outputs is not None and not callable(outputs):
            ids = [t.id for t in io_shape.outputs]
            missing = [o for o in ids if o not in outputs]
            if missing:
                raise InputError(
                    f"'outputs' lacks arrays for output(s) {missing}; give one per model output "
                    f"({ids})"
                )
            self.arrays = {k: v for k, v in outputs.items() if k not in self.in_memory}

    def write(
        self,
        output_id: str,
        block: Block,
        inner: Array,
        sizes: Mapping[TensorAxis, int | None],
    ) -> None:
        """Write ``inner`` (the inner region of ``block``) into the output; ``sizes``: of the
        whole outputs (to create the array on the first write)."""
        target = self.arrays.get(output_id)
        if target is None:
            shape = output_shape(sizes, self.io_shape.tensor(output_id))
            if self.factory is None or output_id in self.in_memory:
                target = np.empty(shape, dtype=inner.dtype)
            else:
                target = self.factory(output_id, shape, inner.dtype)
            self.arrays[output_id] = target
        write_inner(target, block, inner)

    def tensors(self) -> dict[str, Tensor]:
        """The written outputs as tensors (axes as the model returns them)."""
        return {
            t.id: Tensor(_as_array(self.arrays[t.id]), t.axis_ids) for t in self.io_shape.outputs
        }


def _as_array(array: Any) -> Array:
    return array if isinstance(array, np.ndarray) else np.asarray(array)


class WriteBehind:
    """Runs writes in order in one background thread while the caller computes the next blocks.

    At most ``depth`` calls wait (so at most that many blocks are held); the first error a
    write raises is raised in the calling thread at the next :meth:`submit` or at
    :meth:`close` (later writes are then skipped). Use it as a context manager: leaving the
    block waits for every write (or, after an error in the block, only for the one running).
    """

    def __init__(self, depth: int = 4, name: str = "bioimageio-write") -> None:
        self._queue: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.Queue(maxsize=depth)
        )
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:
                function, args = item
                try:
                    function(*args)
                except BaseException as e:  # raised in the calling thread
                    self._error = e

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, function: Callable[..., Any], *args: Any) -> None:
        """Queue ``function(*args)`` (blocks while ``depth`` calls wait)."""
        self._raise()
        self._queue.put((function, args))

    def close(self) -> None:
        """Wait for every queued write; raise the first error of any."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.close()
            return
        self._error = self._error or exc  # skip what is still queued
        self._queue.put(None)
        self._thread.join()


STREAMED_SUFFIXES = (".npy", ".tif", ".tiff")
"""Formats :class:`FileOutputs` writes block by block (memory-mapped)."""


class FileOutputs:
    """An output factory that creates output files as memory maps, so that blocks are written
    straight to disk.

    Each file is written under a temporary name and moved into place by :meth:`finish` (or
    removed by :meth:`discard`); ``metadata`` (units, pixel sizes, offsets by output id) is
    recorded where the format can. Formats that cannot be memory-mapped (or dtypes a format cannot
    hold) fall back to an array in memory; :meth:`finish` says which outputs were written.
    """

    def __init__(
        self,
        paths: Mapping[str, Path],
        axes: Mapping[str, tuple[str, ...]],
        overwrite: bool,
        metadata: Mapping[str, ArrayMetadata] | None = None,
    ) -> None:
        self.paths = paths
        self.axes = axes
        self.overwrite = overwrite
        self.metadata = dict(metadata or {})
        self.opened: dict[str, OutputArray] = {}

    def __call__(self, output_id: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Any:
        path = self.paths[output_id]
        if path.suffix.lower() in STREAMED_SUFFIXES and dtype.kind != "b":
            try:
                opened = open_output_array(
                    path,
                    shape,
                    dtype,
                    self.axes[output_id],
                    overwrite=self.overwrite,
                    metadata=self.metadata.get(output_id),
                )
            except OutputError:
                raise  # exists already, disk full, …: saving at the end would fail the same way
            except (BioimageioError, ImportError, ValueError, TypeError):
                pass  # saved from memory at the end instead
            else:
                if isinstance(opened.array, np.ndarray):
                    self.opened[output_id] = opened
                    return opened.array
                opened.discard()
        return np.empty(shape, dtype=dtype)

    def finish(self) -> set[str]:
        """Put the files written so far in place; returns their output ids."""
        for opened in self.opened.values():
            opened.commit()
        return set(self.opened)

    def discard(self) -> None:
        """Remove the files not yet in place (after an error)."""
        for opened in self.opened.values():
            opened.discard()


__all__ = [
    "STREAMED_SUFFIXES",
    "FileOutputs",
    "OutputArrays",
    "OutputFactory",
    "OutputTargets",
    "Outputs",
    "WriteBehind",
]
