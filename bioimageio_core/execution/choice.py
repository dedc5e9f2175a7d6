"""Where a sample runs: in memory (today's path), out-of-core in this process, or on a cluster.

Out-of-core prediction reads stored inputs block by block and writes the outputs block by block
(:mod:`~bioimageio_core.execution.outofcore`). It is chosen

* always on a cluster (``client``, ``--workers``, ``--scheduler``), where it is the only way;
* when asked (``out_of_core=True``);
* by default (``out_of_core=None``) when the outputs go to files, every input is a file, and an
  input is stored in a chunked container (zarr, OME-Zarr, HDF5) or the inputs hold at least
  :data:`STREAM_MIN_BYTES`;

and only when the prediction can run that way (:func:`~.outofcore.stream_problem`); when it was
asked for and cannot, the error says why. The numbers do not depend on the choice.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from bioimageio_core.digest import AxesArg
from bioimageio_core.errors import InputError
from bioimageio_core.execution.outofcore import stream_problem
from bioimageio_core.execution.stored import StoredSample, digest_stored, is_stored
from bioimageio_core.io import parse_location

if TYPE_CHECKING:
    from dask.distributed import Client

    from bioimageio_core.pipeline import PredictionPipeline

STREAM_MIN_BYTES = 256 * 2**20
"""Inputs (files) at least this large are predicted out-of-core by default."""

CHUNKED_SUFFIXES = (".zarr", ".h5", ".hdf5", ".hdf")
"""Containers whose arrays are never read whole by default."""

BLOCKWISE_SUFFIXES = (".npy", ".tif", ".tiff", ".h5", ".hdf5", ".hdf", ".zarr")
"""Output formats written block by block."""

SHARED_SUFFIXES = (".zarr",)
"""Output formats several processes write at once (zarr, OME-Zarr)."""


@attrs.frozen(eq=False)
class Cluster:
    """A dask client whose workers hold the model (the worker plugin ``plugin``)."""

    client: Client
    plugin: str

    @property
    def workers(self) -> int:
        from bioimageio_core.execution.distributed import worker_count

        return worker_count(self.client)


@attrs.frozen(eq=False)
class Execution:
    """How samples run: ``out_of_core`` (None: by default, see the module docstring),
    ``resume`` (continue the outputs an interrupted run left), ``cluster`` (None: this
    process), ``blocks_per_task`` (out-of-core work unit; None: one batch)."""

    out_of_core: bool | None = None
    resume: bool = False
    cluster: Cluster | None = None
    blocks_per_task: int | None = None

    @property
    def forced(self) -> bool:
        return self.cluster is not None or self.out_of_core is True


def input_files(inputs: Any, input_ids: Sequence[str]) -> dict[str, Any] | None:
    """The inputs as input id → file when every given input is a file, else None."""
    if is_stored(inputs) and len(input_ids) == 1:
        return {input_ids[0]: inputs}
    if isinstance(inputs, Mapping) and inputs and all(is_stored(v) for v in inputs.values()):
        return {str(k): v for k, v in inputs.items()}
    return None


def _size(location: Any) -> int:
    path = parse_location(os.fspath(location)).path
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0


def large(files: Mapping[str, Any]) -> bool:
    """Whether stored inputs are predicted out-of-core by default: one is in a chunked
    container, or together they hold at least :data:`STREAM_MIN_BYTES`."""
    if any(parse_location(os.fspath(v)).suffix in CHUNKED_SUFFIXES for v in files.values()):
        return True
    return sum(_size(v) for v in files.values()) >= STREAM_MIN_BYTES


def stored_sample(
    pipeline: PredictionPipeline,
    inputs: Any,
    *,
    axes: AxesArg,
    sample_id: Hashable,
    paths: Mapping[str, Path],
    execution: Execution,
    fresh: bool,
    skip_preprocessing: bool,
    skip_postprocessing: bool,
) -> StoredSample | None:
    """The sample to predict out-of-core, or None to predict it in memory.

    Raises:
        InputError: out-of-core prediction was asked for (or a cluster given) but cannot run,
            with the reason.
    """
    if execution.out_of_core is False and execution.cluster is None:
        return None

    def refuse(reason: str, hint: str | None = None) -> None:
        if execution.forced:
            where = "on a cluster" if execution.cluster is not None else "out-of-core"
            raise InputError(f"cannot predict {where}: {reason}", hint=hint)

    files = input_files(inputs, [t.id for t in pipeline.shape.inputs])
    if files is None:
        refuse("the inputs are not all files", "give each input as a path (zarr, OME-Zarr, …)")
        return None
    if not paths:
        refuse("the outputs are not written to files", "give save_output_path (--outputs)")
        return None
    suffixes = SHARED_SUFFIXES if execution.cluster is not None else BLOCKWISE_SUFFIXES
    unsuitable = [str(p) for p in paths.values() if parse_location(p).suffix not in suffixes]
    if unsuitable:
        refuse(
            f"the outputs {unsuitable} cannot be written "
            + ("by several workers" if execution.cluster is not None else "block by block"),
            f"write {' or '.join(suffixes)} outputs",
        )
        return None
    problem = stream_problem(
        pipeline,
        skip_preprocessing=skip_preprocessing,
        skip_postprocessing=skip_postprocessing,
        fresh=fresh,
    )
    if problem is not None:
        refuse(f"this model cannot: {problem}")
        return None
    if not execution.forced and not large(files):
        return None
    return digest_stored(
        pipeline.shape,
        files,
        axes=axes,
        sample_id=sample_id,
        optional=pipeline.optional_inputs,
    )


__all__ = [
    "BLOCKWISE_SUFFIXES",
    "CHUNKED_SUFFIXES",
    "SHARED_SUFFIXES",
    "STREAM_MIN_BYTES",
    "Cluster",
    "Execution",
    "input_files",
    "large",
    "stored_sample",
]
