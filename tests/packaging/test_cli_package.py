"""CLI commands package, update-hashes and add-weights."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from cli_run import run
from pkg_helpers import UseConverters, affine_converter, read_yaml, sha256, write_yaml

from bioimageio_core.hookspecs import ConverterSpec
from bioimageio_core.loading import load_description

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_package_zip_and_folder(example_copy: Path, tmp_path: Path) -> None:
    code, out, _ = run("package", str(example_copy / "rdf.yaml"), str(tmp_path / "m.zip"))
    assert code == 0, out
    assert f"package written to {tmp_path / 'm.zip'}" in out
    assert zipfile.is_zipfile(tmp_path / "m.zip")
    code, out, _ = run(
        "package",
        str(example_copy),
        str(tmp_path / "folder"),
        "--weights-format",
        "keras_hdf5",
        "--weights-format",
        "torchscript",
    )
    assert code == 0, out
    model = load_description(tmp_path / "folder", perform_io_checks=True)
    assert model.weights.available_formats == ("torchscript",)


def test_package_error_is_one_line(example_copy: Path, tmp_path: Path) -> None:
    (example_copy / "weights.onnx").unlink()
    code, out, err = run("package", str(example_copy), str(tmp_path / "m.zip"))
    assert code == 1
    assert "error: file not found: weights.onnx (at $.weights.onnx.source)" in out + err
    assert "Traceback" not in out + err


def test_update_hashes_in_place_and_to_output(example_copy: Path) -> None:
    raw = read_yaml(example_copy / "rdf.yaml")
    raw["weights"]["torchscript"]["sha256"] = "0" * 64
    write_yaml(example_copy / "rdf.yaml", raw)
    code, out, _ = run(
        "update-hashes", str(example_copy / "rdf.yaml"), "--output", str(example_copy / "x.yaml")
    )
    assert code == 0, out
    assert read_yaml(example_copy / "rdf.yaml")["weights"]["torchscript"]["sha256"] == "0" * 64
    code, out, _ = run("update-hashes", str(example_copy / "rdf.yaml"))
    assert code == 0, out
    new = sha256(example_copy / "weights_torchscript.pt")
    assert f"$.weights.torchscript.sha256: {'0' * 64} -> {new}" in out
    assert "1 sha256 value(s) changed" in out
    assert read_yaml(example_copy / "rdf.yaml")["weights"]["torchscript"]["sha256"] == new


def test_add_weights_reports_and_exit_code(
    affine_model: Path, tmp_path: Path, use_converters: UseConverters
) -> None:
    use_converters(
        ConverterSpec("keras_hdf5", "onnx", affine_converter("onnx")),  # type: ignore[arg-type]
        ConverterSpec(
            "keras_hdf5",
            "torchscript",
            affine_converter("torchscript", fail="no"),  # type: ignore[arg-type]
        ),
    )
    code, out, _ = run(
        "add-weights",
        str(affine_model),
        str(tmp_path / "a"),
        "--target-format",
        "onnx",
        "--no-verify",
    )
    assert code == 0, out
    assert "added: keras_hdf5 -> onnx" in out
    assert f"model written to {tmp_path / 'a' / 'rdf.yaml'}" in out
    code, out, _ = run("add-weights", str(affine_model), str(tmp_path / "b"), "--no-verify")
    assert code == 1
    assert "failed: keras_hdf5 -> torchscript (conversion failed: RuntimeError: no)" in out
    code, out, err = run(
        "add-weights", str(affine_model), str(tmp_path / "c"), "--source-format", "onnx"
    )
    assert code == 1
    assert "error: the model has no onnx weights" in out + err


def test_commands_are_listed_in_a_fresh_process() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bioimageio_core", "--help"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for command in ("package", "update-hashes", "add-weights"):
        assert command in result.stdout
