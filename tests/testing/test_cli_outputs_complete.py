"""``predict`` outputs are complete or absent: a killed run, a file size limit, a failing model."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from model_testing_helpers import MakeModel, expected_conv, write_images

from bioimageio_core import predict

LIMIT = 64 * 1024


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "bioimageio_core", *args]


def run_cli(*args: str, cwd: Path, limit: int | None = None) -> subprocess.CompletedProcess[str]:
    def set_limit() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        cli(*args),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=set_limit,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )


def wait_for_temporary(folder: Path, proc: subprocess.Popen[str], timeout: float = 120) -> str:
    """The name of the first temporary output in ``folder`` (polling while ``proc`` runs)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if folder.is_dir():
            names = [n for n in os.listdir(folder) if n.startswith(".tmp-")]
            if names:
                return names[0]
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"predict ended before writing (exit {proc.returncode}): {err}")
        time.sleep(0.002)
    raise AssertionError("no temporary output appeared")


def test_a_killed_predict_leaves_no_output_and_the_rerun_cleans_up(
    make_model: MakeModel, tmp_path: Path
) -> None:
    model = make_model()
    (x,) = write_images(tmp_path / "raw", ["big"], size=1024).values()
    out = tmp_path / "out"
    args = ("predict", str(model), "-i", str(tmp_path / "raw" / "big.npy"))
    args += ("-o", str(out / "{sample_id}_{tensor_id}.npy"), "--blocksize", "0", "-q")
    proc = subprocess.Popen(
        cli(*args), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        leftover = wait_for_temporary(out, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert os.listdir(out) == [leftover]  # the block-by-block output never looks like a result
    assert leftover.endswith("-big_out.npy")

    again = run_cli(*args, cwd=tmp_path)  # no --overwrite needed: nothing exists
    assert again.returncode == 0, again.stderr
    assert f"note: removed {out / leftover}" in again.stderr
    assert "interrupted run" in again.stderr
    assert os.listdir(out) == ["big_out.npy"]
    np.testing.assert_allclose(np.load(out / "big_out.npy"), expected_conv(x), atol=1e-5)


@pytest.mark.parametrize("suffix", [".npy", ".tif", ".h5", ".zarr"])
def test_a_file_size_limit_fails_predict_cleanly(
    make_model: MakeModel, tmp_path: Path, suffix: str
) -> None:
    model = make_model()
    (x,) = write_images(tmp_path / "raw", ["img"], size=256).values()
    args = ("predict", str(model), "-i", str(tmp_path / "raw" / "img.npy"))
    args += ("-o", str(tmp_path / "out" / f"{{sample_id}}{suffix}"))
    failed = run_cli(*args, cwd=tmp_path, limit=LIMIT)
    assert failed.returncode == 1, failed.stderr
    assert failed.stderr.startswith(f"error: could not write {tmp_path / 'out' / ('img' + suffix)}")
    assert "file size limit" in failed.stderr and "Traceback" not in failed.stderr
    assert os.listdir(tmp_path / "out") == []

    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "exists already" not in again.stderr
    from bioimageio_core.io import load_tensor

    written = load_tensor(tmp_path / "out" / f"img{suffix}").data
    np.testing.assert_allclose(written, expected_conv(x), atol=1e-5)


def _failing_after_first_block(monkeypatch: pytest.MonkeyPatch) -> None:
    from bioimageio_core.execution.forward import Forward

    calls: list[int] = []
    real = Forward.calls

    def forward(self: Any, adapter: Any, forward_calls: Any) -> Any:
        calls.extend([1] * len(forward_calls))
        if len(calls) > 1:
            raise RuntimeError("the model crashed")
        return real(self, adapter, forward_calls)

    monkeypatch.setattr(Forward, "calls", forward)


def test_a_failing_prediction_keeps_the_existing_output(
    make_model: MakeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = make_model()
    (x,) = write_images(tmp_path / "raw", ["img"], size=64).values()
    target = tmp_path / "out.npy"
    np.save(target, np.full(3, 7.0))
    _failing_after_first_block(monkeypatch)
    with pytest.raises(RuntimeError, match="the model crashed"):
        predict(model=model, inputs=x, save_output_path=target, blocksize_parameter=0)
    assert sorted(os.listdir(tmp_path)) == ["model", "out.npy", "raw"]
    np.testing.assert_array_equal(np.load(target), np.full(3, 7.0))


def test_predict_api_refuses_existing_outputs_when_asked(
    make_model: MakeModel, tmp_path: Path
) -> None:
    from bioimageio_core.errors import OutputExistsError

    model = make_model()
    (x,) = write_images(tmp_path / "raw", ["img"], size=32).values()
    target = tmp_path / "{sample_id}.npy"
    predict(model=model, inputs=x, save_output_path=target, overwrite=False)
    first = np.load(tmp_path / "sample.npy")
    with pytest.raises(OutputExistsError, match="sample.npy exists already"):
        predict(model=model, inputs=x * 0, save_output_path=target, overwrite=False)
    np.testing.assert_array_equal(np.load(tmp_path / "sample.npy"), first)
    predict(model=model, inputs=x * 0, save_output_path=target)  # the default replaces
    assert not np.load(tmp_path / "sample.npy").any()
