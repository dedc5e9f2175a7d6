"""CLI validate / update-format on the real example model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cli_run import run

from bioimageio_core import validate_format

MODEL = "models/unet2d_nuclei_broad"


@pytest.fixture
def model_dir(conformance: Path) -> Path:
    return conformance / MODEL


def test_cli_validate_valid_model(model_dir: Path) -> None:
    code, out, _ = run("validate", str(model_dir / "bioimageio.yaml"), "--no-io-checks")
    assert code == 0, out
    assert out.startswith("OK: UNet 2D Nuclei Broad is valid-format")
    code, out, _ = run("validate", str(model_dir), "--no-io-checks", "--format", "json")
    assert code == 0
    assert json.loads(out)["status"] == "valid-format"


def test_cli_validate_invalid_model_names_field(model_dir: Path) -> None:
    source = model_dir / "invalid_v0_4_0_duplicate_tensor_names.bioimageio.yaml"
    code, out, _ = run("validate", str(source), "--no-io-checks")
    assert code == 1
    assert out.startswith("FAILED:")
    assert "error   $." in out
    code, out, _ = run("validate", str(source), "--no-io-checks", "--format", "md")
    assert code == 1 and "| ❌ | format | `$." in out


def test_cli_update_format_to_stdout(model_dir: Path) -> None:
    code, out, err = run("update-format", str(model_dir / "v0_4_9.bioimageio.yaml"))
    assert code == 0, err
    data = yaml.safe_load(out)
    assert str(data["format_version"]).startswith("0.5")
    summary = validate_format(data, perform_io_checks=False)
    assert summary.is_valid, summary.format_text()


def test_cli_update_format_to_file(model_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "updated.bioimageio.yaml"
    code, out, err = run(
        "update-format", str(model_dir / "v0_4_9.bioimageio.yaml"), "--output", str(target)
    )
    assert code == 0, err
    assert out == ""
    assert f"to {target}" in err
    assert "relative file references point into" in err
    assert str(yaml.safe_load(target.read_text())["format_version"]).startswith("0.5")
    code, _, err = run(
        "update-format", str(model_dir / "v0_4_9.bioimageio.yaml"), "-o", str(tmp_path)
    )
    assert code == 0 and (tmp_path / "bioimageio.yaml").is_file()
