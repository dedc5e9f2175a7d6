"""Packages, descriptions and converted models: never replaced without --overwrite, complete or
absent, written with the user's umask."""

from __future__ import annotations

import errno
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pkg_helpers import UseConverters, affine_converter, read_yaml, snapshot, write_yaml

from bioimageio_core.cli import main
from bioimageio_core.hookspecs import ConverterSpec
from bioimageio_core.loading import load_description
from bioimageio_core.packaging import save_bioimageio_package, save_bioimageio_package_as_folder


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_refused(code: int, output: str, path: Path) -> None:
    assert code == 1, output
    assert f"error: output {path} exists already" in output
    assert "--overwrite" in output and "Traceback" not in output


def test_package_zip_is_not_replaced_without_overwrite(example_copy: Path, tmp_path: Path) -> None:
    target = tmp_path / "m.zip"
    target.write_bytes(b"my own zip")
    code, out = run("package", str(example_copy), str(target))
    assert_refused(code, out, target)
    assert target.read_bytes() == b"my own zip"
    assert sorted(os.listdir(tmp_path)) == ["example", "m.zip"]
    code, out = run("package", str(example_copy), str(target), "--overwrite")
    assert code == 0, out
    assert zipfile.is_zipfile(target)


def test_package_folder_is_not_replaced_without_overwrite(
    example_copy: Path, tmp_path: Path
) -> None:
    target = tmp_path / "pkg"
    code, out = run("package", str(example_copy), str(target))
    assert code == 0, out
    (target / "notes.txt").write_text("mine")
    before = snapshot(target)
    code, out = run("package", str(example_copy), str(target))
    assert_refused(code, out, target / "rdf.yaml")
    assert snapshot(target) == before
    # a folder without a description: a file of the package is refused too
    (target / "rdf.yaml").unlink()
    code, out = run("package", str(example_copy), str(target))
    assert code == 1 and "exists already" in out
    code, out = run("package", str(example_copy), str(target), "--overwrite")
    assert code == 0, out
    assert (target / "notes.txt").read_text() == "mine"
    assert load_description(target, perform_io_checks=True).name
    assert not [n for n in os.listdir(target) if n.startswith(".tmp-")]


@pytest.mark.parametrize("command", ["update-format", "update-hashes"])
def test_updated_description_is_not_replaced_without_overwrite(
    command: str, example_copy: Path, tmp_path: Path
) -> None:
    target = tmp_path / "updated.bioimageio.yaml"
    target.write_text("mine: 1\n")
    args = (command, str(example_copy / "rdf.yaml"), "--output", str(target))
    code, out = run(*args)
    assert_refused(code, out, target)
    assert target.read_text() == "mine: 1\n"
    code, out = run(*args, "--overwrite")
    assert code == 0, out
    if command == "update-format":
        assert read_yaml(target)["format_version"].startswith("0.5")


def test_update_hashes_in_place_keeps_the_file_mode(example_copy: Path) -> None:
    rdf = example_copy / "rdf.yaml"
    raw = read_yaml(rdf)
    raw["weights"]["onnx"]["sha256"] = "0" * 64
    write_yaml(rdf, raw)
    rdf.chmod(0o644)
    code, out = run("update-hashes", str(rdf))
    assert code == 0 and "1 sha256 value(s) changed" in out, out
    assert mode_of(rdf) == 0o644


