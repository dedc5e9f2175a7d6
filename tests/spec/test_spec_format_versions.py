"""Format versions: model 0.5.x -> 0.5.14 and generic 0.2/0.3 -> 0.3.4, file fields as file
descriptions from 0.5.11 / 0.3.4 on, licenses, axis ids and channel names of format 0.5.14."""

from __future__ import annotations

from typing import Any

import pytest
from descriptions import tiny_model_v0_4
from spec_examples import minimal_model

from bioimageio_core.spec import (
    ApplicationDescr,
    BuildResult,
    DatasetDescr,
    DatasetDescr02,
    FileDescr,
    GenericDescr,
    ModelDescr,
    NotebookDescr,
    build_description,
    dump_description,
    iter_file_refs,
)

FILES = {"documentation": "README.md", "covers": ["c.png"], "icon": "icon.png"}


def _model(version: str, **fields: Any) -> dict[str, Any]:
    raw = minimal_model()
    raw["format_version"] = version
    raw["license"] = "MIT"
    raw.update(fields)
    return raw


def _errors(result: BuildResult) -> dict[tuple[Any, ...], str]:
    return {i.loc: i.msg for i in result.errors}


# --- model: plain strings before 0.5.11, file descriptions from then on -------------------------


@pytest.mark.parametrize("version", ["0.5.0", "0.5.4", "0.5.7", "0.5.10"])
def test_plain_file_strings_before_0_5_11_become_file_descriptions(version: str) -> None:
    result = build_description(_model(version, **FILES))
    assert isinstance(result.descr, ModelDescr), result.errors
    assert result.original_format_version == version
    assert result.descr.format_version == "0.5.14"
    assert result.descr.documentation == FileDescr(source="README.md")
    assert result.descr.covers == (FileDescr(source="c.png"),)
    assert result.descr.icon == FileDescr(source="icon.png")
    dumped = dump_description(result.descr)
    assert dumped["format_version"] == "0.5.14"
    assert dumped["documentation"] == {"source": "README.md"}
    assert dumped["covers"] == [{"source": "c.png"}]
    assert dumped["icon"] == {"source": "icon.png"}
    again = build_description(dumped)
    assert again.descr == result.descr


@pytest.mark.parametrize("version", ["0.5.11", "0.5.12", "0.5.14", "0.5.15"])
def test_plain_file_strings_from_0_5_11_on_are_errors(version: str) -> None:
    errors = _errors(build_description(_model(version, **FILES)))
    assert set(errors) == {("documentation",), ("covers", 0), ("icon",)}
    assert "must be a file description such as {source: 'README.md'}" in errors[("documentation",)]
    assert "before 0.5.11" in errors[("covers", 0)]
    assert "emoji of 1 or 2 characters" in errors[("icon",)]


def test_file_descriptions_with_sha256_are_file_refs() -> None:
    sha = "ab" * 32
    raw = _model(
        "0.5.14",
        documentation={"source": "README.md", "sha256": sha},
        covers=[{"source": "c.PNG"}, {"source": "https://x.org/c.svg", "sha256": sha}],
        icon={"source": "icon.png"},
        license={"source": "LICENSE.txt", "sha256": sha},
    )
    result = build_description(raw)
    assert result.descr is not None, result.errors
    refs = {loc: (ref.source, ref.sha256, ref.kind) for loc, ref in iter_file_refs(result.descr)}
    assert refs[("documentation",)] == ("README.md", sha, "documentation")
    assert refs[("covers", 0)] == ("c.PNG", None, "cover")
    assert refs[("covers", 1)] == ("https://x.org/c.svg", sha, "cover")
    assert refs[("icon",)] == ("icon.png", None, "icon")
    assert refs[("license",)] == ("LICENSE.txt", sha, "license")


