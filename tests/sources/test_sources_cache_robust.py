"""The cache under stress: killed downloads' leftovers, a full disk, a read-only cache, and
`empty-cache` while another command uses the cache."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from bioimageio_core.errors import SourceError
from bioimageio_core.sources import ZipRoot, download, empty_cache, open_file
from bioimageio_core.sources import cache as cache_module
from bioimageio_core.sources.cache import STALE_PART_SECONDS, cache_dir, cache_key

if TYPE_CHECKING:
    from tests.conftest import FileServer

PAYLOAD = bytes(range(256)) * 16


def package(tmp_path: Path) -> Path:
    path = tmp_path / "m.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("rdf.yaml", "name: a\n")
        zf.writestr("w.pt", PAYLOAD)
    return path


def leftovers(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file() and p.name.endswith(".part")]


def plant_parts(folder: Path) -> tuple[Path, Path]:
    """A stale part (a killed process's) and a fresh one (a running process's) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    stale = folder / ".tmp-killed123.part"
    fresh = folder / ".tmp-running456.part"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    old = time.time() - STALE_PART_SECONDS - 60
    os.utime(stale, (old, old))
    return stale, fresh


def test_stale_parts_of_killed_downloads_are_removed(http_server: FileServer) -> None:
    (http_server.root / "w.bin").write_bytes(PAYLOAD)
    url = http_server.url("w.bin")
    stale, fresh = plant_parts(cache_dir("downloads", cache_key(url, "")))
    assert download(url).read_bytes() == PAYLOAD
    assert not stale.exists()
    assert fresh.exists()  # may belong to a download still running in another process


def test_stale_parts_of_killed_extractions_are_removed(tmp_path: Path) -> None:
    zip_path = package(tmp_path)
    target = open_file(ZipRoot(zip_path), "w.pt")
    cache_module._swept.clear()  # as in a new process
    stale, fresh = plant_parts(target.parent)
    target.unlink()
    assert open_file(ZipRoot(zip_path), "w.pt").read_bytes() == PAYLOAD
    assert not stale.exists() and fresh.exists()


class _FullDisk:
    """A file object whose writes fail as on a full disk."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.fdopen

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        return _FullDisk(real(fd, *args, **kwargs))

    monkeypatch.setattr(cache_module.os, "fdopen", fdopen)


@pytest.mark.usefixtures("full_disk")
def test_full_disk_is_a_clear_error(
    tmp_path: Path, http_server: FileServer, cache_dir: Path
) -> None:
    (http_server.root / "w.bin").write_bytes(PAYLOAD)
    for call in (
        lambda: open_file(ZipRoot(package(tmp_path)), "w.pt"),
        lambda: download(http_server.url("w.bin")),
    ):
        with pytest.raises(SourceError, match="no room to write") as info:
            call()
        assert "BIOIMAGEIO_CACHE_PATH" in str(info.value) and "empty-cache" in str(info.value)
    assert leftovers(cache_dir) == []


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS])
def test_read_only_cache_is_a_clear_error(
    tmp_path: Path, http_server: FileServer, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    (http_server.root / "w.bin").write_bytes(PAYLOAD)
    zip_path = package(tmp_path)

    def mkstemp(*args: Any, **kwargs: Any) -> Any:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    for call in (
        lambda: open_file(ZipRoot(zip_path), "w.pt"),
        lambda: download(http_server.url("w.bin")),
    ):
        with pytest.raises(SourceError, match="is not writable") as info:
            call()
        assert "set BIOIMAGEIO_CACHE_PATH to a writable folder" in str(info.value)


def test_read_only_cache_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bioimageio_core.cli import main

    def mkstemp(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    examples = Path(__file__).resolve().parents[2] / "examples" / "tiny-nuclei-unet"
    zip_path = tmp_path / "example.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        for path in examples.iterdir():
            zf.write(path, path.name)
    result = CliRunner().invoke(main, ["validate", str(zip_path)])
    assert result.exit_code == 1
    assert "is not writable" in result.output and "internal error" not in result.output


@pytest.mark.parametrize("what", ["download", "zip member"])
def test_empty_cache_during_a_run_is_a_clear_error(
    tmp_path: Path, http_server: FileServer, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    (http_server.root / "w.bin").write_bytes(PAYLOAD)
    zip_path = package(tmp_path)
    real_replace = os.replace

    def replace_after_emptying(src: Any, dst: Any) -> None:
        empty_cache()  # another process empties the cache just before the file is complete
        real_replace(src, dst)

    monkeypatch.setattr(cache_module.os, "replace", replace_after_emptying)
    with pytest.raises(SourceError, match="emptied") as info:
        if what == "download":
            download(http_server.url("w.bin"))
        else:
            open_file(ZipRoot(zip_path), "w.pt")
    assert "run the command again" in str(info.value)
    monkeypatch.setattr(cache_module.os, "replace", real_replace)
    # and the next run works
    assert open_file(ZipRoot(zip_path), "w.pt").read_bytes() == PAYLOAD


_WRITER = """
import sys, time
from pathlib import Path
cache, seconds = Path(sys.argv[1]), float(sys.argv[2])
(cache / "started").write_text("")
end, i = time.monotonic() + seconds, 0
while time.monotonic() < end:
    folder = cache / "downloads" / f"k{i % 5}" / "sub"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}").write_bytes(b"x")
    except (FileNotFoundError, FileExistsError, NotADirectoryError):
        pass  # removed meanwhile
    i += 1
"""


def test_empty_cache_while_another_process_adds_files(cache_dir: Path) -> None:
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(cache_dir), "1.5"])
    try:
        while not (cache_dir / "started").exists():
            time.sleep(0.01)
        while writer.poll() is None:
            root, _ = empty_cache()  # never "directory not empty"
            assert root == cache_dir
    finally:
        writer.wait(10)
    assert writer.returncode == 0
    empty_cache()
    assert [p.name for p in cache_dir.iterdir()] == ["started"]


def test_empty_cache_counts_and_removes_everything(tmp_path: Path, cache_dir: Path) -> None:
    open_file(ZipRoot(package(tmp_path)), "w.pt")
    (cache_dir / "other-data.txt").write_text("not ours")
    (cache_dir / ".downloads.deleting-0123").mkdir()  # left by a killed empty-cache
    (cache_dir / ".downloads.deleting-0123" / "f").write_bytes(b"12345")
    root, freed = empty_cache()
    assert root == cache_dir and freed == len(PAYLOAD) + 5
    assert sorted(p.name for p in cache_dir.iterdir()) == ["other-data.txt"]
