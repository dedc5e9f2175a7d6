"""``bioimageio-run validate|test|predict <id>`` end to end against a local collection, online
and then with ``--offline`` (no connection allowed), plus the bundled example model by id."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from id_collection import SIZE, Offline, Served, conv_reflect

from bioimageio_core.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny-nuclei-unet"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_cli_test_by_id_online_then_offline(served: Served, offline: Offline) -> None:
    online = run("test", "lazy-fish/1.2", "--format", "json")
    assert online.exit_code == 0, online.output
    summary = json.loads(online.stdout)
    assert summary["status"] == "passed"
    names = [d["name"] for d in summary["details"]]
    assert names[0].startswith("resolve 'lazy-fish/1.2' (bioimage.io): http://127.0.0.1:")
    assert any(n.startswith("reproduce test output 'out' with numpy_conv") for n in names)
    served.server.stop()
    offline.activate()
    again = run("test", "lazy-fish/1.2", "--format", "json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["status"] == "passed"
    assert offline.attempts == []


def test_cli_offline_flag_never_connects(served: Served, offline: Offline) -> None:
    assert run("validate", "affable-shark").exit_code == 0
    served.server.stop()
    offline.activate()
    result = run("validate", "--offline", "affable-shark")
    assert result.exit_code == 0, result.output
    assert offline.attempts == []


def test_cli_offline_flag_says_what_is_missing(served: Served, offline: Offline) -> None:
    offline.attempts.clear()
    result = CliRunner().invoke(main, ["test", "--offline", "lazy-fish"])
    assert result.exit_code == 1
    assert "offline: cannot resolve 'lazy-fish'" in result.output
    assert "answers for 'lazy-fish' are not in the cache" in result.output
    assert "id_map.json" in result.output
    assert served.server.requests == []


@pytest.mark.parametrize("source", ["10.5281/zenodo.999", "affable-shark"])
def test_cli_predict_by_id_online_then_offline(
    served: Served, offline: Offline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    monkeypatch.chdir(tmp_path)
    image = np.random.default_rng(3).uniform(0, 1, size=(1, 1, SIZE, SIZE)).astype(np.float32)
    np.save(tmp_path / "img.npy", image)
    first = run("predict", source, "-i", "img.npy", "-o", "online/{sample_id}.npy")
    assert first.exit_code == 0, first.output
    served.server.stop()
    offline.activate()
    second = run("predict", "--offline", source, "-i", "img.npy", "-o", "offline/{sample_id}.npy")
    assert second.exit_code == 0, second.output
    assert offline.attempts == []
    for folder in ("online", "offline"):
        np.testing.assert_allclose(np.load(tmp_path / folder / "img.npy"), conv_reflect(image),
                                   rtol=1e-6, atol=1e-6)


def test_cli_unknown_id_suggests_and_lists_forms(served: Served) -> None:
    result = run("validate", "lazy-fis")
    assert result.exit_code == 1
    assert "did you mean 'lazy-fish'" in result.stdout
    assert "accepted sources:" in result.stdout


def test_cli_validate_the_example_model_by_id(served: Served, offline: Offline) -> None:
    target = served.collection.root / "artifacts" / "tiny-nuclei-unet" / "files"
    shutil.copytree(EXAMPLE, target)
    result = run("validate", "tiny-nuclei-unet", "--format", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["name"] == "Tiny nuclei U-Net" and summary["status"] == "valid-format"
    served.server.stop()
    offline.activate()
    again = run("validate", "--offline", "tiny-nuclei-unet")
    assert again.exit_code == 0, again.output
    # the example (format 0.5.14) pins its cover with a sha256: checked against the cached copy
    assert "1 cover: sha256 matches" in again.output
    assert "weights:onnx: sha256 matches" in again.output
    assert offline.attempts == []
