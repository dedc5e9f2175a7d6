"""Calls that run at the same time, each in its own thread, for tests of thread safety.

Import as ``from concurrently import run_concurrently`` (``tests/`` is on ``sys.path`` through
``tests/conftest.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable


def run_concurrently(
    target: Callable[..., object],
    args: Iterable[tuple[object, ...]],
    *,
    timeout: float | None = None,
) -> None:
    """Call ``target(*a)`` for each ``a`` of ``args``, all started before any is waited for;
    return when every call has ended (or after ``timeout`` seconds per thread). Exceptions stay
    in their threads: a target records what the test checks."""
    threads = [threading.Thread(target=target, args=a) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
