"""Reading descriptions from local paths and folders; opening referenced local files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bioimageio_core.errors import HashMismatchError, NetworkError, SourceError
from bioimageio_core.sources import (
    FolderRoot,
    UrlRoot,
    ZipRoot,
    find_yaml_name,
    open_file,
    read_description,
    root_of,
    root_or_cwd,
    sha256_of_file,
)
from bioimageio_core.sources import cache as cache_module

YAML = "name: demo\ntype: model\nformat_version: 0.5.4\nweights:\n  onnx:\n    source: w.onnx\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["rdf.yaml", "bioimageio.yaml", "my.bioimageio.yaml", "other.yml"])
def test_sources_yaml_file(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, YAML)
    raw = read_description(path)
    assert raw.data["name"] == "demo"
    assert raw.root == FolderRoot(tmp_path.resolve())
    assert raw.file_name == name
    assert raw.source_name == str(tmp_path.resolve() / name)


@pytest.mark.parametrize(
    ("files", "chosen"),
    [
        (["rdf.yaml"], "rdf.yaml"),
        (["bioimageio.yaml", "a.bioimageio.yaml", "notes.yaml"], "bioimageio.yaml"),
        (["x.bioimageio.yaml", "environment.yaml"], "x.bioimageio.yaml"),
        (["model.yaml"], "model.yaml"),
    ],
)
def test_sources_folder_picks_description(tmp_path: Path, files: list[str], chosen: str) -> None:
    for name in files:
        write(tmp_path / name, YAML.replace("demo", name))
    raw = read_description(tmp_path)
    assert raw.file_name == chosen
    assert raw.data["name"] == chosen


def test_sources_folder_ambiguous_lists_candidates(tmp_path: Path) -> None:
    for name in ["a.bioimageio.yaml", "b.bioimageio.yaml", "environment.yaml"]:
        write(tmp_path / name, YAML)
    with pytest.raises(SourceError) as info:
        read_description(str(tmp_path))
    text = str(info.value)
    assert "several descriptions" in text
    assert "a.bioimageio.yaml" in text and "b.bioimageio.yaml" in text
    assert "environment.yaml" not in text.split("hint")[0]


def test_sources_folder_with_rdf_and_bioimageio_yaml_is_ambiguous(tmp_path: Path) -> None:
    write(tmp_path / "rdf.yaml", YAML)
    write(tmp_path / "bioimageio.yaml", YAML)
    with pytest.raises(SourceError, match="bioimageio.yaml, rdf.yaml"):
        read_description(tmp_path)


def test_sources_folder_without_description_names_yaml_files(tmp_path: Path) -> None:
    write(tmp_path / "environment.yaml", "a: 1\n")
    with pytest.raises(SourceError, match=r"no description .*environment\.yaml"):
        read_description(tmp_path)


def test_sources_missing_path_and_id(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file or folder"):
        read_description(tmp_path / "nope.yaml")
    # an id-like name that is no file: asked of the (here unreachable) collection
    with pytest.raises(NetworkError, match="cannot reach the bioimage.io collection") as info:
        read_description("affable-shark")
    assert "'affable-shark' was not resolved on this machine before" in str(info.value)
    # a file-like name that is no file: no resolver claims it; the error lists the forms
    with pytest.raises(SourceError, match="no such file or folder") as missing:
        read_description("models/rdf.yaml")
    assert "accepted sources:" in str(missing.value)
    assert "a bioimage.io id: affable-shark" in str(missing.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1, 2\n", r"not valid YAML \(line 2"),
        ("- 1\n- 2\n", "must hold a mapping"),
        ("!!python/object:os.system {}\n", "not valid YAML"),
    ],
)
def test_sources_bad_yaml(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "rdf.yaml", text)
    with pytest.raises(SourceError, match=message) as info:
        read_description(path)
    assert str(path) in str(info.value)


def test_sources_yaml_size_bound_read_at_call_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "rdf.yaml", YAML)
    read_description(path)
    monkeypatch.setenv("BIOIMAGEIO_MAX_YAML_BYTES", "10")
    with pytest.raises(SourceError, match="larger than 10 bytes"):
        read_description(path)


def test_sources_dict_source(tmp_path: Path) -> None:
    raw = read_description({"name": "d"}, root=FolderRoot(tmp_path))
    assert raw.data == {"name": "d"} and raw.root == FolderRoot(tmp_path)
    assert raw.source_name == "<dict: d>"
    assert read_description({"name": "d"}).root == FolderRoot(Path.cwd())


def test_sources_root_or_else_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A description without a root resolves against the folder current at the time of use."""
    roots = [FolderRoot(tmp_path), ZipRoot(tmp_path / "p.zip"), UrlRoot("https://host/m/")]
    for root in roots:
        assert root_or_cwd(root) is root
        assert root_of(type("Descr", (), {"root": root})()) is root
    monkeypatch.chdir(tmp_path)
    assert root_or_cwd(None) == FolderRoot(tmp_path)
    assert root_of(object()) == FolderRoot(tmp_path)
    assert root_of(type("Descr", (), {"root": None})()) == FolderRoot(tmp_path)


