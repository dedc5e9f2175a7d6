"""``bioimageio-run predict`` with dataset statistics: computed over all inputs first, --stats."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from cli_run import invoke
from click.testing import Result
from model_testing_helpers import MakeModel, expected_conv

Array = np.ndarray[Any, Any]
EPS = 1e-6


def dataset_model(make_model: MakeModel, name: str = "model", model_name: str | None = None) -> Path:
    """The conv test model with ``zero_mean_unit_variance`` over all axes (dataset statistics)."""
    path = make_model(name)
    raw = yaml.safe_load(path.read_text())
    raw["inputs"][0]["preprocessing"] = [{"id": "zero_mean_unit_variance"}]
    if model_name:
        raw["name"] = model_name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def images(folder: Path, names: list[str]) -> dict[str, Array]:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for i, name in enumerate(names):
        rng = np.random.default_rng(i)
        arrays[name] = (rng.normal(size=(1, 1, 24, 32)) * (1 + i) + 3 * i).astype(np.float32)
        np.save(folder / f"{name}.npy", arrays[name])
    return arrays


def normalised_conv(x: Array, pooled: Array) -> Array:
    p = pooled.astype(np.float64)
    return expected_conv(((x.astype(np.float64) - p.mean()) / (p.std() + EPS)).astype(np.float32))


def test_predict_output_does_not_depend_on_the_order_of_the_files(
    make_model: MakeModel, tmp_path: Path
) -> None:
    model = dataset_model(make_model)
    arrays = images(tmp_path / "raw", ["a", "b", "c"])
    # the same images under names that sort the other way round
    (tmp_path / "renamed").mkdir()
    for new, old in (("3", "a"), ("2", "b"), ("1", "c")):
        shutil.copyfile(tmp_path / "raw" / f"{old}.npy", tmp_path / "renamed" / f"{new}.npy")
    outputs = {}
    for folder in ("raw", "renamed"):
        result = invoke(
            "predict", str(model), "-i", str(tmp_path / folder / "*.npy"),
            "-o", str(tmp_path / f"out_{folder}" / "{sample_id}.npy"),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "computed over 3 sample(s)" in result.stderr
        outputs[folder] = {p.stem: np.load(p) for p in (tmp_path / f"out_{folder}").iterdir()}
    pooled = np.concatenate([x.ravel() for x in arrays.values()])
    for new, old in (("3", "a"), ("2", "b"), ("1", "c")):
        np.testing.assert_array_equal(outputs["renamed"][new], outputs["raw"][old])
        np.testing.assert_allclose(outputs["raw"][old], normalised_conv(arrays[old], pooled), atol=1e-5)


def _predict_batch(model: Path, tmp_path: Path, batch: str, out: str, stats: Path) -> Result:
    """``predict`` of every ``tmp_path/batch/*.npy`` into ``tmp_path/out`` with ``--stats``."""
    inputs, outputs = str(tmp_path / batch / "*.npy"), str(tmp_path / out / "{sample_id}.npy")
    return invoke("predict", str(model), "-i", inputs, "-o", outputs, "--stats", str(stats))


def test_stats_file_is_written_then_reused_for_a_later_batch(
    make_model: MakeModel, tmp_path: Path
) -> None:
    model = dataset_model(make_model)
    first = images(tmp_path / "batch1", ["a", "b"])
    stats = tmp_path / "stats.json"
    result = _predict_batch(model, tmp_path, "batch1", "out1", stats)
    assert result.exit_code == 0, result.output
    assert f"computed over 2 sample(s) (1 pass(es)), saved to {stats}" in result.stderr
    data = json.loads(stats.read_text())
    assert data["model"] == {"id": None, "name": "conv test model"}
    assert {(e["measure"], e["tensor_id"], e["axes"]) for e in data["statistics"]} == {
        ("mean", "raw", None),
        ("std", "raw", None),
    }
    # a second batch: normalised with the statistics of the first one, not its own
    (tmp_path / "batch2").mkdir()
    shutil.copyfile(tmp_path / "batch1" / "b.npy", tmp_path / "batch2" / "b.npy")
    again = _predict_batch(model, tmp_path, "batch2", "out2", stats)
    assert again.exit_code == 0, again.output
    assert f"loaded from {stats}" in again.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "out2" / "b.npy"), np.load(tmp_path / "out1" / "b.npy"))
    pooled = np.concatenate([x.ravel() for x in first.values()])
    np.testing.assert_allclose(np.load(tmp_path / "out2" / "b.npy"), normalised_conv(first["b"], pooled), atol=1e-5)


def test_stats_file_of_another_model_is_refused(make_model: MakeModel, tmp_path: Path) -> None:
    other = dataset_model(make_model, "other", model_name="another model")
    images(tmp_path / "raw", ["a"])
    stats = tmp_path / "stats.json"
    made = invoke(
        "predict", str(other), "-i", str(tmp_path / "raw" / "a.npy"),
        "-o", str(tmp_path / "o1.npy"), "--stats", str(stats),
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    model = dataset_model(make_model)
    refused = invoke(
        "predict", str(model), "-i", str(tmp_path / "raw" / "a.npy"),
        "-o", str(tmp_path / "o2.npy"), "--stats", str(stats),
    )  # fmt: skip
    assert refused.exit_code == 1
    assert "holds dataset statistics of model 'another model', not of 'conv test model'" in refused.stderr
    assert "delete the file" in refused.stderr and "Traceback" not in refused.output
    assert not (tmp_path / "o2.npy").exists()


def test_stats_option_with_a_model_without_dataset_statistics(
    make_model: MakeModel, tmp_path: Path
) -> None:
    model = make_model()
    images(tmp_path / "raw", ["a"])
    result = invoke(
        "predict", str(model), "-i", str(tmp_path / "raw" / "a.npy"),
        "-o", str(tmp_path / "o.npy"), "--stats", str(tmp_path / "s.json"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "needs no dataset statistics" in result.stderr
    assert not (tmp_path / "s.json").exists()
