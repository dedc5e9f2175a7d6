"""What we write is in the current formats (model 0.5.14, generic 0.3.4); the format_version
argument of loading is honoured or refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_run import run

from bioimageio_core import (
    dump_description,
    load_description,
    save_bioimageio_yaml_only,
    validate_format,
)
from bioimageio_core.loading import load_description_and_summary


def _model(**fields: Any) -> dict[str, Any]:
    axes = [{"type": "channel", "channel_names": ["c"]}, {"type": "space", "id": "x", "size": 8}]
    return {
        "format_version": "0.5.4",
        "type": "model",
        "name": "written model",
        "license": "MIT",
        "documentation": "README.md",
        "covers": ["cover.png"],
        "inputs": [{"id": "raw", "axes": axes}],
        "outputs": [{"id": "out", "axes": axes}, {"id": "labels", "axes": axes,
                                                  "data": {"type": "uint16"}}],
        "weights": {"onnx": {"source": "w.onnx", "opset_version": 17}},
        **fields,
    }  # fmt: skip


def _write(folder: Path, raw: dict[str, Any], name: str = "rdf.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    return path


def test_dump_and_save_write_0_5_14_with_explicit_tolerance_output_ids(tmp_path: Path) -> None:
    config = {
        "bioimageio": {
            "reproducibility_tolerance": [
                {"absolute_tolerance": 1e-4},
                {"output_ids": ["labels"], "relative_tolerance": 0, "absolute_tolerance": 0},
            ]
        }
    }
    descr = load_description(_model(config=config), perform_io_checks=False)
    dumped = dump_description(descr)
    assert dumped["format_version"] == "0.5.14"
    assert dumped["documentation"] == {"source": "README.md"}
    assert dumped["covers"] == [{"source": "cover.png"}]
    entries = dumped["config"]["bioimageio"]["reproducibility_tolerance"]
    assert [e["output_ids"] for e in entries] == [[], ["labels"]]
    path = save_bioimageio_yaml_only(descr, tmp_path / "saved.bioimageio.yaml")
    assert yaml.safe_load(path.read_text()) == dumped


def test_update_format_writes_the_default_tolerances_only_when_given(tmp_path: Path) -> None:
    source = _write(tmp_path, _model())
    code, out, err = run("update-format", str(source))
    assert code == 0, err
    written = yaml.safe_load(out)
    assert written["format_version"] == "0.5.14"
    assert "config" not in written  # no key: the format's defaults, read back the same
    config = {
        "bioimageio": {
            "reproducibility_tolerance": [
                {"output_ids": "any_continuous_output", "absolute_tolerance": 1e-4},
                {"output_ids": "any_discrete_output", "mismatched_elements_per_million": 0},
            ]
        }
    }
    source = _write(tmp_path, _model(config=config))
    code, out, err = run("update-format", str(source))
    assert code == 0, err
    entries = yaml.safe_load(out)["config"]["bioimageio"]["reproducibility_tolerance"]
    assert [e["output_ids"] for e in entries] == ["any_continuous_output", "any_discrete_output"]


def test_update_format_of_a_generic_0_2_description(tmp_path: Path) -> None:
    raw = {
        "format_version": "0.2.2",
        "type": "dataset",
        "name": "old dataset",
        "description": "d",
        "license": "CC-BY-4.0",
        "covers": ["c.png"],
        "attachments": {"files": ["notes.txt"]},
        "download_url": "https://example.com/data.zip",
    }
    code, out, err = run("update-format", str(_write(tmp_path, raw)))
    assert code == 0, err
    written = yaml.safe_load(out)
    assert written["format_version"] == "0.3.4"
    assert written["covers"] == [{"source": "c.png"}]
    assert written["attachments"] == [{"source": "notes.txt"}]
    assert "download_url" not in written
    assert "warning: $.download_url:" in err and "dropped" in err


def test_update_format_drops_unknown_top_level_fields_with_a_warning(tmp_path: Path) -> None:
    code, out, err = run("update-format", str(_write(tmp_path, _model(created="2021-01-01"))))
    assert code == 0, err
    assert "created" not in yaml.safe_load(out)
    assert "warning: $.created: unknown field 'created' has no place in format 0.5.14" in err


def test_update_format_refuses_what_the_current_format_forbids(tmp_path: Path) -> None:
    raw = _model(license="my own license", format_version="0.5.14", covers=[{"source": "c.png"}],
                 documentation={"source": "README.md"})  # fmt: skip
    code, _, err = run("update-format", str(_write(tmp_path, raw)))
    assert code == 1
    assert "must be an SPDX license id" in err


@pytest.mark.parametrize("requested", ["discover", "latest", "0.5", "0.5.14"])
def test_load_description_format_version_values(requested: str) -> None:
    descr = load_description(_model(), perform_io_checks=False, format_version=requested)
    assert descr.format_version == "0.5.14"


@pytest.mark.parametrize("requested", ["0.4.10", "0.5.4", "0.3.0", "newest", ""])
def test_unsupported_format_version_is_refused_not_ignored(requested: str) -> None:
    for call in (load_description, validate_format, load_description_and_summary):
        with pytest.raises(ValueError, match=f"format_version={requested!r} is not supported"):
            call(_model(), perform_io_checks=False, format_version=requested)


def test_format_version_of_another_family_is_an_error() -> None:
    descr, summary = load_description_and_summary(
        _model(), perform_io_checks=False, format_version="0.3.4"
    )
    assert descr is None
    assert "this is a model description" in summary.first_error_text()