def test_sources_open_local_file_with_sha256(tmp_path: Path) -> None:
    payload = b"weights" * 100
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "w.bin").write_bytes(payload)
    good = hashlib.sha256(payload).hexdigest()
    root = FolderRoot(tmp_path)
    assert open_file(root, "sub/w.bin") == tmp_path / "sub" / "w.bin"
    assert open_file(root, "sub/w.bin", good.upper()) == tmp_path / "sub" / "w.bin"
    with pytest.raises(HashMismatchError) as info:
        open_file(root, "sub/w.bin", "0" * 64)
    assert info.value.expected == "0" * 64 and info.value.actual == good
    assert "sub/w.bin" in str(info.value) and good in str(info.value)
    with pytest.raises(SourceError, match="file not found: missing.onnx"):
        open_file(root, "missing.onnx")


def test_sources_local_hash_computed_once_per_mtime_and_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    reads = 0
    real_open = Path.open

    def counting_open(self: Path, *args: object, **kwargs: object) -> object:
        nonlocal reads
        if self == path:
            reads += 1
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    cache_module._hash_memo.clear()
    monkeypatch.setattr(Path, "open", counting_open)
    first = sha256_of_file(path)
    assert sha256_of_file(path) == first
    assert reads == 1
    path.write_bytes(b"abcd")  # size changes: hashed again
    reads = 0
    assert sha256_of_file(path) == hashlib.sha256(b"abcd").hexdigest()
    assert sha256_of_file(path) == hashlib.sha256(b"abcd").hexdigest()
    assert reads == 1


@settings(max_examples=30, deadline=None)
@given(
    names=st.lists(
        st.sampled_from(
            [
                "rdf.yaml",
                "bioimageio.yaml",
                "model.yaml",
                "a.bioimageio.yaml",
                "b.rdf.yaml",
                "x.yaml",
                "w.pt",
            ]
        ),
        unique=True,
    )
)
def test_sources_find_yaml_name_rules(names: list[str]) -> None:
    exact = [n for n in ("bioimageio.yaml", "rdf.yaml", "model.yaml") if n in names]
    suffixed = [n for n in names if n in ("a.bioimageio.yaml", "b.rdf.yaml")]
    expected = exact if exact else suffixed
    if len(expected) == 1:
        assert find_yaml_name(names, where="here") == expected[0]
    else:
        with pytest.raises(SourceError):
            find_yaml_name(names, where="here")


def test_sources_yaml_alias_bomb_is_rejected(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)]
    path = write(tmp_path / "rdf.yaml", "\n".join(lines) + "\n")
    with pytest.raises(SourceError, match="expands to more than"):
        read_description(path)
    loop = write(tmp_path / "loop.yaml", "a: &x [1, *x]\n")
    with pytest.raises(SourceError, match="recursive alias"):
        read_description(loop)
    few = write(tmp_path / "few.yaml", "a: &x [1]\nb: *x\nname: ok\n")
    assert read_description(few).data["b"] == [1]


@settings(max_examples=40, deadline=None)
@given(
    st.recursive(
        st.integers() | st.text(max_size=3),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_sources_expanded_size_counts_like_full_expansion(value: object) -> None:
    import json

    from bioimageio_core.sources.yamlio import expanded_size

    def brute(item: object) -> int:
        if isinstance(item, dict):
            return 1 + sum(1 + brute(v) for v in item.values())
        if isinstance(item, list):
            return 1 + sum(brute(v) for v in item)
        return 1

    assert expanded_size(value) == brute(value)
    shared = [value, value, value]  # aliasing: the same object used three times
    assert expanded_size(shared) == 1 + 3 * brute(json.loads(json.dumps(value)))
