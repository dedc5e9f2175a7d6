"""load_description / validate_format on the real example model (folder, zip, URL)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from conformance_models import UNET, UNET_LOCAL_FILES

from bioimageio_core import (
    ValidationError,
    dump_description,
    load_description,
    save_bioimageio_yaml_only,
    validate_format,
)
from bioimageio_core.sources import FolderRoot, UrlRoot, ZipRoot

if TYPE_CHECKING:
    from tests.conftest import FileServer


@pytest.fixture
def model_dir(conformance: Path) -> Path:
    return conformance / UNET


def local_only(model_dir: Path) -> dict[str, Any]:
    """The 0.5 description without the weights entry whose files are not shipped."""
    data: dict[str, Any] = yaml.safe_load((model_dir / "bioimageio.yaml").read_text())
    del data["weights"]["pytorch_state_dict"]
    for entry in data["weights"].values():
        entry.pop("parent", None)
    return data


def copy_model(model_dir: Path, target: Path, data: dict[str, Any]) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name in UNET_LOCAL_FILES:
        shutil.copyfile(model_dir / name, target / name)
    (target / "bioimageio.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return target


def test_loading_real_model_without_io_checks(model_dir: Path) -> None:
    summary = validate_format(model_dir / "bioimageio.yaml", perform_io_checks=False)
    assert summary.status == "valid-format", summary.format_text()
    assert summary.name == "UNet 2D Nuclei Broad"
    assert summary.format_version == "0.5.4"
    assert [d.name for d in summary.details] == ["format"]
    descr = load_description(model_dir, perform_io_checks=False)
    assert descr.root == FolderRoot(model_dir.resolve())
    assert [t.id for t in descr.inputs] == ["raw"]


def test_loading_converts_0_4(model_dir: Path) -> None:
    summary = validate_format(model_dir / "v0_4_9.bioimageio.yaml", perform_io_checks=False)
    assert summary.is_valid, summary.format_text()
    assert summary.format_version == "0.4.9"
    assert summary.converted_format_version is not None
    assert summary.converted_format_version.startswith("0.5")
    assert "converted to 0.5" in summary.format_text()


def test_loading_invalid_variant_fails_with_field_path(
    model_dir: Path
) -> None:
    source = model_dir / "invalid_v0_4_0_duplicate_tensor_names.bioimageio.yaml"
    summary = validate_format(source, perform_io_checks=False)
    assert summary.status == "failed"
    paths = [issue.path for _, issue in summary.errors]
    assert any(p.startswith(("$.outputs", "$.inputs")) for p in paths), paths
    with pytest.raises(ValidationError) as info:
        load_description(source, perform_io_checks=False)
    assert info.value.summary.status == "failed"
    assert str(source.name) in str(info.value) and "$." in str(info.value)


def test_loading_real_model_io_checks_report_missing_files(model_dir: Path, tmp_path: Path) -> None:
    data: dict[str, Any] = yaml.safe_load((model_dir / "bioimageio.yaml").read_text())
    # no network in tests: point the remote weights at a local file that does not exist
    data["weights"]["pytorch_state_dict"]["source"] = "missing_weights.pt"
    folder = copy_model(model_dir, tmp_path / "m", data)
    summary = validate_format(folder, perform_io_checks=True)
    assert summary.status == "failed"
    messages = [issue.msg for _, issue in summary.errors]
    assert (
        "file not found: unet2d.py (referenced at "
        "$.weights.pytorch_state_dict.architecture.source)" in messages
    ), messages
    assert any(m.startswith("file not found: missing_weights.pt") for m in messages)
    assert validate_format(folder, perform_io_checks=False).status == "valid-format"


def test_loading_io_checks_pass_and_detect_sha256_mismatch(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = copy_model(model_dir, tmp_path / "m", local_only(model_dir))
    summary = validate_format(folder, perform_io_checks=True)
    assert summary.status == "valid-format", summary.format_text()
    assert [d.name for d in summary.details] == ["format", "io checks"]
    # the setting is the default when no argument is given
    (folder / "weights.onnx").write_bytes(b"not the onnx file")
    monkeypatch.setenv("BIOIMAGEIO_PERFORM_IO_CHECKS", "0")
    assert validate_format(folder).status == "valid-format"
    monkeypatch.setenv("BIOIMAGEIO_PERFORM_IO_CHECKS", "1")
    summary = validate_format(folder)
    assert summary.status == "failed"
    (_, issue), *_ = summary.errors
    assert issue.path == "$.weights.onnx.source"
    assert "sha256 mismatch for weights.onnx" in issue.msg
    assert "85f5ac80fa977fea3562ef97c8c5950288be2c4f4cdb5d994807df97008ce088" in issue.msg


def test_loading_zip_package_with_io_checks(model_dir: Path, tmp_path: Path) -> None:
    data = local_only(model_dir)
    package = tmp_path / "model.zip"
    with zipfile.ZipFile(package, "w") as zf:
        zf.writestr("rdf.yaml", yaml.safe_dump(data, sort_keys=False))
        for name in UNET_LOCAL_FILES:
            zf.write(model_dir / name, name)
    descr = load_description(package, perform_io_checks=True)
    assert descr.root == ZipRoot(package.resolve())


def test_loading_url_resolves_files_against_url(model_dir: Path, http_server: FileServer) -> None:
    copy_model(model_dir, http_server.root / "m", local_only(model_dir))
    url = http_server.url("m/bioimageio.yaml")

    descr = load_description(url, perform_io_checks=False)
    assert descr.root == UrlRoot(http_server.url("m/"))
    assert http_server.count() == 1, "without io checks only the YAML is fetched"

    summary = validate_format(url, perform_io_checks=True)
    assert summary.status == "valid-format", summary.format_text()
    assert http_server.count("m/weights.onnx") == 1
    assert http_server.count("m/cover0.png") == 0, "covers are looked up (HEAD), not downloaded"
    # pinned files come from the cache the second time; only unpinned ones are asked again
    validate_format(url, perform_io_checks=True)
    assert http_server.count("m/weights.onnx") == 1
    assert http_server.count("m/test_input.npy") == 1


def test_loading_dump_and_save_round_trip(
    model_dir: Path, tmp_path: Path
) -> None:
    descr = load_description(model_dir / "v0_4_9.bioimageio.yaml", perform_io_checks=False)
    dumped = dump_description(descr)
    assert str(dumped["format_version"]).startswith("0.5")
    assert "root" not in dumped
    target = save_bioimageio_yaml_only(descr, tmp_path / "out" / "converted.bioimageio.yaml")
    again = load_description(target, perform_io_checks=False)
    assert dump_description(again) == dumped


def test_loading_unreadable_sources_give_failed_summaries(tmp_path: Path) -> None:
    for source in (tmp_path / "nope", "not-an-id-we-know", tmp_path):
        summary = validate_format(source)
        assert summary.status == "failed"
        assert summary.details[0].name == "read source"
        assert summary.errors
    with pytest.raises(ValidationError, match="no such file or folder"):
        load_description(tmp_path / "nope")


def test_loading_invalid_0_5_field_is_located(model_dir: Path, tmp_path: Path) -> None:
    data: dict[str, Any] = yaml.safe_load((model_dir / "bioimageio.yaml").read_text())
    data["inputs"][0]["axes"][2]["size"] = "big"
    summary = validate_format(data, perform_io_checks=False)
    assert summary.status == "failed"
    assert "$.inputs[0].axes[2].size" in [issue.path for _, issue in summary.errors]
    with pytest.raises(ValidationError, match=r"\$\.inputs\[0\]\.axes\[2\]\.size"):
        load_description(data, perform_io_checks=False)
