"""Zip packages: reading, member extraction into the cache, and rejection of unsafe packages."""

from __future__ import annotations

import hashlib
import stat
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bioimageio_core.errors import HashMismatchError, SourceError
from bioimageio_core.sources import ZipRoot, open_file, read_description
from bioimageio_core.sources.zips import check_zip

YAML = "name: zipped\ntype: model\nformat_version: 0.5.4\n"


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_sources_zip_package(tmp_path: Path, cache_dir: Path) -> None:
    payload = b"\x00\x01" * 50
    package = make_zip(
        tmp_path / "model.zip",
        {"rdf.yaml": YAML.encode(), "weights.onnx": payload, "sub/test.npy": b"npy"},
    )
    raw = read_description(package)
    assert raw.data["name"] == "zipped"
    assert raw.root == ZipRoot(package.resolve())
    assert raw.file_name == "rdf.yaml"
    assert not list(cache_dir.rglob("rdf.yaml")), "the yaml is read without extraction"

    extracted = open_file(raw.root, "weights.onnx", hashlib.sha256(payload).hexdigest())
    assert extracted.read_bytes() == payload
    assert cache_dir in extracted.parents
    assert open_file(raw.root, "./sub/test.npy").read_bytes() == b"npy"
    with pytest.raises(SourceError, match="file not found: missing.pt"):
        open_file(raw.root, "missing.pt")


def test_sources_zip_member_hash_mismatch_leaves_no_copy(tmp_path: Path, cache_dir: Path) -> None:
    package = make_zip(tmp_path / "m.zip", {"rdf.yaml": YAML.encode(), "w.pt": b"abc"})
    with pytest.raises(HashMismatchError, match="w.pt"):
        open_file(ZipRoot(package), "w.pt", "1" * 64)
    assert not [p for p in cache_dir.rglob("*") if p.is_file()]


def test_sources_zip_with_several_descriptions(tmp_path: Path) -> None:
    package = make_zip(
        tmp_path / "m.zip", {"a.bioimageio.yaml": YAML.encode(), "b.bioimageio.yaml": YAML.encode()}
    )
    with pytest.raises(SourceError, match="a.bioimageio.yaml, b.bioimageio.yaml"):
        read_description(package)


def test_sources_zip_nested_yaml_is_not_a_description(tmp_path: Path) -> None:
    package = make_zip(tmp_path / "m.zip", {"inner/rdf.yaml": YAML.encode()})
    with pytest.raises(SourceError, match="no description"):
        read_description(package)


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        ("../evil.txt", "outside the package"),
        ("sub/../../evil.txt", "outside the package"),
        ("/etc/evil.txt", "absolute path"),
        ("C:/evil.txt", "absolute path"),
        ("sub\\..\\evil.txt", "backslash"),
    ],
)
def test_sources_zip_rejects_escaping_members(tmp_path: Path, member: str, problem: str) -> None:
    package = tmp_path / "evil.zip"
    with zipfile.ZipFile(package, "w") as zf:
        zf.writestr("rdf.yaml", YAML)
        zf.writestr(zipfile.ZipInfo(member), b"x")  # ZipInfo keeps the name as given
    with pytest.raises(SourceError, match=problem) as info:
        read_description(package)
    assert "unsafe zip package" in str(info.value)
    assert not (tmp_path.parent / "evil.txt").exists()


def test_sources_zip_rejects_symlink_member(tmp_path: Path) -> None:
    package = tmp_path / "link.zip"
    with zipfile.ZipFile(package, "w") as zf:
        zf.writestr("rdf.yaml", YAML)
        info = zipfile.ZipInfo("weights.onnx")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(SourceError, match="symbolic link"):
        read_description(package)
    with pytest.raises(SourceError, match="symbolic link"):
        open_file(ZipRoot(package), "weights.onnx")


def test_sources_zip_rejects_oversize(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "big.zip"
    with zipfile.ZipFile(package, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("rdf.yaml", YAML)
        zf.writestr("zeros.bin", b"\0" * 100_000)  # compresses to a few hundred bytes
    assert package.stat().st_size < 2_000
    read_description(package)
    monkeypatch.setenv("BIOIMAGEIO_MAX_DOWNLOAD_BYTES", "50000")
    with pytest.raises(SourceError, match="more than 50000 bytes"):
        read_description(package)


def test_sources_not_a_zip(tmp_path: Path) -> None:
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"not a zip at all")
    with pytest.raises(SourceError, match="cannot read zip package"):
        read_description(fake)


def test_sources_zip_yaml_size_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = make_zip(tmp_path / "m.zip", {"rdf.yaml": YAML.encode()})
    monkeypatch.setenv("BIOIMAGEIO_MAX_YAML_BYTES", "8")
    with pytest.raises(SourceError, match="larger than 8 bytes"):
        read_description(package)


_SEGMENTS = st.sampled_from(["..", ".", "a", "b.npy", "", "C:", "\\", "..\\x", "/"])


@settings(max_examples=60, deadline=None)
@given(parts=st.lists(_SEGMENTS, min_size=1, max_size=4))
def test_sources_zip_accepted_members_stay_inside(
    parts: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    name = "/".join(parts)
    if not name.strip("/"):
        return  # an empty member name cannot be written
    folder = tmp_path_factory.mktemp("z")
    package = folder / "p.zip"
    with zipfile.ZipFile(package, "w") as zf:
        zf.writestr("rdf.yaml", YAML)
        zf.writestr(zipfile.ZipInfo(name), b"x")
    try:
        names = check_zip(package)
    except SourceError:
        return
    dest = (folder / "dest").resolve()
    for member in names:
        assert dest in (dest / member).resolve().parents


def test_sources_unusable_cache_path_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = make_zip(tmp_path / "m.zip", {"rdf.yaml": YAML.encode(), "w.pt": b"abc"})
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("BIOIMAGEIO_CACHE_PATH", str(blocker))
    with pytest.raises(SourceError, match="cannot create the cache folder") as info:
        open_file(ZipRoot(package), "w.pt")
    assert "BIOIMAGEIO_CACHE_PATH" in str(info.value)
