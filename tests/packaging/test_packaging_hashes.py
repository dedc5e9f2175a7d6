"""update_hashes: recompute sha256 values and write them back."""

from __future__ import annotations

from pathlib import Path

import pytest
from descriptions import described
from pkg_helpers import read_yaml, sha256, snapshot, write_yaml

from bioimageio_core.errors import BioimageioError, SourceError, ValidationError
from bioimageio_core.loading import load_description
from bioimageio_core.packaging import save_bioimageio_package, update_hashes


def test_update_hashes_fixes_wrong_and_missing_values(example_copy: Path) -> None:
    rdf = example_copy / "rdf.yaml"
    raw = read_yaml(rdf)
    old_onnx = raw["weights"]["onnx"]["sha256"]
    raw["weights"]["onnx"]["sha256"] = "0" * 64
    del raw["weights"]["pytorch_state_dict"]["architecture"]["sha256"]
    write_yaml(rdf, raw)
    with pytest.raises(ValidationError):
        load_description(rdf, perform_io_checks=True)

    report = update_hashes(rdf)

    assert report.output_path == rdf
    changes = {u.field: (u.old, u.new, u.source) for u in report.changed}
    assert changes == {
        "$.weights.onnx.sha256": ("0" * 64, sha256(example_copy / "weights.onnx"), "weights.onnx"),
        "$.weights.pytorch_state_dict.architecture.sha256": (
            None,
            sha256(example_copy / "unet.py"),
            "unet.py",
        ),
    }
    assert old_onnx == sha256(example_copy / "weights.onnx")
    # every other pinned file was already right (format 0.5.11+: covers and documentation too)
    assert len(report.unchanged) == 8
    assert {"$.covers[0].sha256", "$.documentation.sha256"} <= set(report.unchanged)
    assert "$.outputs[0].test_tensor.sha256" in report.unchanged
    assert report.not_stored == ()
    load_description(rdf, perform_io_checks=True)
    written = read_yaml(rdf)
    assert written["weights"]["pytorch_state_dict"]["architecture"]["sha256"] == sha256(
        example_copy / "unet.py"
    )
    assert "2 sha256 value(s) changed, 8 already right" in report.format_text()


def test_update_hashes_leaves_a_correct_file_alone(example_copy: Path) -> None:
    rdf = example_copy / "rdf.yaml"
    text = rdf.read_text()
    report = update_hashes(example_copy)  # the folder works too
    assert report.changed == () and report.output_path is None
    assert rdf.read_text() == text
    assert "nothing written" in report.format_text()


def test_update_hashes_after_a_file_changed(example_copy: Path) -> None:
    (example_copy / "test_output.npy").write_bytes(
        (example_copy / "test_output.npy").read_bytes()[:-4] + b"\0\0\0\0"
    )
    report = update_hashes(example_copy / "rdf.yaml")
    assert [u.field for u in report.changed] == ["$.outputs[0].test_tensor.sha256"]
    assert read_yaml(example_copy / "rdf.yaml")["outputs"][0]["test_tensor"]["sha256"] == sha256(
        example_copy / "test_output.npy"
    )


def test_update_hashes_to_an_output_path_keeps_the_source(example_copy: Path) -> None:
    rdf = example_copy / "rdf.yaml"
    raw = read_yaml(rdf)
    raw["inputs"][0]["sample_tensor"]["sha256"] = "1" * 64
    write_yaml(rdf, raw)
    before = snapshot(example_copy)
    out = example_copy / "fixed.bioimageio.yaml"
    report = update_hashes(rdf, out)
    assert report.output_path == out
    assert snapshot(example_copy) == {**before, "fixed.bioimageio.yaml": sha256(out)}
    load_description(out, perform_io_checks=True)
    # the rest of the YAML is kept as written (format 0.5.4, processing as written)
    written = read_yaml(out)
    raw["inputs"][0]["sample_tensor"]["sha256"] = sha256(example_copy / "sample_input.png")
    assert written == raw


def test_update_hashes_of_a_package_needs_an_output(example_copy: Path, tmp_path: Path) -> None:
    package = save_bioimageio_package(example_copy, tmp_path / "m.zip")
    with pytest.raises(BioimageioError, match="not a local YAML file"):
        update_hashes(package)
    report = update_hashes(package, tmp_path / "rdf.yaml")
    assert report.changed == () and (tmp_path / "rdf.yaml").is_file()


def test_update_hashes_reports_a_missing_file_with_its_field(example_copy: Path) -> None:
    (example_copy / "weights.onnx").unlink()
    with pytest.raises(SourceError, match="weights.onnx") as e:
        update_hashes(example_copy / "rdf.yaml")
    assert e.value.loc == "$.weights.onnx.source"


def test_update_hashes_refuses_an_invalid_description(example_copy: Path) -> None:
    raw = read_yaml(example_copy / "rdf.yaml")
    del raw["inputs"]
    write_yaml(example_copy / "rdf.yaml", raw)
    with pytest.raises(BioimageioError, match="invalid description"):
        update_hashes(example_copy / "rdf.yaml")


def test_update_hashes_keeps_format_0_4(
    example_copy: Path, tmp_path: Path
) -> None:
    import numpy as np

    folder = tmp_path / "v04"
    folder.mkdir()
    np.save(folder / "in.npy", np.zeros((1, 1, 16, 16), "float32"))
    np.save(folder / "out.npy", np.zeros((1, 1, 16, 16), "float32"))
    (folder / "weights.pt").write_bytes((example_copy / "weights.pt").read_bytes())
    (folder / "unet.py").write_bytes((example_copy / "unet.py").read_bytes())
    tensor = {"axes": "bcyx", "data_type": "float32"}
    raw = {
        **described("0.4.10", "old model", description="a 0.4 model", documentation="README.md"),
        "test_inputs": ["in.npy"],
        "test_outputs": ["out.npy"],
        "inputs": [{"name": "raw", "shape": [1, 1, 16, 16], **tensor}],
        "outputs": [{"name": "out", "shape": [1, 1, 16, 16], **tensor}],
        "weights": {
            "pytorch_state_dict": {
                "source": "weights.pt",
                "sha256": "0" * 64,
                "architecture": "unet.py:TinyUNet",
                "architecture_sha256": "0" * 64,
                "kwargs": {"in_channels": 1, "out_channels": 1, "features": 8},
            }
        },
    }
    (folder / "README.md").write_text("# old\n")
    write_yaml(folder / "rdf.yaml", raw)
    report = update_hashes(folder / "rdf.yaml")
    written = read_yaml(folder / "rdf.yaml")
    assert written["format_version"] == "0.4.10"
    entry = written["weights"]["pytorch_state_dict"]
    assert entry["sha256"] == sha256(folder / "weights.pt")
    assert entry["architecture_sha256"] == sha256(folder / "unet.py")
    assert entry["architecture"] == "unet.py:TinyUNet"
    assert len(report.changed) == 2
    load_description(folder / "rdf.yaml", perform_io_checks=True)
