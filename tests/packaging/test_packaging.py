"""Packages as zip and folder: round trip, remote files, name collisions, priority order."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pkg_helpers import EXAMPLE, read_yaml, sha256, snapshot, write_yaml

from bioimageio_core.errors import BioimageioError, HashMismatchError, SourceError
from bioimageio_core.loading import dump_description, load_description
from bioimageio_core.packaging import (
    save_bioimageio_package,
    save_bioimageio_package_as_folder,
    unique_name,
)
from bioimageio_core.spec import iter_file_refs

if TYPE_CHECKING:
    from tests.conftest import FileServer

EXAMPLE_FILES = {
    "README.md",
    "cover.png",
    "sample_input.png",
    "sample_output.png",
    "test_input.npy",
    "test_output.npy",
    "unet.py",
    "weights.onnx",
    "weights.pt",
    "weights_torchscript.pt",
}


def without_files(descr: Any) -> dict[str, Any]:
    """The dumped description with every file reference (and its sha256) blanked out."""
    data = dump_description(descr)
    for loc, _ in iter_file_refs(descr):
        parent: Any = data
        for key in loc[:-1]:
            parent = parent[key]
        value = parent[loc[-1]]
        if isinstance(value, dict):
            value["source"] = "<file>"
            value.pop("sha256", None)
        elif loc[-1] == "source":
            parent["source"] = "<file>"
            parent.pop("sha256", None)
        else:
            parent[loc[-1]] = "<file>"
    return data


def packaged_contents(descr: Any) -> dict[str, str]:
    """sha256 of every referenced file, by field path (loads each through the description)."""
    from bioimageio_core.sources import open_file

    return {
        str(loc): sha256(open_file(descr.root, ref.source, ref.sha256))
        for loc, ref in iter_file_refs(descr)
    }


def test_zip_package_round_trip(example_copy: Path, tmp_path: Path) -> None:
    before = snapshot(example_copy)
    source = load_description(example_copy / "rdf.yaml")
    out = save_bioimageio_package(example_copy / "rdf.yaml", tmp_path / "out" / "model.zip")
    assert out == tmp_path / "out" / "model.zip"
    with zipfile.ZipFile(out) as zf:
        assert set(zf.namelist()) == EXAMPLE_FILES | {"rdf.yaml"}
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in zf.infolist())
    packaged = load_description(out, perform_io_checks=True)
    assert dump_description(packaged) == dump_description(source)  # same names here
    assert packaged_contents(packaged) == packaged_contents(source)
    assert snapshot(example_copy) == before


def test_folder_package_round_trip_fills_every_sha256(example_copy: Path, tmp_path: Path) -> None:
    raw = read_yaml(example_copy / "rdf.yaml")
    del raw["weights"]["onnx"]["sha256"]
    del raw["inputs"][0]["test_tensor"]["sha256"]
    write_yaml(example_copy / "rdf.yaml", raw)
    before = snapshot(example_copy)
    folder = save_bioimageio_package_as_folder(example_copy, tmp_path / "pkg")
    assert {p.name for p in folder.iterdir()} == EXAMPLE_FILES | {"rdf.yaml"}
    data = read_yaml(folder / "rdf.yaml")
    assert data["weights"]["onnx"]["sha256"] == sha256(example_copy / "weights.onnx")
    assert data["inputs"][0]["test_tensor"]["sha256"] == sha256(example_copy / "test_input.npy")
    packaged = load_description(folder, perform_io_checks=True)
    source = load_description(example_copy)
    assert without_files(packaged) == without_files(source)
    assert packaged_contents(packaged) == packaged_contents(source)
    assert snapshot(example_copy) == before


def test_package_of_a_package_is_the_same(example_copy: Path, tmp_path: Path) -> None:
    first = save_bioimageio_package(example_copy, tmp_path / "a.zip")
    second = save_bioimageio_package(first, tmp_path / "b.zip")
    with zipfile.ZipFile(first) as a, zipfile.ZipFile(second) as b:
        assert a.namelist() == b.namelist()
        for name in a.namelist():
            assert a.read(name) == b.read(name), name


def test_package_from_a_descriptor_object(example_copy: Path, tmp_path: Path) -> None:
    descr = load_description(example_copy / "rdf.yaml")
    out = save_bioimageio_package(descr, tmp_path / "m.zip")
    assert dump_description(load_description(out)) == dump_description(descr)


def test_default_output_path_is_a_new_zip(example_copy: Path) -> None:
    out = save_bioimageio_package(example_copy)
    try:
        assert out.suffix == ".zip" and out.is_file()
        assert "Tiny" in out.name
    finally:
        out.unlink()
        out.parent.rmdir()


def test_name_collisions_get_distinct_names(example_copy: Path, tmp_path: Path) -> None:
    # the output's test tensor moves to sub/test_input.npy: same name as the input's
    (example_copy / "sub").mkdir()
    (example_copy / "test_output.npy").rename(example_copy / "sub" / "test_input.npy")
    # README.md referenced twice (documentation and attachment) is packaged once
    (example_copy / "other").mkdir()
    (example_copy / "other" / "README.md").write_text("another readme")
    raw = read_yaml(example_copy / "rdf.yaml")
    raw["outputs"][0]["test_tensor"]["source"] = "sub/test_input.npy"
    raw["attachments"] = [{"source": "README.md"}, {"source": "./other/README.md"}]
    write_yaml(example_copy / "rdf.yaml", raw)

    source = load_description(example_copy, perform_io_checks=True)
    folder = save_bioimageio_package_as_folder(source, tmp_path / "pkg")
    data = read_yaml(folder / "rdf.yaml")
    assert data["inputs"][0]["test_tensor"]["source"] == "test_input.npy"
    assert data["outputs"][0]["test_tensor"]["source"] == "test_input_2.npy"
    assert data["documentation"] == {"source": "README.md", "sha256": sha256(folder / "README.md")}
    assert [a["source"] for a in data["attachments"]] == ["README.md", "README_2.md"]
    assert sha256(folder / "test_input_2.npy") == sha256(example_copy / "sub" / "test_input.npy")
    assert sha256(folder / "README_2.md") == sha256(example_copy / "other" / "README.md")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        EXAMPLE_FILES - {"test_output.npy"} | {"test_input_2.npy", "README_2.md", "rdf.yaml"}
    )
    packaged = load_description(folder, perform_io_checks=True)
    assert without_files(packaged) == without_files(source)
    assert packaged_contents(packaged) == packaged_contents(source)


def test_a_file_named_like_a_description_is_renamed(example_copy: Path, tmp_path: Path) -> None:
    (example_copy / "docs").mkdir()
    (example_copy / "docs" / "rdf.yaml").write_text("not: a description\n")
    raw = read_yaml(example_copy / "rdf.yaml")
    raw["attachments"] = [{"source": "docs/rdf.yaml"}]
    write_yaml(example_copy / "rdf.yaml", raw)
    out = save_bioimageio_package(example_copy, tmp_path / "m.zip")
    with zipfile.ZipFile(out) as zf:
        assert zf.read("rdf_2.yaml") == b"not: a description\n"
        assert read_yaml_bytes(zf.read("rdf.yaml"))["attachments"] == [
            {"source": "rdf_2.yaml", "sha256": sha256(example_copy / "docs" / "rdf.yaml")}
        ]


def read_yaml_bytes(data: bytes) -> dict[str, Any]:
    import yaml

    loaded = yaml.safe_load(data)
    assert isinstance(loaded, dict)
    return loaded


@pytest.mark.parametrize(
    ("order", "kept"),
    [
        (["tensorflow_saved_model_bundle", "onnx", "torchscript"], "onnx"),
        (["torchscript"], "torchscript"),
        (["pytorch_state_dict", "onnx"], "pytorch_state_dict"),
    ],
)
def test_weights_priority_order_keeps_the_first_present(
    example_copy: Path, tmp_path: Path, order: list[str], kept: str
) -> None:
    out = save_bioimageio_package(example_copy, tmp_path / "m.zip", weights_priority_order=order)
    packaged = load_description(out, perform_io_checks=True)
    assert packaged.weights.available_formats == (kept,)
    assert packaged.weights[kept].parent is None
    files = {
        "onnx": {"weights.onnx"},
        "torchscript": {"weights_torchscript.pt"},
        "pytorch_state_dict": {"weights.pt", "unet.py"},
    }
    with zipfile.ZipFile(out) as zf:
        weight_files = set(zf.namelist()) & {
            "weights.onnx",
            "weights_torchscript.pt",
            "weights.pt",
            "unet.py",
        }
    assert weight_files == files[kept]


def test_weights_priority_order_without_a_present_format_fails(
    example_copy: Path, tmp_path: Path
) -> None:
    with pytest.raises(BioimageioError, match="none of the weight formats keras_hdf5") as e:
        save_bioimageio_package(
            example_copy, tmp_path / "m.zip", weights_priority_order=["keras_hdf5"]
        )
    assert e.value.hint is not None and "pytorch_state_dict" in e.value.hint
    assert not (tmp_path / "m.zip").exists()


def test_wrong_sha256_names_the_field_and_writes_nothing(
    example_copy: Path, tmp_path: Path
) -> None:
    raw = read_yaml(example_copy / "rdf.yaml")
    raw["weights"]["onnx"]["sha256"] = "0" * 64
    write_yaml(example_copy / "rdf.yaml", raw)
    with pytest.raises(HashMismatchError) as e:
        save_bioimageio_package(example_copy, tmp_path / "m.zip")
    assert e.value.loc == "$.weights.onnx.source"
    assert not (tmp_path / "m.zip").exists()


def test_missing_file_names_the_field(example_copy: Path, tmp_path: Path) -> None:
    (example_copy / "cover.png").unlink()
    with pytest.raises(SourceError, match="file not found: cover.png") as e:
        save_bioimageio_package_as_folder(example_copy, tmp_path / "pkg")
    assert e.value.loc == "$.covers[0]"


def test_packaging_into_the_source_folder_is_refused(example_copy: Path) -> None:
    before = snapshot(example_copy)
    with pytest.raises(BioimageioError, match="folder of the source description"):
        save_bioimageio_package_as_folder(example_copy, example_copy)
    assert snapshot(example_copy) == before


def test_packaging_onto_the_source_package_is_refused(example_copy: Path, tmp_path: Path) -> None:
    out = save_bioimageio_package(example_copy, tmp_path / "m.zip")
    digest = sha256(out)
    with pytest.raises(BioimageioError, match="source package"):
        save_bioimageio_package(out, out)
    assert sha256(out) == digest


def test_remote_description_is_packaged_through_the_cache(
    http_server: FileServer, tmp_path: Path
) -> None:
    import shutil

    shutil.copytree(EXAMPLE, http_server.root / "model")
    url = http_server.url("model/rdf.yaml")
    out = save_bioimageio_package(url, tmp_path / "remote.zip")
    with zipfile.ZipFile(out) as zf:
        assert set(zf.namelist()) == EXAMPLE_FILES | {"rdf.yaml"}
        for name in EXAMPLE_FILES:
            assert zf.read(name) == (EXAMPLE / name).read_bytes(), name
    packaged = load_description(out, perform_io_checks=True)
    assert dump_description(packaged) == dump_description(load_description(EXAMPLE))
    # pinned files come from the cache the second time
    assert http_server.count("model/weights.pt") == 1
    save_bioimageio_package(url, tmp_path / "again.zip")
    assert http_server.count("model/weights.pt") == 1


def test_absolute_urls_in_a_local_description(
    http_server: FileServer, example_copy: Path, tmp_path: Path
) -> None:
    (http_server.root / "files").mkdir()
    (http_server.root / "files" / "cover.png").write_bytes(b"remote cover")
    (http_server.root / "files" / "notes.txt").write_bytes(b"remote notes")
    raw = read_yaml(example_copy / "rdf.yaml")
    raw["covers"] = [{"source": "cover.png"}, {"source": http_server.url("files/cover.png")}]
    raw["attachments"] = [{"source": http_server.url("files/notes.txt")}]
    write_yaml(example_copy / "rdf.yaml", raw)
    folder = save_bioimageio_package_as_folder(example_copy, tmp_path / "pkg")
    data = read_yaml(folder / "rdf.yaml")
    assert [c["source"] for c in data["covers"]] == ["cover.png", "cover_2.png"]
    assert data["covers"][1]["sha256"] == sha256(http_server.root / "files" / "cover.png")
    assert (folder / "cover_2.png").read_bytes() == b"remote cover"
    assert data["attachments"] == [
        {"source": "notes.txt", "sha256": sha256(http_server.root / "files" / "notes.txt")}
    ]


@given(
    stem=st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
    suffix=st.sampled_from(["", ".npy", ".ome.tif", ".onnx.data"]),
    taken_n=st.integers(0, 5),
)
def test_unique_name_is_new_and_keeps_the_suffix(stem: str, suffix: str, taken_n: int) -> None:
    wanted = stem + suffix
    taken = {wanted.lower()} if taken_n else set()
    taken |= {f"{stem}_{i}{suffix}" for i in range(2, 2 + taken_n - 1)} if taken_n > 1 else set()
    name = unique_name(wanted, set(taken))
    assert name.lower() not in taken
    assert name.endswith(suffix)
    if not taken_n:
        assert name == wanted
    else:
        assert name == f"{stem}_{taken_n + 1}{suffix}"


@pytest.mark.parametrize(
    "name", ["bioimageio.yaml", "v0_4_9.bioimageio.yaml", "v0_4_0.bioimageio.yaml"]
)
@pytest.mark.parametrize("order", [["onnx"], ["torchscript", "onnx"]])
def test_published_model_packages_offline(
    conformance: Path, tmp_path: Path, name: str, order: list[str]
) -> None:
    """The published example's state dict is remote (unreachable here): keep another format."""
    from bioimageio_core.packaging import select_weights

    source_path = conformance / "models" / "unet2d_nuclei_broad" / name
    out = save_bioimageio_package(source_path, tmp_path / "m.zip", weights_priority_order=order)
    packaged = load_description(out, perform_io_checks=True)
    source = select_weights(load_description(source_path, perform_io_checks=False), order)
    assert without_files(packaged) == without_files(source)
    assert packaged_contents(packaged) == packaged_contents(source)
    kept = {"onnx": "weights.onnx", "torchscript": "weights.pt"}[order[0]]
    with zipfile.ZipFile(out) as zf:
        assert kept in zf.namelist()
        assert "environment.yaml" not in zf.namelist()  # belongs to the dropped state dict
