"""Importing the core (and listing plugins) never imports a deep-learning framework."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = ("torch", "onnxruntime", "tensorflow", "keras", "jax")


def test_core_cli_and_plugins_command_import_no_framework() -> None:
    code = textwrap.dedent(
        f"""
        import sys
        import bioimageio_core
        import bioimageio_core.cli
        from bioimageio_core import plugins
        plugins.plugin_infos()
        plugins.processing_ops()
        from click.testing import CliRunner
        result = CliRunner().invoke(bioimageio_core.cli.main, ["plugins"])
        assert result.exit_code == 0, result.output
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {FRAMEWORKS!r})
        print(",".join(loaded))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"frameworks imported: {result.stdout.strip()}"
