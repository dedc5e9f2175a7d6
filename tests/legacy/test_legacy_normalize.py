"""normalize_raw: each published oddity is repaired with a warning at its field; the rest is kept."""

from __future__ import annotations

import copy
import datetime
import math
from collections.abc import Callable
from typing import Any

import pytest

from bioimageio_core.spec.issues import Issue
from bioimageio_core.spec.legacy import file_name_of, normalize_raw, suffix_of


def warnings_at(issues: list[Issue], loc: tuple[str | int, ...]) -> list[Issue]:
    return [i for i in issues if i.loc == loc and i.severity == "warning"]


def test_valid_description_is_untouched(model_v0_4: Callable[..., dict[str, Any]]) -> None:
    raw = model_v0_4()
    data, issues = normalize_raw(raw)
    assert issues == []
    assert data == raw


def test_input_is_never_mutated(model_v0_4: Callable[..., dict[str, Any]]) -> None:
    raw = model_v0_4(timestamp=datetime.datetime(2020, 1, 2, 3, 4, 5), version=1.1)
    raw["inputs"][0]["data_range"] = ["-inf", "inf"]
    raw["weights"]["pytorch_script"] = raw["weights"].pop("torchscript")
    before = copy.deepcopy(raw)
    data, issues = normalize_raw(raw)
    assert raw == before
    assert issues
    data["inputs"][0]["name"] = "changed"
    assert raw["inputs"][0]["name"] == "raw"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (["-inf", "inf"], [-math.inf, math.inf]),
        (["-.inf", "+.inf"], [-math.inf, math.inf]),
        (["0", "255"], [0.0, 255.0]),
        ([None, None], [-math.inf, math.inf]),
        ([0, None], [0, math.inf]),
        ("[-inf, inf]", [-math.inf, math.inf]),
        ("(0, 1.5)", [0.0, 1.5]),
    ],
)
def test_v0_4_data_range_text(
    model_v0_4: Callable[..., dict[str, Any]], written: Any, expected: list[float]
) -> None:
    raw = model_v0_4()
    raw["inputs"][0]["data_range"] = written
    data, issues = normalize_raw(raw)
    assert data["inputs"][0]["data_range"] == expected
    assert issues and all(i.severity == "warning" for i in issues)
    assert all(i.loc[:3] == ("inputs", 0, "data_range") for i in issues)


@pytest.mark.parametrize("written", [["low", "high"], "[a, b]", ["nan", 1.0], "1, 2"])
def test_unclear_data_range_is_left_for_structuring(
    model_v0_4: Callable[..., dict[str, Any]], written: Any
) -> None:
    raw = model_v0_4()
    raw["inputs"][0]["data_range"] = written
    data, issues = normalize_raw(raw)
    assert data["inputs"][0]["data_range"] == written
    assert issues == []


def test_v0_5_range_infinite_becomes_null() -> None:
    raw = {
        "format_version": "0.5.4",
        "type": "model",
        "inputs": [{"id": "x", "data": {"type": "float32", "range": ["-inf", math.inf]}}],
        "outputs": [{"id": "y", "data": [{"range": [0, "1e3"]}, {"range": [0.5, 1.0]}]}],
    }
    data, issues = normalize_raw(raw)
    assert data["inputs"][0]["data"]["range"] == [None, None]
    assert data["outputs"][0]["data"][0]["range"] == [0, 1000.0]
    assert data["outputs"][0]["data"][1]["range"] == [0.5, 1.0]
    assert {i.loc for i in issues} == {
        ("inputs", 0, "data", "range", 0),
        ("inputs", 0, "data", "range", 1),
        ("outputs", 0, "data", 0, "range", 1),
    }


def test_versions_written_as_numbers(model_v0_4: Callable[..., dict[str, Any]]) -> None:
    raw = model_v0_4(version=1.1)
    raw["weights"]["torchscript"]["pytorch_version"] = 1.10
    raw["weights"]["pytorch_state_dict"]["pytorch_version"] = 2
    data, issues = normalize_raw(raw)
    assert data["version"] == "1.1"
    assert data["weights"]["torchscript"]["pytorch_version"] == "1.1"
    assert data["weights"]["pytorch_state_dict"]["pytorch_version"] == "2"
    # floats lose trailing zeros: a warning; an int is exact: none
    assert normalize_raw(model_v0_4(format_version=0.4)) == (model_v0_4(format_version=0.4), [])
    assert {i.loc for i in issues} == {("version",), ("weights", "torchscript", "pytorch_version")}
    assert all("1.10" in i.msg for i in issues)


