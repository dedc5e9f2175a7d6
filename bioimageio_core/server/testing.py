"""Run a real ``bioimageio-run serve`` in a subprocess, for tests (ours and plugin authors').

::

    with ServerProcess(store=tmp_path / "store", token="a" * 32) as server:
        pipeline = create_prediction_pipeline(model, server=server.url)

The process listens on a free port of 127.0.0.1; :attr:`ServerProcess.url` is the address it
printed. Leaving the block sends SIGTERM and waits for the process (its log stays in
:attr:`ServerProcess.log`). Needs the ``server`` extra in the interpreter that runs it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bioimageio_core._closing import Closing

_LISTENING = re.compile(r"listening on (https?://\S+)")


class ServerProcess(Closing):
    """``python -m bioimageio_core serve --port 0 …`` in a subprocess (see the module docs)."""

    def __init__(
        self,
        *,
        store: Path,
        token: str | None = None,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        start_timeout_s: float = 120.0,
    ) -> None:
        self.store = store
        self.token = token
        self.args = list(args)
        self.env = dict(os.environ if env is None else env)
        self.env.pop("BIOIMAGEIO_SERVER_TOKEN", None)
        if token is not None:
            self.env["BIOIMAGEIO_SERVER_TOKEN"] = token
        self.start_timeout_s = start_timeout_s
        self.url = ""
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> ServerProcess:
        command = [
            sys.executable, "-m", "bioimageio_core", "serve", "--port", "0",
            "--store", str(self.store), "--shutdown-timeout", "30", *self.args,
        ]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                for line in self._lines:
                    match = _LISTENING.search(line)
                    if match:
                        self.url = match.group(1)
            if self.url:
                return self
            if self._process.poll() is not None:
                self._reader.join(timeout=5)
                raise RuntimeError(
                    f"the server exited with {self._process.returncode}:\n{self.log}"
                )
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the server did not start within {self.start_timeout_s} s:\n{self.log}")

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            with self._lock:
                self._lines.append(line.rstrip("\n"))

    def terminate(self) -> None:
        """Send SIGTERM (a graceful shutdown); see :meth:`wait`."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)

    def wait(self, timeout_s: float = 60.0) -> int:
        """Wait for the process to end; its exit status (killed after ``timeout_s``)."""
        assert self._process is not None
        try:
            code = self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._process.kill()
            code = self._process.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=5)
        return code

    def stop(self) -> int | None:
        """SIGTERM and wait; the exit status (None if it never started)."""
        if self._process is None:
            return None
        self.terminate()
        return self.wait()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def log(self) -> str:
        """Everything the process printed so far (standard output and error)."""
        with self._lock:
            return "\n".join(self._lines)

    def wait_for_log(self, pattern: str, timeout_s: float = 30.0) -> str:
        """The first log line matching the regex ``pattern`` (waits for it)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                for line in self._lines:
                    if regex.search(line):
                        return line
            time.sleep(0.02)
        raise AssertionError(f"no log line matches {pattern!r} within {timeout_s} s:\n{self.log}")

    def close(self) -> None:
        """:meth:`stop` (``with ServerProcess(...)`` starts the server and stops it on leaving)."""
        self.stop()

    def __enter__(self) -> ServerProcess:
        return self.start()


__all__ = ["ServerProcess"]
