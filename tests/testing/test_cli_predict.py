"""``bioimageio-run predict`` / ``block-artifacts``: input patterns, outputs, overwrite, example."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_run import invoke
from click.testing import CliRunner, Result
from model_testing_helpers import MakeModel, expected_conv, write_images, write_two_input_model

from bioimageio_core.cli import main
from bioimageio_core.errors import InputError

# --- predict ------------------------------------------------------------------------------------


def _predict(model: Path, inputs: Path, outputs: Path, *options: str) -> Result:
    """``bioimageio-run predict MODEL -i INPUTS -o OUTPUTS OPTIONS...``."""
    return invoke("predict", str(model), "-i", str(inputs), "-o", str(outputs), *options)


def test_predict_glob_writes_outputs_and_protects_them(
    make_model: MakeModel, tmp_path: Path
) -> None:
    model = make_model()
    arrays = write_images(tmp_path / "raw", ["img1", "img2"], size=40)
    out = tmp_path / "out" / "{sample_id}_{tensor_id}.npy"
    result = invoke(
        "predict",
        str(model),
        "--inputs",
        str(tmp_path / "raw" / "*.npy"),
        "--outputs",
        str(out),
        "-q",
    )
    assert result.exit_code == 0, result.output
    for name, x in arrays.items():
        np.testing.assert_allclose(
            np.load(tmp_path / "out" / f"{name}_out.npy"), expected_conv(x), atol=1e-6
        )
    assert result.stdout.split() == [
        str(tmp_path / "out" / f"{n}_out.npy") for n in ("img1", "img2")
    ]

    before = np.load(tmp_path / "out" / "img1_out.npy")
    np.save(tmp_path / "raw" / "img1.npy", np.zeros((1, 1, 40, 40), dtype=np.float32))
    again = _predict(model, tmp_path / "raw" / "*.npy", out)
    assert again.exit_code == 1
    assert "exists already" in again.stderr and "--overwrite" in again.stderr
    assert "Traceback" not in again.output
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "img1_out.npy"), before)
    forced = _predict(model, tmp_path / "raw" / "*.npy", out, "--overwrite")
    assert forced.exit_code == 0, forced.output
    assert not np.load(tmp_path / "out" / "img1_out.npy").any()
    assert "wrote 2 output file(s) for 2 sample(s)" in forced.stderr


def test_predict_blockwise_equals_whole(make_model: MakeModel, tmp_path: Path) -> None:
    model = make_model()
    (x,) = write_images(tmp_path / "raw", ["big"], size=72).values()
    for blocksize, batch in (("0", "1"), ("1", "3")):
        target = tmp_path / f"out_{blocksize}.npy"
        result = _predict(
            model,
            tmp_path / "raw" / "big.npy",
            target,
            "--blocksize",
            blocksize,
            "--batch-size",
            batch,
        )
        assert result.exit_code == 0, result.output
        np.testing.assert_allclose(np.load(target), expected_conv(x), atol=1e-6)


def test_predict_several_inputs_with_placeholders(tmp_path: Path) -> None:
    model = write_two_input_model(tmp_path / "model")
    a = write_images(tmp_path / "data" / "a", ["s1", "s2"], seed=1)
    b = write_images(tmp_path / "data" / "b", ["s1", "s2"], seed=2)
    out = tmp_path / "pred" / "{tensor_id}" / "{sample_id}.npy"
    result = _predict(model, tmp_path / "data" / "{tensor_id}" / "*.npy", out)
    assert result.exit_code == 0, result.output
    for sid in ("s1", "s2"):
        np.testing.assert_allclose(
            np.load(tmp_path / "pred" / "out_a" / f"{sid}.npy"), expected_conv(a[sid]), atol=1e-6
        )
        np.testing.assert_allclose(
            np.load(tmp_path / "pred" / "out_b" / f"{sid}.npy"), 2 * b[sid], atol=1e-6
        )
    no_id = _predict(
        model, tmp_path / "data" / "{tensor_id}" / "*.npy", tmp_path / "p" / "{sample_id}.npy"
    )
    assert no_id.exit_code == 1 and "no {tensor_id}" in no_id.stderr


def test_predict_example(
    make_model: MakeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = make_model()
    monkeypatch.chdir(tmp_path)
    result = invoke("predict", str(model), "--example")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "conv_test_model_example"
    written = folder / "outputs" / "example_out.npy"
    np.testing.assert_allclose(
        np.load(written), np.load(model.parent / "test_output.npy"), atol=1e-6
    )
    assert str(folder.relative_to(tmp_path) / "outputs") in result.stderr
    np.testing.assert_array_equal(
        np.load(folder / "inputs" / "raw" / "example.npy"), np.load(model.parent / "test_input.npy")
    )


def test_predict_errors_are_short(make_model: MakeModel, tmp_path: Path) -> None:
    model = make_model()
    result = invoke("predict", str(model), "-i", str(tmp_path / "none" / "*.npy"))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no file matches the input pattern")
    assert len(result.stderr.strip().splitlines()) <= 2
    no_device = invoke("predict", str(model), "-i", "x.npy", "--device", " ")
    assert no_device.exit_code == 2 and "give a device name" in no_device.stderr
    with pytest.raises(InputError):
        CliRunner().invoke(
            main,
            ["predict", str(model), "-i", str(tmp_path / "none.npy"), "--debug"],
            catch_exceptions=False,
        )


# --- block-artifacts ----------------------------------------------------------------------------


def _block_artifacts(model: Path, tmp_path: Path, inputs: str, *options: str) -> Result:
    """``block-artifacts`` of a 64 x 64 image ``raw/img.npy`` (matched by ``inputs``) into ``art``."""
    write_images(tmp_path / "raw", ["img"], size=64)
    raw, art = str(tmp_path / "raw" / inputs), str(tmp_path / "art")
    return invoke("block-artifacts", str(model), "-i", raw, "-o", art, *options)


def test_block_artifacts_with_enough_halo_are_zero(make_model: MakeModel, tmp_path: Path) -> None:
    result = _block_artifacts(make_model(), tmp_path, "*.npy")
    assert result.exit_code == 0, result.output
    diff = np.load(tmp_path / "art" / "img_out.npy")
    assert diff.shape == (1, 1, 64, 64)
    assert diff.max() == 0.0
    assert "img out: max |whole - blockwise| = 0" in result.stdout


def test_block_artifacts_without_halo_show_borders(make_model: MakeModel, tmp_path: Path) -> None:
    model = make_model()
    text = model.read_text().replace("  halo: 1\n", "\n").replace("halo: 1", "")
    model.write_text(text)
    result = _block_artifacts(model, tmp_path, "img.npy", "--fail-above", "0.0001")
    assert result.exit_code == 1, result.output
    diff = np.load(tmp_path / "art" / "img_out.npy")
    # blocks of 16 (min size, n=0) without halo: only pixels next to an inner block border see a
    # reflected neighbour instead of the real one, so only they differ
    assert diff.max() > 1e-3
    borders = {15, 16, 31, 32, 47, 48}
    changed = np.argwhere(diff[0, 0] > 0)
    assert len(changed) > 0
    assert all(r in borders or c in borders for r, c in changed)
    printed = float(result.stdout.split("= ")[1].split(" ")[0])
    assert printed == pytest.approx(float(diff.max()), rel=1e-2)
