"""Support of the fuzz suite: a guard that records every file the code under test writes
(Python audit events), a cap on the memory an example may take, and the seed models on disk."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_TWO_PATHS = {"os.rename", "os.link", "os.symlink", "shutil.copyfile", "shutil.move"}
_ONE_PATH = {"os.remove", "os.rmdir", "os.mkdir", "shutil.rmtree", "os.truncate", "os.chmod"}


def written_paths(event: str, args: tuple[Any, ...]) -> list[Any]:
    """The paths an audit event writes to or removes (empty for reads and other events)."""
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None))[:3]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS
        )
        return [path] if writes and isinstance(path, (str, bytes, os.PathLike)) else []
    if event in _TWO_PATHS:
        return [a for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
    if event in _ONE_PATH and args and isinstance(args[0], (str, bytes, os.PathLike)):
        return [args[0]]
    return []


@attrs.define
class WriteGuard:
    """Records writes outside the allowed folders while :meth:`watching`."""

    allowed: tuple[str, ...] = ()
    active: bool = False
    violations: list[str] = attrs.Factory(list)

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        for path in written_paths(event, args):
            text = os.path.abspath(os.fsdecode(path))
            if text == os.devnull:  # writes nothing anywhere
                continue
            if not any(text == root or text.startswith(root + os.sep) for root in self.allowed):
                self.violations.append(f"{event}: {text}")

    @contextmanager
    def watching(self, *roots: Path) -> Iterator[list[str]]:
        """Record writes outside ``roots``; yields the list of violations."""
        self.allowed = tuple(os.path.abspath(r) for r in roots)
        self.violations = []
        self.active = True
        try:
            with memory_cap(EXTRA_MEMORY):
                yield self.violations
        finally:
            self.active = False


EXTRA_MEMORY = 2 * 1024**3
"""Address space an example may add: a description asking for a huge array gets a MemoryError
(which must become the project's own error) instead of exhausting the machine's memory."""


@contextmanager
def memory_cap(extra: int) -> Iterator[None]:
    """Lower the soft address-space limit to the current size + ``extra`` (Linux), then restore."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        status = Path("/proc/self/status").read_text()
    except (ImportError, OSError):
        yield
        return
    size_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmSize:"))
    cap = size_kb * 1024 + extra
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@attrs.frozen
class FuzzModels:
    """The folder holding the seeds' files, the seed descriptions by version, and the root of
    every temporary folder of the test session (the only place writes are allowed)."""

    folder: Path
    seeds: dict[str, dict[str, Any]]
    temp_root: Path
