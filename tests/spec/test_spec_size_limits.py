"""Axis sizes are bounded: a size no model can use (``min: 10**12``) fails validation at its field
instead of passing and then failing (out of memory) when the model is tested or run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from spec_examples import minimal_model

from bioimageio_core import test_model, validate_format
from bioimageio_core.spec import build_description
from bioimageio_core.spec.axes import MAX_AXIS_SIZE

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny-nuclei-unet"
HUGE = 10**12


def _input_axis(raw: dict[str, Any]) -> dict[str, Any]:
    axis: dict[str, Any] = raw["inputs"][0]["axes"][1]
    return axis


@pytest.mark.parametrize(
    ("size", "path"),
    [
        (HUGE, "$.inputs[0].axes[1].size"),
        ({"min": HUGE, "step": 16}, "$.inputs[0].axes[1].size.min"),
        ({"min": 16, "step": HUGE}, "$.inputs[0].axes[1].size.step"),
    ],
)
def test_huge_input_sizes_are_errors_at_their_field(size: object, path: str) -> None:
    raw = minimal_model()
    _input_axis(raw)["size"] = size
    result = build_description(raw)
    assert result.descr is None
    errors = {i.path: i.msg for i in result.errors}
    assert path in errors, errors
    assert str(MAX_AXIS_SIZE) in errors[path]


@pytest.mark.parametrize(
    ("axis", "path"),
    [
        ({"type": "space", "id": "x", "size": HUGE}, "$.outputs[0].axes[1].size"),
        (
            {
                "type": "space",
                "id": "x",
                "size": {"tensor_id": "raw", "axis_id": "x", "offset": HUGE},
            },
            "$.outputs[0].axes[1].size.offset",
        ),
        (
            {
                "type": "space",
                "id": "x",
                "size": {"tensor_id": "raw", "axis_id": "x", "offset": -HUGE},
            },
            "$.outputs[0].axes[1].size.offset",
        ),
        (
            {
                "type": "space",
                "id": "x",
                "halo": HUGE,
                "size": {"tensor_id": "raw", "axis_id": "x"},
            },
            "$.outputs[0].axes[1].halo",
        ),
        ({"type": "index", "id": "i", "size": {"min": HUGE}}, "$.outputs[0].axes[1].size.min"),
    ],
)
def test_huge_output_sizes_are_errors_at_their_field(axis: dict[str, Any], path: str) -> None:
    raw = minimal_model()
    raw["outputs"][0]["axes"][1] = axis
    result = build_description(raw)
    assert result.descr is None
    assert path in {i.path for i in result.errors}, result.errors


def test_sizes_up_to_the_limit_are_valid() -> None:
    raw = minimal_model()
    _input_axis(raw)["size"] = {"min": MAX_AXIS_SIZE, "step": MAX_AXIS_SIZE}
    raw["outputs"][0]["axes"][1]["size"] = {"tensor_id": "raw", "axis_id": "x"}
    assert build_description(raw).descr is not None, build_description(raw).errors


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=2**70))
def test_fixed_size_is_valid_exactly_up_to_the_limit(size: int) -> None:
    raw = minimal_model()
    _input_axis(raw)["size"] = size
    raw["outputs"][0]["axes"][1]["size"] = {"tensor_id": "raw", "axis_id": "x"}
    assert (build_description(raw).descr is not None) == (size <= MAX_AXIS_SIZE)


def test_huge_minimal_size_fails_validation_not_the_test_run(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    for path in EXAMPLE.iterdir():
        (folder / path.name).symlink_to(path)
    data = yaml.safe_load((EXAMPLE / "rdf.yaml").read_text())
    data["inputs"][0]["axes"][2]["size"]["min"] = HUGE
    (folder / "rdf.yaml").unlink()
    (folder / "rdf.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    summary = validate_format(folder)
    assert summary.status == "failed"
    assert "$.inputs[0].axes[2].size.min" in summary.first_error_text()
    report = test_model(folder).format_text()
    assert "internal error" not in report and "MemoryError" not in report
