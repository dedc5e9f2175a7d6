"""The unzip cache: keyed by the package's content, copies re-checked before use, corrupt members
reported clearly, and the zip index read once however many files a description references."""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from bioimageio_core import validate_format
from bioimageio_core.errors import SourceError
from bioimageio_core.sources import ZipRoot, open_file, read_description
from bioimageio_core.sources import cache as cache_module
from bioimageio_core.sources import zips as zips_module

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny-nuclei-unet"


def stored_zip(path: Path, members: dict[str, bytes]) -> Path:
    """An uncompressed zip (member data appears verbatim in the file)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def forget_process_state() -> None:
    """What a new process starts with: no remembered hashes, no open packages."""
    cache_module._hash_memo.clear()
    zips_module._packages.clear()
    zips_module._verified.clear()


def parts_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


@pytest.mark.parametrize("new_process", [False, True])
def test_replaced_zip_of_same_size_and_mtime_gives_new_members(
    tmp_path: Path, new_process: bool
) -> None:
    package = tmp_path / "m.zip"
    stored_zip(package, {"rdf.yaml": b"name: a\n", "arch.py": b"print('old')\n"})
    assert open_file(ZipRoot(package), "arch.py").read_bytes() == b"print('old')\n"
    before = package.stat()
    replacement = stored_zip(
        tmp_path / "other.zip", {"rdf.yaml": b"name: a\n", "arch.py": b"print('NEW')\n"}
    )
    package.write_bytes(replacement.read_bytes())  # same inode, same size
    os.utime(package, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = package.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )
    if new_process:
        forget_process_state()
    assert open_file(ZipRoot(package), "arch.py").read_bytes() == b"print('NEW')\n"


def test_a_stale_hash_shortcut_is_caught_before_the_member_is_used(tmp_path: Path) -> None:
    package = stored_zip(tmp_path / "m.zip", {"w.pt": b"old weights"})
    old_digest = hashlib.sha256(package.read_bytes()).hexdigest()
    assert open_file(ZipRoot(package), "w.pt").read_bytes() == b"old weights"
    stored_zip(package, {"w.pt": b"new weights"})
    # the shortcut (stat key -> sha256) wrongly says the content is unchanged
    key = (str(package.resolve()), cache_module.stat_key(package.stat()))
    cache_module._hash_memo[key] = old_digest
    zips_module._packages.clear()
    assert open_file(ZipRoot(package), "w.pt").read_bytes() == b"new weights"
    new_digest = hashlib.sha256(package.read_bytes()).hexdigest()
    assert cache_module.sha256_of_file(package) == new_digest


def test_members_of_two_packages_with_equal_content_share_the_cache(
    tmp_path: Path, cache_dir: Path
) -> None:
    a = stored_zip(tmp_path / "a.zip", {"w.pt": b"same"})
    b = tmp_path / "b.zip"
    shutil.copyfile(a, b)
    assert open_file(ZipRoot(a), "w.pt") == open_file(ZipRoot(b), "w.pt")
    digest = hashlib.sha256(a.read_bytes()).hexdigest()
    assert open_file(ZipRoot(a), "w.pt") == cache_dir / "unzipped" / digest / "w.pt"


@pytest.mark.parametrize("damage", ["same size", "truncated", "deleted"])
@pytest.mark.parametrize("pinned", [False, True])
def test_corrupted_cached_member_is_extracted_again(
    tmp_path: Path, damage: str, pinned: bool
) -> None:
    payload = bytes(range(256)) * 64
    package = stored_zip(tmp_path / "m.zip", {"w.pt": payload})
    sha = hashlib.sha256(payload).hexdigest() if pinned else None
    cached = open_file(ZipRoot(package), "w.pt", sha)
    if damage == "same size":
        cached.write_bytes(b"\0" * len(payload))
    elif damage == "truncated":
        cached.write_bytes(payload[:100])
    else:
        cached.unlink()
    again = open_file(ZipRoot(package), "w.pt", sha)
    assert again.read_bytes() == payload


def _corrupt_member_data(package: Path, member: bytes, marker: bytes) -> None:
    data = package.read_bytes()
    at = data.index(marker)
    package.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :])
    assert member  # the member whose stored bytes were changed


def test_member_failing_its_crc_is_a_clear_error(tmp_path: Path, cache_dir: Path) -> None:
    payload = b"WEIGHTS" + bytes(range(200))
    package = stored_zip(tmp_path / "m.zip", {"rdf.yaml": b"name: a\n", "w.pt": payload})
    _corrupt_member_data(package, b"w.pt", b"WEIGHTS")
    with pytest.raises(SourceError, match="corrupt") as info:
        open_file(ZipRoot(package), "w.pt")
    text = str(info.value)
    assert "w.pt" in text and str(package) in text and "again" in text
    assert not [p for p in cache_dir.rglob("*") if p.is_file()]  # no partial copy kept


def test_description_failing_its_crc_is_a_clear_error(tmp_path: Path) -> None:
    package = stored_zip(tmp_path / "m.zip", {"rdf.yaml": b"name: YAMLNAME\n"})
    _corrupt_member_data(package, b"rdf.yaml", b"YAMLNAME")
    with pytest.raises(SourceError, match="rdf.yaml of zip package .* is corrupt"):
        read_description(package)
    summary = validate_format(package)
    assert summary.status == "failed" and "corrupt" in summary.first_error_text()


def test_duplicate_member_names_are_refused(tmp_path: Path) -> None:
    package = tmp_path / "dup.zip"
    with zipfile.ZipFile(package, "w") as zf:
        zf.writestr("rdf.yaml", "name: a\n")
        zf.writestr("w.pt", b"first")
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("w.pt", b"second")
    with pytest.raises(SourceError, match="'w.pt' appears twice"):
        read_description(package)


def test_zip_index_is_read_once_per_validation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "big.zip"
    with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(EXAMPLE.iterdir()):
            zf.write(path, path.name)
        for i in range(3000):
            zf.writestr(f"extra/{i:05}.txt", b"")
    forget_process_state()
    reads: list[str] = []
    real = zipfile.ZipFile._RealGetContents  # type: ignore[attr-defined]

    def counting(self: zipfile.ZipFile) -> None:
        reads.append(str(self.filename))
        real(self)

    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", counting)
    summary = validate_format(package)  # io checks: opens every referenced file (10 files)
    assert summary.status != "failed", summary.format_text()
    assert reads == [str(package)]
    validate_format(package)
    assert reads == [str(package)], "an unchanged package is not indexed again"