def test_timestamps_become_iso_strings(model_v0_4: Callable[..., dict[str, Any]]) -> None:
    aware = datetime.datetime(2019, 12, 11, 12, 22, 32, tzinfo=datetime.timezone.utc)
    raw = model_v0_4(timestamp=aware, config={"history": [{"created": datetime.date(2021, 3, 4)}]})
    data, issues = normalize_raw(raw)
    assert data["timestamp"] == "2019-12-11T12:22:32+00:00"
    assert datetime.datetime.fromisoformat(data["timestamp"]) == aware
    assert data["config"]["history"][0]["created"] == "2021-03-04"
    assert {i.loc for i in issues} == {("timestamp",), ("config", "history", 0, "created")}


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2022-10-23T0:0:0", "2022-10-23T00:00:00"),
        ("2022-1-2 3:04Z", "2022-01-02T03:04:00Z"),
        ("2022-10-23T00:00:00", None),
        ("2022-10-23 00:00:00", None),
        ("2022-13-40T0:0:0", None),
        ("yesterday", None),
    ],
)
def test_timestamps_without_zero_padding(
    model_v0_4: Callable[..., dict[str, Any]], written: str, expected: str | None
) -> None:
    data, issues = normalize_raw(model_v0_4(timestamp=written))
    if expected is None:
        assert data["timestamp"] == written and issues == []
    else:
        assert data["timestamp"] == expected
        assert [i.loc for i in issues] == [("timestamp",)]


def test_non_string_keys(model_v0_4: Callable[..., dict[str, Any]]) -> None:
    raw = model_v0_4(config={1.5: "a", "x": {True: 1}})
    data, issues = normalize_raw(raw)
    assert data["config"] == {"1.5": "a", "x": {"true": 1}}
    assert len(issues) == 2


def test_pytorch_script_renamed(model_v0_4: Callable[..., dict[str, Any]]) -> None:
    raw = model_v0_4()
    weights = raw["weights"]
    weights["pytorch_script"] = weights.pop("torchscript")
    weights["onnx"] = {"source": "m.onnx", "parent": "pytorch_script"}
    data, issues = normalize_raw(raw)
    assert list(data["weights"]) == ["pytorch_state_dict", "torchscript", "onnx"]
    assert data["weights"]["onnx"]["parent"] == "torchscript"
    assert warnings_at(issues, ("weights", "pytorch_script"))
    assert warnings_at(issues, ("weights", "onnx", "parent"))


def test_pytorch_script_next_to_torchscript_is_not_merged(
    model_v0_4: Callable[..., dict[str, Any]],
) -> None:
    raw = model_v0_4()
    raw["weights"]["pytorch_script"] = {"source": "other.pt"}
    data, issues = normalize_raw(raw)
    assert data["weights"]["pytorch_script"] == {"source": "other.pt"}
    assert data["weights"]["torchscript"]["source"] == "weights_ts.pt"
    assert warnings_at(issues, ("weights", "pytorch_script"))


def test_parent_given_as_source_url(model_v0_4: Callable[..., dict[str, Any]]) -> None:
    raw = model_v0_4()
    url = "https://zenodo.org/record/1/files/w.torch"
    raw["weights"]["pytorch_state_dict"]["source"] = url
    raw["weights"]["torchscript"]["parent"] = url
    data, issues = normalize_raw(raw)
    assert data["weights"]["torchscript"]["parent"] == "pytorch_state_dict"
    assert warnings_at(issues, ("weights", "torchscript", "parent"))


def test_unknown_parent_is_left_for_structuring(model_v0_4: Callable[..., dict[str, Any]]) -> None:
    raw = model_v0_4()
    raw["weights"]["torchscript"]["parent"] = "https://example.com/elsewhere.pt"
    data, issues = normalize_raw(raw)
    assert data["weights"]["torchscript"]["parent"] == "https://example.com/elsewhere.pt"
    assert issues == []


def test_reference_input_renamed(model_v0_4: Callable[..., dict[str, Any]]) -> None:
    raw = model_v0_4()
    shape = raw["outputs"][0]["shape"]
    shape["reference_input"] = shape.pop("reference_tensor")
    data, issues = normalize_raw(raw)
    assert data["outputs"][0]["shape"]["reference_tensor"] == "raw"
    assert "reference_input" not in data["outputs"][0]["shape"]
    assert warnings_at(issues, ("outputs", 0, "shape", "reference_input"))


def test_slashes_in_name(model_v0_4: Callable[..., dict[str, Any]]) -> None:
    data, issues = normalize_raw(model_v0_4(name="UNet/2D nuclei"))
    assert data["name"] == "UNet2D nuclei"
    assert warnings_at(issues, ("name",))
    data, issues = normalize_raw(model_v0_4(name="//"))
    assert data["name"] == "//"  # nothing would be left: structuring reports it
    assert issues == []
    dataset = {"format_version": "0.2.2", "type": "dataset", "name": "cells/nuclei"}
    assert normalize_raw(dataset) == (dataset, [])


