"""Importing the core (and listing plugins) never imports a deep-learning framework."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = ("torch", "onnxruntime", "tensorflow", "keras", "jax")


def _assert_imports_none(code: str, packages: tuple[str, ...], what: str) -> None:
    """Run ``code`` in a fresh interpreter that sees only the source tree (and the venv);
    assert it succeeds and leaves none of ``packages`` (top-level names) imported."""
    check = f"""
import sys
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {packages!r})
print(",".join(loaded))
"""
    result = subprocess.run(
        [sys.executable, "-c", code + check], cwd=ROOT, capture_output=True, text=True,
        timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"{what} imported: {result.stdout.strip()}"


def test_core_cli_and_plugins_command_import_no_framework() -> None:
    code = textwrap.dedent(
        """
        import sys
        import bioimageio_core
        import bioimageio_core.cli
        from bioimageio_core import plugins
        plugins.plugin_infos()
        plugins.processing_ops()
        from click.testing import CliRunner
        result = CliRunner().invoke(bioimageio_core.cli.main, ["plugins"])
        assert result.exit_code == 0, result.output
        """
    )
    _assert_imports_none(code, FRAMEWORKS, "frameworks")


SERVER_PACKAGES = ("starlette", "uvicorn", "anyio", "httpx", "h11")


def test_core_cli_and_remote_client_import_no_server_framework() -> None:
    """Starlette and uvicorn (the ``server`` extra) are imported by ``serve`` only; the client
    side of remote prediction needs none of them."""
    code = textwrap.dedent(
        """
        import sys
        import bioimageio_core
        import bioimageio_core.cli
        import bioimageio_core.pipeline
        import bioimageio_core.remote
        import bioimageio_core.server
        import bioimageio_core.server.config
        from click.testing import CliRunner
        for args in (["--help"], ["serve", "--help"], ["predict", "--help"], ["test", "--help"]):
            result = CliRunner().invoke(bioimageio_core.cli.main, args)
            assert result.exit_code == 0, result.output
        assert "--server" in CliRunner().invoke(bioimageio_core.cli.main, ["predict", "--help"]).output
        """
    )
    _assert_imports_none(code, SERVER_PACKAGES, "server packages")


CLUSTER_PACKAGES = ("dask", "distributed", "tornado", "cloudpickle", "msgpack")


def test_prediction_imports_dask_only_on_a_cluster() -> None:
    """dask.distributed (the ``distributed`` extra) is imported by predictions on a cluster only:
    not by the core, the CLI, ``predict --help``, or a prediction (also out-of-core) here."""
    code = textwrap.dedent(
        """
        import sys
        import bioimageio_core
        import bioimageio_core.cli
        import bioimageio_core.pipeline
        import bioimageio_core.prediction
        import bioimageio_core.execution
        import bioimageio_core.execution.outofcore
        import bioimageio_core.execution.choice
        from click.testing import CliRunner
        result = CliRunner().invoke(bioimageio_core.cli.main, ["predict", "--help"])
        assert result.exit_code == 0, result.output
        assert "--workers" in result.output and "--resume" in result.output
        """
    )
    _assert_imports_none(code, CLUSTER_PACKAGES, "cluster packages")