@pytest.mark.parametrize(("icon", "expected"), [("🦈", "🦈"), ("ab", "ab"), ("abc", None)])
def test_icon_emoji_stays_a_string_longer_becomes_a_file(icon: str, expected: str | None) -> None:
    descr = build_description(_model("0.5.7", icon=icon)).descr
    assert descr is not None
    assert descr.icon == (expected if expected is not None else FileDescr(source=icon))
    # from 0.5.11 on an emoji is still a string; a longer string is an error
    late = build_description(_model("0.5.14", icon=icon))
    assert (late.descr is not None) == (expected is not None)


@pytest.mark.parametrize(
    ("field", "value", "loc", "text"),
    [
        ("covers", [{"source": "cover.tif"}], ("covers", 0), "a cover must be an image file"),
        ("covers", [{"source": "c.bmp"}], ("covers", 0), "a cover must be an image file"),
        ("documentation", {"source": "doc.txt"}, ("documentation",), "ending in '.md'"),
        ("documentation", {"source": "README.MD"}, ("documentation",), "ending in '.md'"),
        ("icon", "", ("icon",), "emoji of 1 or 2"),
        ("covers", [{"sha256": "ab" * 32}], ("covers", 0, "source"), "is required"),
    ],
)
def test_file_field_errors(field: str, value: Any, loc: tuple[Any, ...], text: str) -> None:
    errors = _errors(build_description(_model("0.5.14", **{field: value})))
    assert loc in errors and text in errors[loc], errors


def test_zenodo_content_urls_are_judged_by_their_file_name() -> None:
    url = "https://zenodo.org/api/records/1/files/README.md/content"
    cover = "https://zenodo.org/api/records/1/files/c.png/content"
    raw = _model("0.5.14", documentation={"source": url}, covers=[{"source": cover}])
    assert build_description(raw).descr is not None


# --- licenses ---------------------------------------------------------------------------------------


def test_license_file_is_valid_with_a_warning() -> None:
    result = build_description(_model("0.5.14", license={"source": "LICENSE.txt"}))
    assert result.descr is not None and result.descr.license == FileDescr(source="LICENSE.txt")
    assert any(i.loc == ("license",) and "SPDX" in i.msg for i in result.warnings)


@pytest.mark.parametrize("version", ["0.5.4", "0.5.14"])
def test_license_plain_file_name_is_an_error(version: str) -> None:
    errors = _errors(build_description(_model(version, license="LICENSE.txt")))
    assert "must be an SPDX license id" in errors[("license",)]


@pytest.mark.parametrize("license", ["GPL-3.0", "AGPL-1.0", "LGPL-2.1"])
def test_deprecated_spdx_id_is_valid_with_a_warning(license: str) -> None:
    result = build_description(_model("0.5.14", license=license))
    assert result.descr is not None
    assert any(i.loc == ("license",) and "deprecated" in i.msg for i in result.warnings)


@pytest.mark.parametrize("license", ["MIT", "CC-BY-4.0", "BSD-3-Clause", "0BSD", "Apache-2.0"])
def test_spdx_ids_are_valid_silently(license: str) -> None:
    result = build_description(_model("0.5.14", license=license))
    assert result.descr is not None
    assert not [i for i in result.issues if i.loc == ("license",)]


# --- format_version values --------------------------------------------------------------------------


def test_future_model_patch_is_read_as_0_5_14() -> None:
    result = build_description(_model("0.5.21"))
    assert result.descr is not None and result.descr.format_version == "0.5.14"


@pytest.mark.parametrize("version", ["0.5", "0.5.x", "0.5.4a"])
def test_model_version_without_three_numbers_is_an_error(version: str) -> None:
    result = build_description(_model(version))
    assert result.descr is None
    assert ("format_version",) in _errors(result)


# --- axes -------------------------------------------------------------------------------------------


def _space(axis_id: str) -> dict[str, Any]:
    return {"type": "space", "id": axis_id, "size": 16}


