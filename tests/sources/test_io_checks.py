"""Io checks that read a model's files: test tensor sizes with halos, sample tensor dimensions,
tolerances against the test outputs, the documentation's validation heading."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import yaml

from bioimageio_core import validate_format
from bioimageio_core.io import save_tensor
from bioimageio_core.summary import ValidationSummary
from bioimageio_core.tensor import Tensor

if TYPE_CHECKING:
    from tests.conftest import FileServer


def _model(
    folder: Path,
    in_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    *,
    out_dtype: str = "float32",
    out_values: float = 0.5,
    halo: int = 2,
    **fields: Any,
) -> Path:
    """Input y/x ``ParameterizedSize(min 16, step 8)``, output y/x references it with ``halo``."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "in.npy", np.zeros(in_shape, dtype="float32"))
    np.save(folder / "out.npy", np.full(out_shape, out_values, dtype=out_dtype))
    (folder / "README.md").write_text("# model\n\n## Validation\n\nchecked by eye\n")
    (folder / "w.onnx").write_bytes(b"onnx")
    ref = {"type": "space", "halo": halo} if halo else {"type": "space"}
    raw = {
        "format_version": "0.5.14",
        "type": "model",
        "name": "io checked model",
        "license": "MIT",
        "documentation": {"source": "README.md"},
        "inputs": [
            {
                "id": "raw",
                "axes": [
                    {"type": "space", "id": "y", "size": {"min": 16, "step": 8}},
                    {"type": "space", "id": "x", "size": {"min": 16, "step": 8}},
                ],
                "test_tensor": {"source": "in.npy"},
            }
        ],
        "outputs": [
            {
                "id": "out",
                "axes": [
                    {**ref, "id": "y", "size": {"tensor_id": "raw", "axis_id": "y"}},
                    {**ref, "id": "x", "size": {"tensor_id": "raw", "axis_id": "x"}},
                ],
                "test_tensor": {"source": "out.npy"},
                "data": {"type": out_dtype},
            }
        ],
        "weights": {"onnx": {"source": "w.onnx", "opset_version": 17}},
        **fields,
    }
    path = folder / "rdf.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _io_issues(summary: ValidationSummary) -> list[tuple[str, str, str]]:
    detail = next(d for d in summary.details if d.name == "io checks")
    return [(e.path, e.msg, "error") for e in detail.errors] + [
        (w.path, w.msg, "warning") for w in detail.warnings
    ]


@pytest.mark.parametrize(
    ("n_in", "n_out", "valid"),
    [
        (16, 16, True),
        (12, 12, True),  # input stored without its halo padding (12 + 2*2 = 16 is valid)
        (20, 20, True),
        (24, 24, True),
        (12, 16, True),  # output stored uncropped
        (16, 12, False),
        (24, 20, False),
        (13, 13, False),  # neither 13 nor 17 is a valid input size
    ],
)
def test_test_tensor_sizes_with_halos(tmp_path: Path, n_in: int, n_out: int, valid: bool) -> None:
    rdf = _model(tmp_path, (n_in, n_in), (n_out, n_out))
    summary = validate_format(rdf, perform_io_checks=True)
    errors = [i for i in _io_issues(summary) if i[2] == "error"]
    assert (errors == []) is valid, errors
    if not valid:
        assert all("test tensor of" in msg for _, msg, _ in errors)


def test_without_halo_the_sizes_must_match_exactly(tmp_path: Path) -> None:
    rdf = _model(tmp_path, (16, 16), (12, 12), halo=0)
    errors = [
        i for i in _io_issues(validate_format(rdf, perform_io_checks=True)) if i[2] == "error"
    ]
    assert (
        errors and "does not follow the reference to raw.y (size 16 there gives 16)" in errors[0][1]
    )


def test_test_tensor_with_wrong_number_of_dimensions(tmp_path: Path) -> None:
    rdf = _model(tmp_path, (1, 16, 16), (16, 16))
    (loc, msg, _), *_ = _io_issues(validate_format(rdf, perform_io_checks=True))
    assert loc == "$.inputs[0].test_tensor"
    assert "has 3 dimensions (1, 16, 16), but the tensor has 2 axes (y, x)" in msg


def test_format_checks_alone_do_not_read_the_tensors(tmp_path: Path) -> None:
    rdf = _model(tmp_path, (13, 13), (13, 13))
    assert validate_format(rdf, perform_io_checks=False).status == "valid-format"


