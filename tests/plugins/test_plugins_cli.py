"""`bioimageio-run plugins` through click's CliRunner."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from bioimageio_core.cli import main


def test_plugins_lists_builtins_and_availability(monkeypatch: pytest.MonkeyPatch) -> None:
    from bioimageio_core.ops import _labels

    real = _labels.find_spec
    monkeypatch.setattr(  # as without the optional packages, whatever is installed here
        _labels, "find_spec", lambda name: None if name in ("stardist", "cellpose") else real(name)
    )
    monkeypatch.setenv("BIOIMAGEIO_LOAD_PLUGINS", "")
    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 0, result.output
    assert "builtin-ops" in result.output
    assert "scale_range" in result.output
    assert "stardist_postprocessing: the stardist package is not installed" in result.output
    assert "cellpose_flow_dynamics: the cellpose package is not installed" in result.output


def test_plugins_json_reports_broken_and_usable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cli_broken_plugin.py").write_text("raise ImportError('libfoo.so missing')\n")
    (tmp_path / "cli_good_plugin.py").write_text(
        textwrap.dedent(
            """
            from bioimageio_core.hookspecs import WeightFormatSpec, hookimpl

            @hookimpl
            def bioimageio_weight_formats(register):
                register.add(WeightFormatSpec("cli_fmt", dict, lambda r: None,
                                              lambda: "clilib is not installed"))
            """
        )
    )
    for dist, module in (("cli-broken", "cli_broken_plugin"), ("cli-good", "cli_good_plugin")):
        info = tmp_path / f"{dist.replace('-', '_')}-3.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 3.0\n")
        (info / "entry_points.txt").write_text(f"[bioimageio_core]\n{module} = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("BIOIMAGEIO_LOAD_PLUGINS", "cli_broken_plugin,cli_good_plugin")

    text = CliRunner().invoke(main, ["plugins"])
    assert text.exit_code == 0, text.output
    assert "BROKEN" in text.output and "libfoo.so missing" in text.output
    assert "not usable here: weight format cli_fmt: clilib is not installed" in text.output

    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["cli_broken_plugin"]["status"] == "failed"
    assert rows["cli_broken_plugin"]["distribution"] == "cli-broken"
    assert rows["cli_good_plugin"]["version"] == "3.0"
    assert rows["cli_good_plugin"]["weight_formats"] == ["cli_fmt"]
    assert rows["cli_good_plugin"]["usable"] is False
    assert rows["builtin-ops"]["builtin"] is True
