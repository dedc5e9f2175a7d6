"""CLI commands validate, update-format and empty-cache (click's CliRunner)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cli_run import run
from click.testing import CliRunner

from bioimageio_core.cli import main
from bioimageio_core.sources import download

if TYPE_CHECKING:
    from tests.conftest import FileServer

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_cli_validate_unreadable_source_fails_in_one_line(tmp_path: Path) -> None:
    code, out, err = run("validate", str(tmp_path / "missing.yaml"))
    assert code == 1
    assert "no such file or folder" in out
    assert "Traceback" not in out + err


@pytest.mark.parametrize("fmt", ["json", "md", "text"])
def test_cli_validate_formats_for_a_failed_source(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "rdf.yaml").write_text("[1, 2]\n")
    code, out, _ = run("validate", str(tmp_path), "--format", fmt)
    assert code == 1
    if fmt == "json":
        data = json.loads(out)
        assert data["status"] == "failed"
        assert "must hold a mapping" in data["details"][0]["errors"][0]["msg"]
    elif fmt == "md":
        assert out.startswith("# ❌") and "must hold a mapping" in out
    else:
        assert out.startswith("FAILED:") and "must hold a mapping" in out


def test_cli_update_format_invalid_source(tmp_path: Path) -> None:
    code, out, err = run("update-format", str(tmp_path / "missing.yaml"))
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 2 and "no such file or folder" in lines[0]
    assert "Traceback" not in err


def test_cli_empty_cache(http_server: FileServer, cache_dir: Path) -> None:
    payload = b"x" * 2048
    (http_server.root / "w.bin").write_bytes(payload)
    path = download(http_server.url("w.bin"), sha256=hashlib.sha256(payload).hexdigest())
    keep = cache_dir / "not-ours.txt"
    keep.write_text("user data")
    code, out, _ = run("empty-cache")
    assert code == 0
    assert str(cache_dir) in out and "freed" in out
    assert not path.exists()
    assert keep.read_text() == "user data", "only the cache's own folders are removed"
    code, _, _ = run("empty-cache")  # emptying an empty cache is fine
    assert code == 0


def test_cli_validate_bad_setting_is_reported_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIOIMAGEIO_HTTP_TIMEOUT", "soon")
    code, out, err = run("validate", str(tmp_path))
    assert code == 1
    assert "BIOIMAGEIO_HTTP_TIMEOUT" in err and "Traceback" not in err


def test_cli_validate_import_is_light() -> None:
    """Importing the package and the CLI does not import requests or YAML (loaded on use)."""
    code = (
        "import sys, bioimageio_core, bioimageio_core.cli.validate; "
        "print([m for m in ('requests', 'bioimageio_core.loading') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
        env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": ""},
    ).stdout
    assert out.strip() == "[]"


def test_cli_validate_traceback_only_with_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    import bioimageio_core.loading

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(bioimageio_core.loading, "validate_format", broken)
    result = CliRunner().invoke(main, ["validate", "x.yaml"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: disk on fire"
    result = CliRunner().invoke(main, ["validate", "x.yaml", "--debug"])
    assert isinstance(result.exception, RuntimeError)