# --- sample tensors -----------------------------------------------------------------------------


def _with_sample(tmp_path: Path, shape: tuple[int, ...], **axis_changes: Any) -> Path:
    rdf = _model(tmp_path, (16, 16), (16, 16))
    save_tensor(tmp_path / "sample.png", Tensor(np.zeros(shape, "uint8"), ("y", "x")[: len(shape)]))
    raw = yaml.safe_load(rdf.read_text())
    raw["inputs"][0]["sample_tensor"] = {"source": "sample.png"}
    raw["outputs"][0]["sample_tensor"] = {"source": "sample.png"}
    raw["outputs"][0]["axes"][1].update(axis_changes)
    rdf.write_text(yaml.safe_dump(raw, sort_keys=False))
    return rdf


def test_sample_tensor_with_matching_dimensions(tmp_path: Path) -> None:
    issues = _io_issues(validate_format(_with_sample(tmp_path, (16, 24)), perform_io_checks=True))
    assert issues == []


def test_sample_tensor_singleton_dimensions_are_allowed_where_axes_can_be_1(tmp_path: Path) -> None:
    # min 16: no axis can be a singleton, so a 16x1 image has too few dimensions
    rdf = _with_sample(tmp_path, (16, 1))
    issues = _io_issues(validate_format(rdf, perform_io_checks=True))
    assert [(loc, kind) for loc, _, kind in issues] == [("$.inputs[0].sample_tensor", "error")]
    # the output's size references (offset < 2) may be singletons
    assert "allow 2 to 2" in issues[0][1]


def test_sample_tensor_reference_to_another_axis_is_a_warning(tmp_path: Path) -> None:
    rdf = _with_sample(tmp_path, (16, 16), size={"tensor_id": "raw", "axis_id": "y"})
    issues = _io_issues(validate_format(rdf, perform_io_checks=True))
    assert [(loc, kind) for loc, _, kind in issues] == [("$.outputs[0].sample_tensor", "warning")]
    assert "has its size from axis 'y'" in issues[0][1]


# --- tolerances against test outputs --------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "dtype", "warned"),
    [
        (0.05, "float32", True),
        (-3.0, "float32", False),
        (0.5, "float32", False),
        (7, "uint8", False),
    ],
)
def test_absolute_tolerance_against_the_largest_test_output_value(
    tmp_path: Path, values: float, dtype: str, warned: bool
) -> None:
    # the default entries apply: 1e-3 for float outputs, 0 for discrete ones
    rdf = _model(tmp_path, (16, 16), (16, 16), out_values=values, out_dtype=dtype)
    summary = validate_format(rdf, perform_io_checks=True)
    assert summary.status == "valid-format"
    found = [msg for loc, msg, _ in _io_issues(summary) if "absolute_tolerance" in loc]
    assert bool(found) is warned
    if warned:
        assert "more than 1 % of the largest absolute value (0.05)" in found[0]


def test_the_first_entry_assigned_to_an_output_is_checked(tmp_path: Path) -> None:
    config = {
        "bioimageio": {
            "reproducibility_tolerance": [
                {"output_ids": ["out"], "absolute_tolerance": 1e-5},
                {"absolute_tolerance": 0.5},
            ]
        }
    }
    rdf = _model(tmp_path, (16, 16), (16, 16), out_values=0.05, config=config)
    assert _io_issues(validate_format(rdf, perform_io_checks=True)) == []


# --- documentation ----------------------------------------------------------------------------------


def test_documentation_without_validation_heading_is_a_warning(tmp_path: Path) -> None:
    rdf = _model(tmp_path, (16, 16), (16, 16))
    (tmp_path / "README.md").write_text("# model\n\nno word about how it was checked\n")
    summary = validate_format(rdf, perform_io_checks=True)
    assert summary.status == "valid-format"
    assert [(loc, kind) for loc, _, kind in _io_issues(summary)] == [("$.documentation", "warning")]


def test_remote_documentation_is_not_downloaded_for_the_heading_check(
    tmp_path: Path, http_server: FileServer
) -> None:
    rdf = _model(http_server.root / "m", (16, 16), (16, 16))
    (http_server.root / "m" / "README.md").write_text("# model\n\nno heading about checks\n")
    summary = validate_format(http_server.url("m/rdf.yaml"), perform_io_checks=True)
    assert summary.status == "valid-format", summary.format_text()
    assert http_server.count("m/README.md") == 0
    assert rdf.is_file()
