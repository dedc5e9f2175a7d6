"""Block preparation in the background thread: order, look-ahead and when it is used."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from bioimageio_core.prefetch import THREAD_NAME_PREFIX, PrefetchPolicy, prefetched


def test_prefetched_yields_everything_in_order_and_prepares_ahead() -> None:
    produced: list[int] = []

    def items() -> Any:
        for i in range(5):
            produced.append(i)
            yield i

    seen = []
    for item in prefetched(items()):
        # without asking for more, the next item gets produced while this one is in use
        deadline = time.monotonic() + 2.0
        while len(produced) < min(item + 2, 5) and time.monotonic() < deadline:
            time.sleep(0.001)
        seen.append((item, len(produced)))
    assert seen == [(0, 2), (1, 3), (2, 4), (3, 5), (4, 5)]


def _producer(n: int, seconds: float, where: list[str]) -> Any:
    for i in range(n):
        if seconds:
            time.sleep(seconds)  # like reading a block from a file
        where.append(threading.current_thread().name)
        yield i


def test_cheap_items_stay_in_the_calling_thread() -> None:
    where: list[str] = []
    policy = PrefetchPolicy(min_seconds=1.0, cores=1)
    assert list(prefetched(_producer(20, 0.0, where), policy)) == list(range(20))
    assert set(where) == {threading.current_thread().name}


def test_slow_items_move_to_the_background_thread() -> None:
    where: list[str] = []
    policy = PrefetchPolicy(min_seconds=0.005, cores=1)
    assert list(prefetched(_producer(6, 0.02, where), policy)) == list(range(6))
    assert where[0] == threading.current_thread().name  # measured in the calling thread
    assert all(name.startswith(THREAD_NAME_PREFIX) for name in where[1:])


@pytest.mark.parametrize(
    ("cores", "seconds", "cpu", "background"),
    [
        (1, 0.1, 0.09, False),  # decoding on a budget of one core: stays in the caller
        (1, 0.1, None, False),  # not measured: counted as CPU work
        (1, 0.1, 0.01, True),  # waiting for a disk or a network: worth a thread
        (2, 0.1, 0.09, True),  # a second core of the budget takes the work
        (2, 0.0005, 0.0, False),  # too cheap to hand over
    ],
)
def test_slow_items_move_to_the_background_when_a_core_or_the_wait_allows(
    cores: int, seconds: float, cpu: float | None, background: bool
) -> None:
    policy = PrefetchPolicy(min_seconds=0.001, cores=cores)
    assert policy.in_background(seconds, 1, cpu) == background
    assert policy.beside_backend == (cores > 1)  # writes beside the backend: a second core


def test_a_backend_that_leaves_a_core_idle_moves_cheap_items_to_the_background() -> None:
    where: list[str] = []
    policy = PrefetchPolicy(min_seconds=0.001, cores=4)
    for i in prefetched(_producer(6, 0.0, where), policy):
        policy.observe_call(wall_seconds=0.01, cpu_seconds=0.01)  # one busy core of four
        # the first call is not judged, the next two together
        assert policy.backend_leaves_core_idle == (i >= 2)
    assert where[:3] == [threading.current_thread().name] * 3
    assert all(name.startswith(THREAD_NAME_PREFIX) for name in where[3:])


@pytest.mark.parametrize(
    ("cores", "wall", "cpu", "idle"),
    [
        (2, 0.1, 0.19, False),  # both cores busy (a CPU framework with two threads)
        (2, 0.1, 0.09, True),  # one of two cores busy
        (16, 0.1, 0.1, True),  # a GPU backend: the calling thread waits, other cores idle
        (1, 0.1, 0.1, False),  # the only core is busy
        (1, 0.1, 0.0, True),  # the only core idles while the backend waits (e.g. for a GPU)
        (16, 0.0005, 0.0, False),  # calls shorter than min_seconds: no time to win
    ],
)
def test_idle_core_rule(cores: int, wall: float, cpu: float, idle: bool) -> None:
    policy = PrefetchPolicy(min_seconds=0.001, cores=cores)
    policy.observe_call(1.0, 0.0)  # the first call (compiling, tuning) is not judged
    policy.observe_call(wall, cpu)
    assert not policy.backend_leaves_core_idle  # one call alone is not judged either
    policy.observe_call(wall, cpu)
    assert policy.backend_leaves_core_idle == idle
    assert policy.in_background(0.0, 1) == idle


def test_one_disturbed_call_does_not_decide() -> None:
    policy = PrefetchPolicy(min_seconds=0.001, cores=2)
    policy.observe_call(0.5, 0.5)
    policy.observe_call(0.1, 0.05)  # another process took a core during this call
    for _ in range(5):
        policy.observe_call(0.1, 0.2)
    assert not policy.backend_leaves_core_idle


def test_limits_of_the_setting() -> None:
    never = PrefetchPolicy(min_seconds=float("inf"), cores=64)
    for _ in range(3):
        never.observe_call(1.0, 0.0)
    assert not never.in_background(100.0, 1)
    always = PrefetchPolicy(min_seconds=0.0, cores=1)
    assert not always.in_background(0.0, 0)  # the first item is produced in the caller
    assert always.in_background(0.0, 1)
