"""Preparing the next blocks in a background thread while the backend runs, when that pays.

A background thread costs a hand-over per item: up to about a millisecond when the framework's
own threads keep every core busy (they then also compete with the thread for the cores), a few
microseconds when a core is idle. So :func:`prefetched` starts in the calling thread and moves
production to a background thread once either

* producing an item takes :data:`PREFETCH_MIN_SECONDS` or more on average (reading blocks from
  a file, a zarr store or another lazy source, heavy padding), and either the process's thread
  budget (:func:`~bioimageio_core.threads.thread_budget`) holds more than one thread or the
  producer mostly waits (for a disk or a network: less than half of its time on a CPU), or
* a backend call of at least :data:`PREFETCH_MIN_SECONDS` leaves a core of the budget idle (a
  GPU backend, a framework limited to fewer threads than the budget), as reported to
  :meth:`PrefetchPolicy.observe_call`.

Cutting a block out of an in-memory sample for a CPU backend that uses every core stays in the
calling thread: there the thread would only add the hand-over. So does everything in a process
whose budget is one thread (a dask worker with one thread) running a CPU backend: a second busy
thread there would take a core another worker was given.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import attrs

from bioimageio_core.threads import thread_budget, usable_cores

T = TypeVar("T")

PREFETCH_MIN_SECONDS = 1e-3
"""Preparation time per item (average) and backend call time from which the background thread
pays; 0 prepares in the background from the second item on, ``float("inf")`` never does."""

THREAD_NAME_PREFIX = "bioimageio-prefetch"

_DONE = object()


@attrs.define
class PrefetchPolicy:
    """Decides when :func:`prefetched` moves production to the background thread.

    ``min_seconds``: see :data:`PREFETCH_MIN_SECONDS`; ``cores``: the cores the prediction may
    keep busy (default: the thread budget of this process).
    """

    min_seconds: float = attrs.field(factory=lambda: PREFETCH_MIN_SECONDS)
    cores: int = attrs.field(factory=thread_budget)
    backend_leaves_core_idle: bool = False
    _calls: int = 0
    _wall: float = 0.0
    _cpu: float = 0.0

    def observe_call(self, wall_seconds: float, cpu_seconds: float) -> None:
        """Report one backend call: its wall time and the process CPU time spent meanwhile.

        The first call is not judged (frameworks compile, tune and allocate in it); from the
        third on, the calls so far are judged together (one call may be disturbed by other
        processes).
        """
        self._calls += 1
        if self._calls == 1:
            return
        self._wall += wall_seconds
        self._cpu += cpu_seconds
        judged = self._calls - 1
        if judged < 2 or self._wall < self.min_seconds * judged:
            return
        busy_cores = self._cpu / self._wall
        if self.cores - busy_cores >= 1.0:
            self.backend_leaves_core_idle = True

    @property
    def beside_backend(self) -> bool:
        """Whether CPU work (decoding, encoding, writing) may run in a thread beside the backend
        calls: the budget holds more than one core, or the backend leaves its core idle."""
        return self.cores > 1 or self.backend_leaves_core_idle

    def in_background(
        self, seconds_spent: float, items: int, cpu_seconds: float | None = None
    ) -> bool:
        """Whether to produce the next items in the background, after ``items`` items took
        ``seconds_spent`` (``cpu_seconds`` of this process's CPU time; None: not measured,
        counted as all CPU) in the calling thread."""
        if items == 0:
            return False
        if self.backend_leaves_core_idle:
            return True
        if seconds_spent < self.min_seconds * items:
            return False
        cpu = seconds_spent if cpu_seconds is None else cpu_seconds
        return self.cores > 1 or cpu <= 0.5 * seconds_spent


def prefetched(
    items: Iterable[T], policy: PrefetchPolicy | None = None
) -> Generator[T, None, None]:
    """Yield ``items``; a background thread produces the next one while the caller uses one.

    At most two items exist at a time (the one yielded and the one being prepared). Without a
    ``policy`` the background thread produces every item; with one, items are produced in the
    calling thread until ``policy.in_background`` says otherwise (checked before each item).
    Closing the generator stops the thread.
    """
    iterator = iter(items)
    if policy is not None:
        spent, cpu, count = 0.0, 0.0, 0
        while not policy.in_background(spent, count, cpu):
            start, cpu_start = time.perf_counter(), time.process_time()
            item = next(iterator, _DONE)
            if item is _DONE:
                return
            spent += time.perf_counter() - start
            cpu += time.process_time() - cpu_start
            count += 1
            yield item  # type: ignore[misc]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD_NAME_PREFIX) as pool:
        future = pool.submit(next, iterator, _DONE)
        while True:
            item = future.result()
            if item is _DONE:
                return
            future = pool.submit(next, iterator, _DONE)
            yield item  # type: ignore[misc]


__all__ = ["PREFETCH_MIN_SECONDS", "PrefetchPolicy", "prefetched", "usable_cores"]
