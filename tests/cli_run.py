"""``bioimageio-run`` in-process for tests (click's ``CliRunner``; exceptions are caught and give
exit code 1, as on a terminal).

Import as ``from cli_run import run`` (``tests/`` is on ``sys.path`` through ``tests/conftest.py``).
"""

from __future__ import annotations

from click.testing import CliRunner, Result

from bioimageio_core.cli import main


def invoke(*args: str) -> Result:
    """``bioimageio-run ARGS``: click's result (exit code, output, stdout, stderr)."""
    return CliRunner().invoke(main, list(args))


def run(*args: str) -> tuple[int, str, str]:
    """``bioimageio-run ARGS``: exit code, stdout, stderr."""
    result = invoke(*args)
    return result.exit_code, result.stdout, result.stderr
