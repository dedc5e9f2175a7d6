"""Run a Keras model in a separate Python process with its own Keras backend.

Keras reads ``KERAS_BACKEND`` once, when it is first imported, so one process runs one backend.
When keras was imported here with another backend than a model needs, :class:`KerasWorker`
starts ``python -m bioimageio_run_keras.worker`` with ``KERAS_BACKEND`` set, loads the model there
(:class:`~bioimageio_run_keras.adapter.KerasRunner`) and sends inputs and outputs through a pipe
(pickled numpy arrays). The worker writes its messages to a private copy of its standard output
and sends anything printed to standard error, which is kept in a temporary file and shown when
the worker fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from bioimageio_core.plugin import BioimageioError, PluginError

_TAIL_LINES = 12


class KerasWorker:
    """A :class:`~bioimageio_run_keras.adapter.KerasRunner` in a worker process (same interface)."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.source = str(options["source"])
        backend = str(options["backend"])
        self._stderr = tempfile.TemporaryFile()
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bioimageio_run_keras.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._send = Connection(os.dup(self._process.stdin.fileno()), readable=False)
        self._receive = Connection(os.dup(self._process.stdout.fileno()), writable=False)
        self._process.stdin.close()
        self._process.stdout.close()
        info = self._call("load", {**options, "path": str(options["path"])})
        self.backend: str = str(info["backend"])

    def _call(self, command: str, payload: Any) -> Any:
        try:
            self._send.send((command, payload))
            status, result = self._receive.recv()
        except (EOFError, OSError) as e:
            self.close()
            raise PluginError(
                f"the keras worker process for {self.source} stopped unexpectedly "
                f"({type(e).__name__}){self._stderr_tail()}",
                hint="see the worker's messages above; the backend framework may be broken",
            ) from None
        if status == "error":
            kind, message, loc, hint = result
            raise PluginError(f"{message} (in the keras worker process)", loc=loc, hint=hint)
        return result

    def forward(
        self, inputs: Sequence[np.ndarray[Any, Any] | None]
    ) -> list[np.ndarray[Any, Any]] | dict[str, np.ndarray[Any, Any]]:
        arrays = [None if a is None else np.ascontiguousarray(a) for a in inputs]
        result: list[np.ndarray[Any, Any]] | dict[str, np.ndarray[Any, Any]] = self._call(
            "forward", arrays
        )
        return result

    def close(self) -> None:
        """Stop the worker (idempotent)."""
        if self._process.poll() is None:
            try:
                self._send.send(("close", None))
            except OSError:
                pass
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        for connection in (self._send, self._receive):
            connection.close()

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0)
            lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        except (OSError, ValueError):
            return ""
        return (":\n" + "\n".join(lines[-_TAIL_LINES:])) if lines else ""

    def __del__(self) -> None:
        if getattr(self, "_process", None) is not None and self._process.poll() is None:
            self.close()


def _serve(receive: Connection, send: Connection) -> None:
    from bioimageio_run_keras.adapter import KerasRunner

    runner: KerasRunner | None = None
    while True:
        try:
            command, payload = receive.recv()
        except EOFError:
            return
        if command == "close":
            if runner is not None:
                runner.close()
            return
        try:
            if command == "load":
                runner = KerasRunner(**{**payload, "path": Path(payload["path"])})
                send.send(("ok", {"backend": runner.backend}))
            elif command == "forward" and runner is not None:
                send.send(("ok", runner.forward(payload)))
            else:
                raise PluginError(f"unknown worker command {command!r}")
        except BioimageioError as e:
            send.send(("error", (type(e).__name__, e.message, e.loc, e.hint)))
        except Exception as e:  # reported to the parent, which raises it there
            send.send(("error", (type(e).__name__, f"{type(e).__name__}: {e}", None, None)))


def main() -> None:
    """Worker entry point: messages on stdin / a private copy of stdout, prints to stderr."""
    out = os.dup(1)
    os.dup2(2, 1)  # anything the frameworks print goes to stderr, not into the message pipe
    sys.stdout = sys.stderr
    _serve(Connection(0, writable=False), Connection(out, readable=False))


if __name__ == "__main__":
    main()