@pytest.mark.parametrize(
    ("written", "read"),
    [("Y", "y"), ("C", "channel"), ("S", "channel"), ("s", "channel"), ("Time", "time"),
     ("b", "batch"), ("T", "time"), ("i", "index"), ("X_Pos", "x_pos")],
)  # fmt: skip
def test_axis_ids_are_normalised_with_a_warning(written: str, read: str) -> None:
    raw = _model("0.5.14")
    raw["inputs"][0]["axes"][1] = {"type": "space", "id": written, "size": 16}
    if read in ("batch", "channel"):  # only axes of that type may have these ids
        raw["inputs"][0]["axes"] = [{"type": read, **({} if read == "batch" else {
            "channel_names": ["a"]})} | {"id": written}]  # fmt: skip
        raw["inputs"][0]["axes"].append(_space("x"))
    result = build_description(raw)
    assert result.descr is not None, result.errors
    assert read in [a.id for a in result.descr.inputs[0].axes]
    assert any("read as" in i.msg for i in result.warnings)


def test_size_references_use_normalised_ids() -> None:
    # input axis 'Y' and an output referencing 'y': invalid before 0.5.13, valid now
    raw = _model("0.5.14")
    raw["inputs"][0]["axes"][1] = _space("Y")
    raw["outputs"][0]["axes"][1] = {
        "type": "space",
        "id": "y",
        "size": {"tensor_id": "raw", "axis_id": "y"},
    }
    result = build_description(raw)
    assert result.descr is not None, result.errors


@pytest.mark.parametrize(
    ("axis_id", "text"),
    [("a" * 17, "at most 16"), ("for", "no Python keyword"), ("1x", "identifier"), ("", "identifier")],
)
def test_bad_axis_ids(axis_id: str, text: str) -> None:
    raw = _model("0.5.14")
    raw["inputs"][0]["axes"][1] = _space(axis_id)
    errors = _errors(build_description(raw))
    assert text in errors[("inputs", 0, "axes", 1, "id")]


def test_tensor_ids_keep_their_case() -> None:
    raw = _model("0.5.14")
    raw["inputs"][0]["id"] = "Raw"
    descr = build_description(raw).descr
    assert descr is not None and descr.inputs[0].id == "Raw"


def test_channel_names_are_free_strings() -> None:
    raw = _model("0.5.14")
    raw["inputs"][0]["axes"][0] = {"type": "channel", "channel_names": ["DAPI (405nm)", ""]}
    raw["outputs"][0]["axes"][0] = {"type": "channel", "channel_names": ["probability of 'cell'"]}
    result = build_description(raw)
    assert result.descr is not None, result.errors
    assert result.descr.inputs[0].axes[0].channel_names == ("DAPI (405nm)", "")


# --- generic descriptions -----------------------------------------------------------------------------


def _generic(rtype: str, version: str, **fields: Any) -> dict[str, Any]:
    return {
        "format_version": version,
        "type": rtype,
        "name": f"some {rtype}",
        "description": "a description",
        "license": "CC-BY-4.0",
        **fields,
    }


@pytest.mark.parametrize(
    ("rtype", "cls", "extra"),
    [
        ("dataset", DatasetDescr, {}),
        ("application", ApplicationDescr, {"source": "https://example.com/app"}),
        ("notebook", NotebookDescr, {"source": "nb.ipynb"}),
        ("collection", GenericDescr, {}),
    ],
)
@pytest.mark.parametrize("version", ["0.3.0", "0.3.3"])
def test_generic_before_0_3_4_converted_and_written_as_0_3_4(
    rtype: str, cls: type, extra: dict[str, Any], version: str
) -> None:
    raw = _generic(rtype, version, covers=["c.png"], documentation="README.md", **extra)
    result = build_description(raw)
    assert isinstance(result.descr, cls), result.errors
    assert result.descr.format_version == "0.3.4"
    dumped = dump_description(result.descr)
    assert dumped["format_version"] == "0.3.4"
    assert dumped["covers"] == [{"source": "c.png"}]
    assert dumped["documentation"] == {"source": "README.md"}
    assert build_description(dumped).descr == result.descr


def test_generic_0_3_4_needs_file_descriptions() -> None:
    errors = _errors(build_description(_generic("dataset", "0.3.4", covers=["c.png"])))
    assert "before 0.3.4" in errors[("covers", 0)]


