"""Import rules: modules import what they use at the top; the exceptions are named and tested.

* Every module of the package imports on its own, first, in a fresh interpreter: no import cycle
  hides behind the order in which the test suite happens to import things.
* The command line stays light: ``bioimageio-run`` and every ``--help`` load neither numpy nor
  YAML, requests or tqdm; each command imports the library when it runs.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_every_module_imports_first_on_its_own() -> None:
    out = _run(
        """
        import importlib, pkgutil, sys, traceback
        import bioimageio_core

        names = sorted(
            m.name
            for m in pkgutil.walk_packages(bioimageio_core.__path__, "bioimageio_core.")
            if not m.name.endswith(".__main__")
        )
        failed = []
        for name in names:
            for loaded in [m for m in sys.modules if m.split(".")[0] == "bioimageio_core"]:
                del sys.modules[loaded]
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as e:  # an optional extra (server, stardist, ...)
                if e.name is None or e.name.split(".")[0] == "bioimageio_core":
                    failed.append(f"{name}: {e!r}")
            except Exception as e:
                failed.append(f"{name}: {''.join(traceback.format_exception_only(e)).strip()}")
        print(len(names))
        print("\\n".join(failed))
        """
    )
    count, *failed = out.splitlines()
    assert int(count) > 100
    assert failed == []


def test_command_line_help_loads_no_library_dependency() -> None:
    out = _run(
        """
        import sys
        from click.testing import CliRunner
        import bioimageio_core.cli

        main = bioimageio_core.cli.main
        for args in [["--help"], *([name, "--help"] for name in main.commands)]:
            result = CliRunner().invoke(main, args)
            assert result.exit_code == 0, (args, result.output)
        heavy = ("numpy", "yaml", "requests", "tqdm", "bioimageio_core.loading")
        print(",".join(m for m in heavy if m in sys.modules))
        """
    )
    assert out == "", f"loaded by the command line before any command ran: {out}"
