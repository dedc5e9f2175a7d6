"""``bioimageio-run test``: exit codes, printed and saved summaries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from cli_run import run
from click.testing import CliRunner
from model_testing_helpers import MakeModel, expected_conv

from bioimageio_core.cli import main


def _run(*args: str) -> tuple[int, str, str]:
    return run("test", *args)


def test_passing_model_exits_0_and_writes_summaries(make_model: MakeModel, tmp_path: Path) -> None:
    path = make_model()
    code, out, _ = _run(
        str(path), "--summary", str(tmp_path / "s.json"), "--summary", str(tmp_path / "r" / "s.md")
    )
    assert code == 0, out
    assert out.splitlines()[0].endswith(" passed") and out.startswith("OK: ")
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["status"] == "passed"
    names = [d["name"] for d in data["details"]]
    assert names[:2] == ["format", "io checks (test tensors)"]
    assert any(n.startswith("reproduce test output 'out' with numpy_conv weights") for n in names)
    md = (tmp_path / "r" / "s.md").read_text()
    assert md.startswith("# ✔️ conv test model: passed")
    assert "reproduce test output 'out' with numpy_conv weights" in md


def test_failing_model_exits_1_and_saves_failing_outputs(
    make_model: MakeModel, tmp_path: Path
) -> None:
    x = np.random.default_rng(0).uniform(0, 1, size=(1, 1, 24, 24)).astype(np.float32)
    path = make_model(output=expected_conv(x) + 1)
    code, out, _ = _run(
        str(path), "--save-failing-outputs", str(tmp_path / "failing"), "--format", "json"
    )
    assert code == 1
    data = json.loads(out)
    assert data["status"] == "valid-format"
    (failed,) = [d for d in data["details"] if d["status"] == "failed"]
    assert "576 of 576 elements mismatched" in failed["errors"][0]["msg"]
    saved = np.load(tmp_path / "failing" / "numpy_conv" / "out.npy")
    np.testing.assert_allclose(saved, expected_conv(x), atol=1e-6)


def test_weights_format_option_and_unusable_format(make_model: MakeModel) -> None:
    weights = {
        "numpy_conv": {"source": "weights.npz"},
        "onnx": {
            "source": "http://127.0.0.1:9/w.onnx",
            "opset_version": 15,
            "parent": "numpy_conv",
        },
    }
    path = make_model(weights=weights)
    code, out, _ = _run(str(path), "--weights-format", "numpy_conv", "--format", "json")
    assert code == 0, out
    tests = [d for d in json.loads(out)["details"] if d["kind"] == "test"]
    assert tests and not [d for d in tests if "onnx" in json.dumps(d)]
    code, out, _ = _run(str(path), "--weight-format", "onnx", "--format", "md")
    assert code == 1
    assert "pip install bioimageio-run-onnx" in out


def test_stop_early_flag(make_model: MakeModel) -> None:
    path = make_model(
        weights={
            "toy_scale": {"source": "weights.npz", "factor": 3.0},
            "numpy_conv": {"source": "weights.npz", "parent": "toy_scale"},
        }
    )
    code, out, _ = _run(str(path), "-x")
    assert code == 1
    assert "numpy_conv weights" not in out


def test_missing_source_exits_1(tmp_path: Path) -> None:
    code, out, _ = _run(str(tmp_path / "nothing.yaml"))
    assert code == 1
    assert "failed" in out


def test_device_names_are_read_by_the_one_device_parser(make_model: MakeModel) -> None:
    """``test --device`` and ``predict --device`` read names alike: case and ``cpu:0`` are
    normalised, a malformed name is a short error (exit status 1) before anything loads."""
    path = make_model()
    code, out, _ = _run(str(path), "--device", " CPU:0 ")
    assert code == 0, out
    code, _, err = _run(str(path), "--device", "cpu", "--device", "gpu0")
    assert code == 1
    assert err.startswith("error: 'gpu0' is not a device name")
    assert "use 'cpu', 'cuda', 'cuda:N'" in err and "Traceback" not in err
    predicted = CliRunner().invoke(main, ["predict", str(path), "--example", "--device", "cuda:x"])
    assert predicted.exit_code == 1
    assert predicted.stderr.startswith("error: 'cuda:x' is not a device name")