def test_generic_future_patch_is_read_as_0_3_4() -> None:
    result = build_description(_generic("dataset", "0.3.9", covers=[{"source": "c.png"}]))
    assert result.descr is not None and result.descr.format_version == "0.3.4"


def test_generic_parent_is_an_id() -> None:
    descr = build_description(_generic("dataset", "0.3.4", parent="other-dataset")).descr
    assert isinstance(descr, DatasetDescr) and descr.parent == "other-dataset"
    assert dump_description(descr)["parent"] == "other-dataset"


def test_generic_0_2_stays_0_2_unless_latest_is_asked_for() -> None:
    raw = _generic(
        "dataset",
        "0.2.3",
        covers=["c.png", "stack.tif"],
        documentation="README.md",
        attachments={"files": ["a.csv"], "zenodo": 12},
        download_url="https://example.com/x.zip",
        version_number=3,
        name="my/dataset",
    )
    discovered = build_description(raw)
    assert isinstance(discovered.descr, DatasetDescr02), discovered.errors
    latest = build_description(raw, format_version="latest")
    assert isinstance(latest.descr, DatasetDescr), latest.errors
    dumped = dump_description(latest.descr)
    assert dumped["format_version"] == "0.3.4"
    assert dumped["covers"] == [{"source": "c.png"}]
    assert dumped["attachments"] == [{"source": "a.csv"}, {"source": "stack.tif"}]
    assert dumped["name"] == "my dataset"
    assert "download_url" not in dumped and "version_number" not in dumped
    warned = {i.loc for i in latest.warnings}
    assert {("covers", 1), ("attachments",), ("download_url",), ("version_number",)} <= warned


def test_inline_training_data_is_upgraded_too() -> None:
    raw = _model("0.5.4")
    raw["training_data"] = _generic("dataset", "0.3.0", covers=["c.png"])
    descr = build_description(raw).descr
    assert isinstance(descr, ModelDescr) and isinstance(descr.training_data, DatasetDescr)
    assert descr.training_data.covers == (FileDescr(source="c.png"),)
    assert descr.training_data.format_version == "0.3.4"


# --- format 0.4 (converted) --------------------------------------------------------------------------


def test_model_0_4_keeps_emoji_icon_and_older_rules_apply_when_discovered() -> None:
    raw = tiny_model_v0_4(icon="🦈", license="my own license", documentation="notebook.ipynb")
    discovered = build_description(raw)
    assert isinstance(discovered.descr, ModelDescr), discovered.errors
    assert discovered.descr.icon == "🦈"
    warned = {i.loc for i in discovered.warnings}
    assert {("license",), ("documentation",)} <= warned
    # the current format does not allow them: asking for it makes them errors
    latest = build_description(raw, format_version="latest")
    assert {("license",), ("documentation",)} <= set(_errors(latest))


def test_name_with_surrounding_whitespace_is_a_warning() -> None:
    result = build_description(_model("0.5.14", name=" padded name "))
    assert result.descr is not None
    assert any(i.loc == ("name",) and "whitespace" in i.msg for i in result.warnings)


@pytest.mark.parametrize(
    ("shape", "written_size"),
    [
        ([1, 1, 8], 1),  # fixed shape: batch 1
        ({"min": [1, 1, 8], "step": [0, 0, 8]}, 1),  # parameterized, batch step 0
        ({"min": [1, 1, 8], "step": [1, 0, 8]}, None),  # batch free
    ],
)
def test_writing_a_0_4_model_keeps_a_fixed_batch_size(shape: Any, written_size: int | None) -> None:
    raw = tiny_model_v0_4()
    raw["inputs"][0]["shape"] = shape
    raw["outputs"][0]["shape"] = {"reference_tensor": "raw", "scale": [1, 1, 1], "offset": [0, 0, 0]}
    discovered = build_description(raw).descr
    latest = build_description(raw, format_version="latest").descr
    assert isinstance(discovered, ModelDescr) and isinstance(latest, ModelDescr)
    assert discovered.inputs[0].axes[0].size is None  # loading keeps batches free
    assert latest.inputs[0].axes[0].size == written_size