def test_doi_links(model_v0_4: Callable[..., dict[str, Any]]) -> None:
    cite = [
        {"text": "a", "doi": "https://doi.org/10.1038/nmeth.4473"},
        {"text": "b", "doi": "http://dx.doi.org/10.6084/m9.figshare.856713"},
        {"text": "c", "doi": "https://arxiv.org/abs/2004.01607"},
        {"text": "d", "doi": "not a doi"},
    ]
    data, issues = normalize_raw(model_v0_4(cite=cite))
    assert data["cite"][0]["doi"] == "10.1038/nmeth.4473"
    assert data["cite"][1]["doi"] == "10.6084/m9.figshare.856713"
    assert data["cite"][2] == {"text": "c", "url": "https://arxiv.org/abs/2004.01607"}
    assert data["cite"][3]["doi"] == "not a doi"
    assert {i.loc for i in issues} == {("cite", k, "doi") for k in range(3)}


def test_author_strings(model_v0_4: Callable[..., dict[str, Any]]) -> None:
    data, issues = normalize_raw(model_v0_4(authors=["Ada", {"name": "Bob"}, ""]))
    assert data["authors"] == [{"name": "Ada"}, {"name": "Bob"}, ""]
    assert [i.loc for i in issues] == [("authors", 0)]


def test_run_mode_list_of_one(model_v0_4: Callable[..., dict[str, Any]]) -> None:
    data, issues = normalize_raw(model_v0_4(run_mode=[{"name": "deepimagej"}]))
    assert data["run_mode"] == {"name": "deepimagej"}
    assert warnings_at(issues, ("run_mode",))
    two = [{"name": "a"}, {"name": "b"}]
    data, issues = normalize_raw(model_v0_4(run_mode=two))
    assert data["run_mode"] == two and issues == []


def test_type_inferred_only_for_old_models(model_v0_4: Callable[..., dict[str, Any]]) -> None:
    raw = model_v0_4(format_version="0.3.0")
    del raw["type"]
    data, issues = normalize_raw(raw)
    assert data["type"] == "model" and warnings_at(issues, ("type",))
    raw = {"format_version": "0.5.4", "inputs": [], "outputs": [], "weights": {}}
    data, issues = normalize_raw(raw)
    assert "type" not in data and issues == []


def test_numbers_read_as_strings(model_v0_4: Callable[..., dict[str, Any]]) -> None:
    raw = model_v0_4(
        config={"bioimageio": {"reproducibility_tolerance": [{"absolute_tolerance": "1e-05"}]}}
    )
    step = raw["inputs"][0]["preprocessing"][0]
    step["kwargs"]["eps"] = "1e-06"
    raw["outputs"][0]["postprocessing"] = [
        {"name": "scale_linear", "kwargs": {"gain": ["2", "3e0"], "offset": "x"}}
    ]
    data, issues = normalize_raw(raw)
    assert data["inputs"][0]["preprocessing"][0]["kwargs"]["eps"] == 1e-6
    assert data["outputs"][0]["postprocessing"][0]["kwargs"] == {"gain": [2.0, 3.0], "offset": "x"}
    tol = data["config"]["bioimageio"]["reproducibility_tolerance"][0]
    assert tol["absolute_tolerance"] == 1e-5
    assert len(issues) == 4


def test_null_weight_entries_dropped(model_v0_4: Callable[..., dict[str, Any]]) -> None:
    raw = model_v0_4()
    raw["weights"]["onnx"] = None
    data, issues = normalize_raw(raw)
    assert "onnx" not in data["weights"]
    assert warnings_at(issues, ("weights", "onnx"))


def test_v0_5_attachments_in_v0_4_form() -> None:
    raw = {"format_version": "0.5.3", "type": "model", "attachments": {"files": ["a.ijm", "b.txt"]}}
    data, issues = normalize_raw(raw)
    assert data["attachments"] == [{"source": "a.ijm"}, {"source": "b.txt"}]
    assert warnings_at(issues, ("attachments",))
    raw["attachments"] = {"files": ["a.ijm"], "other": 1}
    data, issues = normalize_raw(raw)
    assert data["attachments"] == raw["attachments"] and issues == []


def test_non_mapping_input_does_not_raise() -> None:
    data, issues = normalize_raw([1, 2])  # type: ignore[arg-type]
    assert isinstance(data, dict)


@pytest.mark.parametrize(
    ("source", "name", "suffix"),
    [
        ("https://zenodo.org/api/records/1/files/weights.pt/content", "weights.pt", ".pt"),
        ("https://example.com/a/README.MD?download=1", "README.MD", ".md"),
        ("test_input.npy", "test_input.npy", ".npy"),
        ("dir/content", "content", ""),
        (None, "", ""),
    ],
)
def test_file_name_of_zenodo_content_urls(source: object, name: str, suffix: str) -> None:
    assert file_name_of(source) == name
    assert suffix_of(source) == suffix
