"""File references never leave the description's root (folder, zip package or URL folder).

Attacks: ``..`` segments, absolute paths, ``file:`` URLs, backslashes, %-encoded dots and slashes,
and symbolic links inside a folder that point out of it. Each is a validation error with the
field path, and ``open_file`` / ``package`` refuse them even for a descriptor built without
validation (defence in depth).
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bioimageio_core import (
    load_description,
    save_bioimageio_package,
    save_bioimageio_package_as_folder,
    validate_format,
)
from bioimageio_core.errors import SourceError, ValidationError
from bioimageio_core.references import reference_problem
from bioimageio_core.sources import FolderRoot, UrlRoot, ZipRoot, open_file
from bioimageio_core.spec import build_description, iter_file_refs

if TYPE_CHECKING:
    from tests.conftest import FileServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny-nuclei-unet"
SECRET = b"secret: do not leak\n"

ESCAPES = [
    "../secret.txt",
    "sub/../../secret.txt",
    "./../secret.txt",
    "..",
    "..\\secret.txt",
    "sub\\..\\..\\secret.txt",
    "%2e%2e/secret.txt",
    "..%2fsecret.txt",
    "file:../secret.txt",
    "FILE:///etc/hostname",
    "ftp://example.org/w.pt",
    "/etc/hostname",
    "//server/share/secret.txt",
    "C:/Windows/win.ini",
    "c:secret.txt",
    "\\\\server\\share\\secret.txt",
    "w.pt\x00.npy",
]

FIELDS: dict[str, tuple[tuple[str | int, ...], str]] = {
    # field path in the YAML -> (where to write it, the YAML path in messages)
    "documentation": (("documentation", "source"), "$.documentation"),
    "cover": (("covers", 0, "source"), "$.covers[0]"),
    "attachment": (("attachments", 0, "source"), "$.attachments[0]"),
    "test tensor": (("inputs", 0, "test_tensor", "source"), "$.inputs[0].test_tensor"),
    "sample tensor": (
        ("outputs", 0, "sample_tensor", "source"),
        "$.outputs[0].sample_tensor",
    ),
    "weights": (("weights", "onnx", "source"), "$.weights.onnx.source"),
    "architecture": (
        ("weights", "pytorch_state_dict", "architecture", "source"),
        "$.weights.pytorch_state_dict.architecture.source",
    ),
    "icon": (("icon", "source"), "$.icon"),
}


def _set(data: Any, loc: tuple[str | int, ...], value: Any) -> None:
    """Write ``value`` at ``loc``, creating missing mappings / one-item lists on the way."""
    for key, following in zip(loc[:-1], loc[1:], strict=True):
        if isinstance(key, str) and key not in data:
            data[key] = [{}] if isinstance(following, int) else {}
        data = data[key]
    data[loc[-1]] = value


def model_folder(tmp_path: Path, field: str, reference: str) -> Path:
    """A copy of the example model with ``reference`` written into ``field`` (its sha256
    dropped), and a secret next to the model folder (outside it)."""
    (tmp_path / "secret.txt").write_bytes(SECRET)
    folder = tmp_path / "model"
    shutil.copytree(EXAMPLE, folder)
    data = yaml.safe_load((folder / "rdf.yaml").read_text())
    loc, _ = FIELDS[field]
    _set(data, loc, reference)
    if loc[-1] == "source":
        parent: Any = data
        for key in loc[:-1]:
            parent = parent[key]
        parent.pop("sha256", None)
    (folder / "rdf.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


@pytest.mark.parametrize("field", list(FIELDS))
def test_escaping_reference_fails_validation_with_its_field(tmp_path: Path, field: str) -> None:
    folder = model_folder(tmp_path, field, "../secret.txt")
    for io_checks in (True, False):
        summary = validate_format(folder, perform_io_checks=io_checks)
        assert summary.status == "failed", summary.format_text()
        text = summary.format_text()
        assert FIELDS[field][1] in text and "'../secret.txt'" in text
        assert "outside" in text
    with pytest.raises(ValidationError):
        load_description(folder)


@pytest.mark.parametrize("reference", ESCAPES)
def test_every_escape_form_is_refused(tmp_path: Path, reference: str) -> None:
    folder = model_folder(tmp_path, "documentation", reference)
    summary = validate_format(folder, perform_io_checks=False)
    assert summary.status == "failed"
    assert "$.documentation" in summary.format_text()
    assert reference_problem(reference) is not None
    with pytest.raises(SourceError) as info:
        open_file(FolderRoot(folder), reference)
    assert "outside" in str(info.value) or "not allowed" in str(info.value)


@pytest.mark.parametrize(
    "reference",
    ["README.md", "./README.md", "docs/./x.md", "a..b/c.md", "..hidden.md", "dummy.py:", "~/x.md"],
)
def test_references_inside_the_root_are_fine(reference: str) -> None:
    assert reference_problem(reference) is None


@pytest.mark.parametrize(
    "reference",
    ["https://example.org/weights.pt", "http://10.0.0.1:8080/a/../b.onnx", "HTTPS://Example.org/x"],
)
def test_urls_to_any_host_are_allowed(reference: str) -> None:
    assert reference_problem(reference) is None


def test_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, "documentation", "README.md")
    (folder / "README.md").unlink()
    (folder / "README.md").symlink_to(tmp_path / "secret.txt")
    summary = validate_format(folder)
    assert summary.status == "failed"
    text = summary.format_text()
    assert "$.documentation" in text and "symbolic link" in text
    with pytest.raises(SourceError, match="symbolic link"):
        open_file(FolderRoot(folder), "README.md")
    # a link to a folder outside, used as a folder in the reference
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "w.onnx").write_bytes(b"x")
    (folder / "linked").symlink_to(outside, target_is_directory=True)
    with pytest.raises(SourceError, match="symbolic link"):
        open_file(FolderRoot(folder), "linked/w.onnx")


def test_symlink_inside_the_folder_is_fine(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, "documentation", "docs/README.md")
    (folder / "docs").mkdir()
    (folder / "docs" / "README.md").symlink_to(folder / "README.md")
    assert validate_format(folder).status != "failed"
    assert open_file(FolderRoot(folder), "docs/README.md").read_bytes().startswith(b"#")


def _unchecked(folder: Path, field: str, reference: str) -> Any:
    """The example descriptor with ``reference`` put into it after validation (no checks ran)."""
    descr = load_description(folder)
    if field == "documentation":
        return attrs.evolve(descr, documentation=reference)
    inputs = list(descr.inputs)
    tensor = attrs.evolve(inputs[0].test_tensor, source=reference, sha256=None)
    inputs[0] = attrs.evolve(inputs[0], test_tensor=tensor)
    return attrs.evolve(descr, inputs=tuple(inputs))


@pytest.mark.parametrize("field", ["documentation", "test tensor"])
@pytest.mark.parametrize("reference", ["../secret.txt", "__ABS__"])
def test_package_never_copies_files_from_outside(
    tmp_path: Path, field: str, reference: str
) -> None:
    folder = model_folder(tmp_path, "documentation", "README.md")
    if reference == "__ABS__":
        reference = str(tmp_path / "secret.txt")
    descr = _unchecked(folder, field, reference)
    with pytest.raises(SourceError, match="outside") as info:
        save_bioimageio_package(descr, tmp_path / "out.zip")
    assert info.value.loc is not None and info.value.loc.startswith("$.")
    assert not (tmp_path / "out.zip").exists()
    with pytest.raises(SourceError, match="outside"):
        save_bioimageio_package_as_folder(descr, tmp_path / "out")
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and p.read_bytes() == SECRET]
    assert leaked == [tmp_path / "secret.txt"]


def test_package_of_a_valid_model_still_works(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, "documentation", "README.md")
    out = save_bioimageio_package(folder, tmp_path / "ok.zip")
    with zipfile.ZipFile(out) as zf:
        assert "README.md" in zf.namelist()


def test_zip_root_refuses_escapes(tmp_path: Path) -> None:
    package = tmp_path / "m.zip"
    with zipfile.ZipFile(package, "w") as zf:
        zf.writestr("rdf.yaml", "name: x\n")
        zf.writestr("w.pt", b"w")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    for reference in ESCAPES:
        with pytest.raises(SourceError):
            open_file(ZipRoot(package), reference)
    assert open_file(ZipRoot(package), "./w.pt").read_bytes() == b"w"


def test_url_root_refuses_escapes_without_a_request(http_server: FileServer) -> None:
    (http_server.root / "models" / "m").mkdir(parents=True)
    (http_server.root / "secret.txt").write_bytes(SECRET)
    (http_server.root / "models" / "m" / "w.bin").write_bytes(b"w")
    root = UrlRoot(http_server.url("models/m/"))
    escapes = ["../../secret.txt", "%2e%2e/%2e%2e/secret.txt", "/secret.txt", "..\\secret", "x:y"]
    for reference in escapes:
        with pytest.raises(SourceError, match="outside|not allowed"):
            open_file(root, reference)
    assert http_server.count() == 0
    assert open_file(root, "w.bin").read_bytes() == b"w"
    # an absolute URL (to any host) is allowed where a file may be a URL
    assert open_file(root, http_server.url("secret.txt")).read_bytes() == SECRET


def test_remote_description_with_escaping_reference_fails_validation(
    http_server: FileServer,
) -> None:
    data = yaml.safe_load((EXAMPLE / "rdf.yaml").read_text())
    data["documentation"] = "../../secret.txt"
    (http_server.root / "models" / "m").mkdir(parents=True)
    (http_server.root / "models" / "m" / "rdf.yaml").write_text(yaml.safe_dump(data))
    summary = validate_format(http_server.url("models/m/rdf.yaml"), perform_io_checks=False)
    assert summary.status == "failed" and "$.documentation" in summary.format_text()


def test_v0_4_field_path_is_the_one_written(conformance: Path) -> None:
    model = conformance / "models" / "unet2d_nuclei_broad" / "v0_4_9.bioimageio.yaml"
    raw = yaml.safe_load(model.read_text())
    raw["test_inputs"] = ["../test_input.npy"]
    result = build_description(raw)
    assert result.descr is None
    assert "$.test_inputs[0]" in [i.path for i in result.errors], result.errors


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(["a", "b.npy", ".", "..", "", "%2e%2e", "%2F", "\\", "C:", "~", "x:y"]),
        min_size=1,
        max_size=5,
    )
)
def test_accepted_references_resolve_inside_the_root(parts: list[str]) -> None:
    reference = "/".join(parts)
    if reference_problem(reference) is not None:
        return
    root = Path("/model/root")
    resolved = Path(os.path.normpath(root / reference))
    assert resolved == root or root in resolved.parents
    base = "https://example.org/m/root/"
    if ":" not in parts[0]:  # "x:y" is a URL of scheme x to urljoin; open_file refuses it
        assert UrlRoot(base).join(reference).startswith(base)


def test_inline_training_data_references_are_checked() -> None:
    data = yaml.safe_load((EXAMPLE / "rdf.yaml").read_text())
    data["training_data"] = {
        "type": "dataset",
        "format_version": "0.3.0",
        "name": "inline data",
        "description": "d",
        "documentation": "data.md",
    }
    descr = build_description(data).descr
    assert descr is not None
    refs = {loc: ref.source for loc, ref in iter_file_refs(descr)}
    assert refs[("training_data", "documentation")] == "data.md"
    data["training_data"]["documentation"] = "../secret.md"
    result = build_description(data)
    assert result.descr is None
    assert "$.training_data.documentation" in [i.path for i in result.errors]


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        (
            "badges",
            [{"label": "b", "url": "https://x.org", "icon": "../b.svg"}],
            "$.badges[0].icon",
        ),
        ("source", "/etc/hostname", "$.source"),
        ("covers", ["ok.png", "file:///etc/x.png"], "$.covers[1]"),
    ],
)
def test_generic_description_fields(field: str, value: object, path: str) -> None:
    data = {
        "type": "dataset",
        "format_version": "0.3.0",
        "name": "a dataset",
        "description": "d",
        field: value,
    }
    result = build_description(data)
    assert result.descr is None
    assert path in [i.path for i in result.errors]


def test_badge_icons_that_are_urls_or_emoji_are_no_files() -> None:
    data = {
        "type": "dataset",
        "format_version": "0.3.0",
        "name": "a dataset",
        "description": "d",
        "badges": [
            {"label": "a", "url": "https://x.org", "icon": "https://img.shields.io/x.svg"},
            {"label": "b", "url": "https://x.org", "icon": "badge.svg"},
        ],
    }
    descr = build_description(data).descr
    assert [ref.source for _, ref in iter_file_refs(descr)] == ["badge.svg"]