def test_new_packages_and_descriptions_follow_the_umask(example_copy: Path, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        zip_path = save_bioimageio_package(example_copy, tmp_path / "m.zip")
        folder = save_bioimageio_package_as_folder(example_copy, tmp_path / "pkg")
        code, out = run(
            "update-format", str(example_copy / "rdf.yaml"), "-o", str(tmp_path / "u.yaml")
        )
        assert code == 0, out
    finally:
        os.umask(old)
    assert mode_of(zip_path) == 0o644
    assert mode_of(folder) == 0o755
    assert {mode_of(p) for p in folder.iterdir()} == {0o644}
    assert mode_of(tmp_path / "u.yaml") == 0o644


def test_add_weights_output_is_not_replaced_without_overwrite(
    affine_model: Path, tmp_path: Path, use_converters: UseConverters
) -> None:
    use_converters(ConverterSpec("keras_hdf5", "onnx", affine_converter("onnx")))  # type: ignore[arg-type]
    target = tmp_path / "converted"
    args = ("add-weights", str(affine_model), str(target), "--no-verify")
    code, out = run(*args)
    assert code == 0, out
    before = snapshot(target)
    code, out = run(*args)
    assert_refused(code, out, target / "rdf.yaml")
    assert snapshot(target) == before
    code, out = run(*args, "--overwrite")
    assert code == 0, out
    assert snapshot(target) == before
    assert not [n for n in os.listdir(target) if n.startswith(".tmp-")]


def test_a_crashing_conversion_leaves_no_output_folder(
    affine_model: Path, tmp_path: Path, use_converters: UseConverters
) -> None:
    from bioimageio_core.conversion import add_weights

    def crash(model: Any, source: str, out: Path, options: Any) -> Any:
        out.write_bytes(b"half written weights")
        raise KeyboardInterrupt

    use_converters(ConverterSpec("keras_hdf5", "onnx", crash))  # type: ignore[arg-type]
    with pytest.raises(KeyboardInterrupt):
        add_weights(affine_model, tmp_path / "converted")
    assert sorted(os.listdir(tmp_path)) == ["affine"]


def test_a_full_disk_while_zipping_keeps_the_old_zip(
    example_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bioimageio_core.errors import OutputError

    target = tmp_path / "m.zip"
    target.write_bytes(b"old package")
    real = zipfile.ZipFile.write
    written: list[str] = []

    def write(self: zipfile.ZipFile, filename: Any, arcname: Any = None, **kwargs: Any) -> None:
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(str(arcname))
        real(self, filename, arcname, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "write", write)
    with pytest.raises(OutputError, match="disk is full.*m.zip is unchanged"):
        save_bioimageio_package(example_copy, target)
    assert target.read_bytes() == b"old package"
    assert sorted(os.listdir(tmp_path)) == ["example", "m.zip"]


def test_a_failed_copy_leaves_an_existing_package_folder_as_it_was(
    example_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from bioimageio_core.errors import OutputError

    target = save_bioimageio_package_as_folder(example_copy, tmp_path / "pkg")
    before = snapshot(target)
    real = shutil.copyfileobj
    copies: list[int] = []

    def copy(src: Any, dst: Any, length: int = 0) -> None:
        copies.append(1)
        if len(copies) % 3 == 0:
            raise OSError(errno.ENOSPC, "No space left on device", getattr(dst, "name", None))
        real(src, dst, length)

    monkeypatch.setattr(shutil, "copyfileobj", copy)
    with pytest.raises(OutputError, match="disk is full"):
        save_bioimageio_package_as_folder(example_copy, target)
    assert snapshot(target) == before
    assert sorted(os.listdir(tmp_path)) == ["example", "pkg"]
    with pytest.raises(OutputError, match="disk is full"):
        save_bioimageio_package_as_folder(example_copy, tmp_path / "new")
    assert sorted(os.listdir(tmp_path)) == ["example", "pkg"]


def test_the_python_api_replaces_by_default_and_refuses_when_asked(
    example_copy: Path, tmp_path: Path
) -> None:
    from bioimageio_core.errors import OutputExistsError

    target = tmp_path / "m.zip"
    target.write_bytes(b"old")
    with pytest.raises(OutputExistsError):
        save_bioimageio_package(example_copy, target, overwrite=False)
    assert target.read_bytes() == b"old"
    save_bioimageio_package(example_copy, target)
    assert zipfile.is_zipfile(target)
