"""Reproducibility tolerances in model tests: the first matching entry, discrete outputs compared
exactly with a budget of mismatched elements per million, and reports that name the tolerance and
the worst elements."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from model_testing_helpers import MakeModel, expected_conv

from bioimageio_core.testing import Tolerance, compare_arrays, get_tolerance, test_model

SIZE = 64  # 4096 elements: one mismatch is 244 per million


def _labels_model(make_model: MakeModel, config: dict[str, Any] | None = None) -> tuple[Path, Any]:
    """The conv model with a uint16 output: ``round(10 * conv)`` (scale, then the format's cast)."""
    path = make_model(size=SIZE, config=config)
    x = np.load(path.parent / "test_input.npy")
    scaled = expected_conv(x).astype(np.float64) * 10
    # no value may sit at a rounding boundary, where float32 and float64 could round apart
    assert np.abs(scaled - np.floor(scaled) - 0.5).min() > 1e-5
    labels = np.round(scaled).astype(np.uint16)
    raw = yaml.safe_load(path.read_text())
    raw["outputs"][0]["data"] = {"type": "uint16"}
    raw["outputs"][0]["postprocessing"] = [{"id": "scale_linear", "kwargs": {"gain": 10.0}}]
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    np.save(path.parent / "test_output.npy", labels)
    return path, labels


def _reproduce(summary: Any) -> Any:
    return next(d for d in summary.details if d.name.startswith("reproduce test output 'out'"))


def test_discrete_output_passes_when_equal(make_model: MakeModel) -> None:
    path, _ = _labels_model(make_model)
    summary = test_model(path)
    assert summary.status == "passed", summary.format_text()
    detail = _reproduce(summary)
    assert "compared exactly" in detail.name
    assert "format default for discrete outputs" in detail.name


@pytest.mark.parametrize(("changed", "status"), [(1, "warning"), (4, "warning"), (5, "failed")])
def test_discrete_mismatch_budget(make_model: MakeModel, changed: int, status: str) -> None:
    """Default discrete budget: 1000 per million; 4 of 4096 is 977, 5 of 4096 is 1221."""
    path, labels = _labels_model(make_model)
    wrong = labels.copy()
    flat = wrong.reshape(-1)
    positions = np.arange(changed) * 97 + 5
    flat[positions] += np.arange(1, changed + 1, dtype=np.uint16)  # last one differs most
    np.save(path.parent / "test_output.npy", wrong)
    detail = _reproduce(test_model(path))
    if status == "failed":
        assert detail.status == "failed"
        text = detail.errors[0].msg
    else:
        assert detail.status == "passed" and detail.warnings, detail
        text = detail.warnings[0].msg
    assert f"{changed} of {SIZE * SIZE} elements mismatched" in text
    assert "1000 allowed" in text and "compared exactly" in text
    assert "tolerance: format default for discrete outputs" in text
    y, x = divmod(int(positions[-1]), SIZE)
    worst = f"(batch=0, channel=0, y={y}, x={x}): {int(labels.flat[positions[-1]])} instead of "
    assert worst in text


def test_an_explicit_entry_names_itself_in_the_report(make_model: MakeModel) -> None:
    config = {
        "bioimageio": {
            "reproducibility_tolerance": [
                {"output_ids": ["other"], "weights_formats": ["numpy_conv"]},
                {"output_ids": "any_discrete_output", "mismatched_elements_per_million": 0},
            ]
        }
    }
    path, labels = _labels_model(make_model, config)
    raw = yaml.safe_load(path.read_text())
    # "other" must be an output for the entry to be valid; it is a float output
    other = dict(raw["outputs"][0], id="other")
    other.pop("data"), other.pop("postprocessing")
    raw["outputs"].append(other)
    np.savez(path.parent / "weights.npz", **dict(np.load(path.parent / "weights.npz")),
             kernel_1=np.load(path.parent / "weights.npz")["kernel_0"], input_1=np.int64(0))
    np.save(path.parent / "other.npy", expected_conv(np.load(path.parent / "test_input.npy")))
    other["test_tensor"] = {"source": "other.npy"}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    wrong = labels.copy()
    wrong.flat[0] += 1
    np.save(path.parent / "test_output.npy", wrong)
    summary = test_model(path)
    detail = _reproduce(summary)
    assert detail.status == "failed"
    assert "config.bioimageio.reproducibility_tolerance[1] (any_discrete_output)" in (
        detail.errors[0].msg
    )
    other_detail = next(d for d in summary.details if "'other'" in d.name)
    assert other_detail.status == "passed"
    assert "config.bioimageio.reproducibility_tolerance[0] (other)" in other_detail.name


def test_large_labels_are_compared_as_integers() -> None:
    """float32 cannot tell 2**24 from 2**24 + 1; an exact comparison of labels must."""
    expected = np.array([2**24, 7, 3], dtype=np.uint32)
    actual = np.array([2**24 + 1, 7, 3], dtype=np.uint32)
    exact = Tolerance(0.0, 0.0, 0)
    c = compare_arrays(actual, expected, exact)
    assert c.mismatched == 1 and not c.passed
    assert c.worst[0].index == (0,) and c.max_abs_error == 1.0
    # with a non-zero tolerance the comparison is in float32, as the reference does it
    assert compare_arrays(actual, expected, Tolerance(0.0, 0.5, 0)).mismatched == 0


def test_tolerance_sources(make_model: MakeModel) -> None:
    from bioimageio_core.loading import load_description

    path = make_model(config={"bioimageio": {"test_kwargs": {"onnx": {"decimal": 2}}}})
    model = load_description(path, perform_io_checks=False)
    assert get_tolerance(model, "out", "onnx").source == "config.bioimageio.test_kwargs.onnx"  # type: ignore[arg-type]
    assert (
        get_tolerance(model, "out", "numpy_conv").source  # type: ignore[arg-type]
        == "format default for continuous outputs"
    )
    legacy = get_tolerance(model, "out", "numpy_conv", original_format_version="0.4.10")  # type: ignore[arg-type]
    assert legacy.source == "defaults of format 0.4" and legacy.mismatched_ppm == 0
