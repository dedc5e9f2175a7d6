"""docs/cli.md is generated from the click commands and must be current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import click
import pytest
from cli_run import run
from docs_helpers import ROOT, load_script

from bioimageio_core.cli import main

CLI_MD = ROOT / "docs" / "cli.md"
SCRIPT = ROOT / "scripts" / "generate_cli_docs.py"


def _generator() -> ModuleType:
    return load_script("generate_cli_docs")


def _all_commands() -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []

    def walk(prefix: str, group: click.Group) -> None:
        for name, cmd in sorted(group.commands.items()):
            if cmd.hidden:
                continue
            out.append((f"{prefix}{name}", cmd))
            if isinstance(cmd, click.Group):
                walk(f"{prefix}{name} ", cmd)

    walk("", main)
    return out


def test_cli_md_is_current() -> None:
    assert CLI_MD.exists(), "docs/cli.md is missing: run `python scripts/generate_cli_docs.py`"
    committed = CLI_MD.read_text(encoding="utf-8")
    assert committed == _generator().render(), (
        "docs/cli.md is stale: run `python scripts/generate_cli_docs.py` (or `nox -s docs`)"
    )


def test_every_command_option_and_help_is_in_cli_md() -> None:
    text = CLI_MD.read_text(encoding="utf-8")
    commands = _all_commands()
    assert {"validate", "plugins"} <= {name for name, _ in commands}
    for name, cmd in commands:
        assert f"`bioimageio-run {name}`" in text or f"### `{name.split()[-1]}`" in text, name
        first_help_line = (cmd.help or "").strip().splitlines()[0].replace("<", "&lt;")
        assert first_help_line and first_help_line in text, f"help of {name!r} missing"
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                for opt in (*param.opts, *param.secondary_opts):
                    assert f"`{opt}`" in text, f"option {opt} of {name!r} missing from docs/cli.md"
                words = " ".join((param.help or "").split())
                escaped = words.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
                assert escaped in text, f"help of {param.opts[0]} of {name!r} missing"
            elif isinstance(param, click.Argument):
                assert f"`{param.human_readable_name}`" in text


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    out = tmp_path / "cli.md"
    out.write_text("# outdated\n", encoding="utf-8")
    run = [sys.executable, str(SCRIPT), "--out", str(out)]
    env = {"PYTHONPATH": str(ROOT)}
    stale = subprocess.run([*run, "--check"], capture_output=True, text=True, env=env)
    assert stale.returncode == 1 and "stale" in stale.stdout
    assert out.read_text(encoding="utf-8") == "# outdated\n"
    subprocess.run(run, check=True, capture_output=True, env=env)
    again = subprocess.run([*run, "--check"], capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stdout
    assert out.read_text(encoding="utf-8") == CLI_MD.read_text(encoding="utf-8")


HELP_EXAMPLES = [
    *(("Examples:", f"bioimageio-run {c} ", c) for c in ("package", "update-hashes", "add-weights")),
    *(("Example", f"bioimageio-run {c}", c) for c in ("validate", "update-format", "empty-cache")),
    *(("Example", f"bioimageio-run {c} ", c) for c in ("test", "predict", "block-artifacts")),
]


@pytest.mark.parametrize(
    ("heading", "usage", "command"), HELP_EXAMPLES, ids=[c for *_, c in HELP_EXAMPLES]
)
def test_help_shows_examples(heading: str, usage: str, command: str) -> None:
    code, out, _ = run(command, "--help")
    assert code == 0
    assert heading in out and usage in out
