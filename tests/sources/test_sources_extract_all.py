"""sources.zips.extract_all: a whole checked zip unpacked once into a folder."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from bioimageio_core.errors import SourceError
from bioimageio_core.sources.zips import extract_all


def _zip(path: Path, members: dict[str, bytes], *, links: tuple[str, ...] = ()) -> Path:
    """A zip of ``members``; those named in ``links`` are stored as symbolic links."""
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            if name in links:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, data)
    return path


def test_unpacks_once(tmp_path: Path) -> None:
    members = {"a.txt": b"a", "sub/b.bin": bytes(range(256))}
    archive = _zip(tmp_path / "m.zip", members)
    folder = extract_all(archive, tmp_path / "out" / "key")
    assert folder == tmp_path / "out" / "key"
    assert {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    } == members
    (folder / "a.txt").write_bytes(b"kept")
    assert extract_all(archive, folder) == folder
    assert (folder / "a.txt").read_bytes() == b"kept"  # an existing folder is complete
    assert [p.name for p in folder.parent.iterdir()] == ["key"]  # no staging folder left


@pytest.mark.parametrize(
    ("member", "words"),
    [
        ("../evil", "outside the target folder"),
        ("/abs/x", "absolute path"),
        ("C:/x", "absolute path"),
        ("a/../../x", "outside the package"),
        ("a\\..\\x", "backslash"),
    ],
)
def test_refuses_unsafe_members_and_leaves_nothing(tmp_path: Path, member: str, words: str) -> None:
    archive = _zip(tmp_path / "m.zip", {"ok": b"", member: b"x"})
    with pytest.raises(SourceError, match="unsafe zip package weights.zip") as info:
        extract_all(archive, tmp_path / "out" / "key", label="weights.zip")
    assert words in str(info.value)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_refuses_links_and_oversized(tmp_path: Path) -> None:
    linked = _zip(tmp_path / "link.zip", {"x": b"/etc/passwd"}, links=("x",))
    with pytest.raises(SourceError, match="symbolic link"):
        extract_all(linked, tmp_path / "a")
    big = _zip(tmp_path / "big.zip", {"x": b"0" * 60, "y": b"0" * 60})
    with pytest.raises(SourceError, match="more than 100 bytes"):
        extract_all(big, tmp_path / "b", max_bytes=100)
    assert extract_all(big, tmp_path / "c", max_bytes=120) == tmp_path / "c"
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
