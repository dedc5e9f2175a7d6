"""Writers in a process of their own, killed in the middle (what a crash or ``kill -9`` leaves).

Import as ``from io_processes import …`` (the test modules' folder is on ``sys.path``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path


def start(code: str, *args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    """``python -c code args`` (``code`` dedented), its output piped, writing no bytecode."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def kill_when_ready(code: str, *args: str, cwd: Path | None = None) -> None:
    """Run ``code`` (see :func:`start`) until it prints ``ready``, then SIGKILL and reap it."""
    proc = start(code, *args, cwd=cwd)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read() if proc.stderr else ""
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
