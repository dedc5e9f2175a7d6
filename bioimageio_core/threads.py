"""How many threads a prediction in this process may keep busy: its *thread budget*.

By default the budget is the CPU cores this process may run on. A dask worker started with
``threads`` threads (``--workers N``, or any cluster: the worker's ``nthreads``) has that budget
instead, and it governs every pool the prediction uses, so that N workers × T threads never
ask for more than the cores they were given:

* the framework's own threads (set through the environment the worker starts with, e.g.
  ``BIOIMAGEIO_ONNX_INTRA_OP_THREADS``, ``OMP_NUM_THREADS``: :func:`thread_environment`);
* zarr's codec thread pool (``threading.max_workers`` of zarr's configuration);
* the read-ahead and write-behind threads of the block loop, which run beside the model only
  when the model leaves a core of the budget idle (:class:`~bioimageio_core.prefetch.PrefetchPolicy`);
* the statistics pass, which runs in as many threads as the budget holds.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

_budget: int | None = None
_lock = threading.Lock()

LIBRARY_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "BIOIMAGEIO_ONNX_INTRA_OP_THREADS",
    "ZARR_THREADING__MAX_WORKERS",
)
"""Environment variables that set the threads of the libraries a prediction uses (numerical
libraries and torch, tensorflow, onnxruntime, zarr's codec pool); read when each starts."""


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on every platform
        return os.cpu_count() or 1


def thread_budget() -> int:
    """The threads a prediction in this process may keep busy (see the module docstring)."""
    return _budget if _budget is not None else usable_cores()


def set_thread_budget(threads: int | None) -> None:
    """Limit predictions in this process to ``threads`` busy threads (None: the usable cores).

    Also limits zarr's codec pool to ``threads`` where zarr has not started it yet (zarr keeps
    the pool it started; a process that sets its budget before reading zarr always gets it).
    """
    global _budget
    if threads is not None and threads < 1:
        raise ValueError(f"a thread budget must be at least 1 (got {threads})")
    with _lock:
        _budget = threads
    if threads is not None:
        _limit_zarr(threads)


def thread_environment(threads: int) -> dict[str, str]:
    """Environment variables that give a new process's libraries ``threads`` threads each
    (:data:`LIBRARY_THREAD_VARIABLES`)."""
    return dict.fromkeys(LIBRARY_THREAD_VARIABLES, str(threads))


def missing_thread_environment(threads: int, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of :func:`thread_environment` that ``environ`` does not set yet (what a
    process already running can still apply before it loads the library)."""
    return {k: v for k, v in thread_environment(threads).items() if not environ.get(k)}


def _limit_zarr(threads: int) -> None:
    try:
        import zarr
    except ImportError:  # zarr is an extra; nothing to limit without it
        return
    zarr.config.set({"threading.max_workers": threads})


__all__ = [
    "LIBRARY_THREAD_VARIABLES",
    "missing_thread_environment",
    "set_thread_budget",
    "thread_budget",
    "thread_environment",
    "usable_cores",
]
