"""The staging mechanism every writer uses: temporary name → complete → rename (or discard)."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bioimageio_core.errors import OutputError, OutputExistsError
from bioimageio_core.io import staging


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def names_in(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.fixture
def umask() -> Iterator[None]:
    """Restores the process umask a test changes."""
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


def dead_pid() -> int:
    """The id of a process that has ended (and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def leftover_name(final_name: str, pid: int) -> str:
    """A temporary name as a process ``pid`` on this host would have made it."""
    own = staging.temporary_path(Path(final_name)).name
    host = own.split("-")[1]
    return f".tmp-{host}-{pid}-0123abcd-{final_name}"


def test_commit_puts_the_file_in_place_and_leaves_nothing_else(tmp_path: Path) -> None:
    final = tmp_path / "sub" / "out.txt"
    with staging.stage(final) as staged:
        assert staged.path.parent == final.parent
        assert staged.path.name.endswith("-out.txt") and staging.is_temporary(staged.path)
        assert not final.exists()
        staged.path.write_bytes(b"data")
    assert final.read_bytes() == b"data"
    assert names_in(final.parent) == ["out.txt"]


def test_an_error_removes_the_temporary_file_and_keeps_the_existing_one(tmp_path: Path) -> None:
    final = tmp_path / "out.txt"
    final.write_bytes(b"old")
    with pytest.raises(ValueError, match="boom"):
        with staging.staged_file(final) as f:
            f.write(b"new, but only half")
            raise ValueError("boom")
    assert final.read_bytes() == b"old"
    assert names_in(tmp_path) == ["out.txt"]


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_and_folders_follow_the_umask(
    tmp_path: Path, umask: None, mask: int, expected: int
) -> None:
    os.umask(mask)
    file = staging.write_text(tmp_path / "a.yaml", "x: 1\n")
    assert mode_of(file) == expected
    with staging.stage(tmp_path / "b.zarr", directory=True) as staged:
        (staged.path / "zarr.json").write_text("{}")
    assert mode_of(tmp_path / "b.zarr") == expected | 0o111 & ~mask
    with staging.stage_folder(tmp_path / "pkg") as folder:
        (folder.path / "rdf.yaml").write_text("x: 1\n")
    assert mode_of(tmp_path / "pkg") == 0o777 & ~mask
    assert mode_of(tmp_path / "pkg" / "rdf.yaml") == expected


def test_a_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    final = tmp_path / "rdf.yaml"
    final.write_text("old")
    final.chmod(0o640)
    staging.write_text(final, "new")
    assert final.read_text() == "new" and mode_of(final) == 0o640


def test_existing_outputs_are_refused_without_overwrite(tmp_path: Path) -> None:
    final = tmp_path / "out.zip"
    final.write_bytes(b"old")
    with pytest.raises(OutputExistsError, match="output .*out.zip exists already") as info:
        staging.write_bytes(final, b"new", overwrite=False)
    assert info.value.hint is not None and "--overwrite" in info.value.hint
    assert isinstance(info.value, FileExistsError)
    assert final.read_bytes() == b"old" and names_in(tmp_path) == ["out.zip"]
    with pytest.raises(OutputExistsError, match=r"exists already \(and 1 more\)"):
        staging.refuse_existing([final, final], overwrite=False)
    staging.refuse_existing([final], overwrite=True)


def test_an_output_appearing_while_writing_is_not_replaced(tmp_path: Path) -> None:
    final = tmp_path / "out.txt"
    with pytest.raises(OutputExistsError):
        with staging.stage(final, overwrite=False) as staged:
            staged.path.write_bytes(b"mine")
            final.write_bytes(b"someone else's")
    assert final.read_bytes() == b"someone else's"
    assert names_in(tmp_path) == ["out.txt"]


def test_a_full_disk_is_reported_and_cleaned_up(tmp_path: Path) -> None:
    final = tmp_path / "out.bin"
    final.write_bytes(b"old")
    with pytest.raises(OutputError, match="disk is full") as info:
        with staging.staged_file(final) as f:
            f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
    message = str(info.value)
    assert "incomplete data was removed" in message and "out.bin is unchanged" in message
    assert final.read_bytes() == b"old" and names_in(tmp_path) == ["out.bin"]


def test_errors_not_about_the_output_pass_through(tmp_path: Path) -> None:
    missing = tmp_path / "missing.bin"
    with pytest.raises(FileNotFoundError):
        staging.copy_file(missing, tmp_path / "copy.bin")
    assert names_in(tmp_path) == []
    # a permission error on an input file is not a failure to write the output
    with pytest.raises(PermissionError):
        with staging.stage(tmp_path / "o.bin"):
            raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "input"))
    assert names_in(tmp_path) == []


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (OSError(errno.EFBIG, "File too large"), "file size limit"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "quota"),
        (OSError(errno.EROFS, "Read-only file system"), "read-only"),
        (OSError("Can't write data (file write failed: errno = 28, 'No space')"), "disk is full"),
        (RuntimeError("unable to extend file properly, errno = 27"), "file size limit"),
    ],
)
def test_write_failures_say_what_happened(error: BaseException, reason: str) -> None:
    assert reason in str(staging.output_error("out.h5", error))


def test_a_short_write_without_errno_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    error = OSError("90000 requested and 24984 written")  # what numpy reports
    assert staging.write_errno(error) in (errno.EFBIG, errno.ENOSPC)
    assert "could not write o.npy: the" in str(staging.output_error("o.npy", error))


def test_leftovers_of_ended_runs_are_removed_with_a_notice(tmp_path: Path) -> None:
    gone = tmp_path / leftover_name("out.npy", dead_pid())
    gone.write_bytes(b"half")
    zarr_gone = tmp_path / leftover_name("out.zarr", dead_pid())
    zarr_gone.mkdir()
    (zarr_gone / "zarr.json").write_text("{}")
    running = tmp_path / leftover_name("other.npy", os.getppid())
    running.write_bytes(b"being written")
    unrelated = tmp_path / ".tmp-notours"
    unrelated.write_bytes(b"x")
    with pytest.warns(staging.OutputNotice, match="interrupted run") as record:
        staging.write_bytes(tmp_path / "out.npy", b"complete", overwrite=False)
    assert len(record) == 2
    assert names_in(tmp_path) == sorted([running.name, unrelated.name, "out.npy"])


def test_large_folders_are_searched_for_leftovers_at_most_once_a_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bioimageio_core.io.staging import _names

    monkeypatch.setattr(_names, "_LARGE_FOLDER", 2)
    for name in "abcd":  # the write of d finds 3 entries: the folder counts as large
        staging.write_bytes(tmp_path / name, b"x")
    gone = tmp_path / leftover_name("f", dead_pid())
    gone.write_bytes(b"half")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        staging.write_bytes(tmp_path / "e", b"e")
    assert gone.exists()
    with pytest.warns(staging.OutputNotice):
        assert staging.remove_leftovers(tmp_path, force=True) == [gone]


def test_a_file_output_never_replaces_a_folder(tmp_path: Path) -> None:
    (tmp_path / "out.npy").mkdir()
    (tmp_path / "out.npy" / "keep").write_text("x")
    with pytest.raises(OutputError, match="a folder of that name exists"):
        staging.write_bytes(tmp_path / "out.npy", b"x")
    assert (tmp_path / "out.npy" / "keep").read_text() == "x"
    assert names_in(tmp_path) == ["out.npy"]


def test_a_folder_output_replaces_the_old_folder_whole(tmp_path: Path) -> None:
    final = tmp_path / "out.zarr"
    final.mkdir()
    (final / "old-chunk").write_text("old")
    final.chmod(0o750)
    with staging.stage(final, directory=True) as staged:
        (staged.path / "zarr.json").write_text("{}")
    assert names_in(final) == ["zarr.json"] and mode_of(final) == 0o750
    assert names_in(tmp_path) == ["out.zarr"]


def test_a_new_package_folder_appears_whole(tmp_path: Path) -> None:
    final = tmp_path / "pkg"
    with pytest.raises(RuntimeError):
        with staging.stage_folder(final, descriptions=("rdf.yaml",)) as folder:
            (folder.path / "weights.bin").write_bytes(b"w")
            raise RuntimeError("conversion crashed")
    assert names_in(tmp_path) == []
    with staging.stage_folder(final, descriptions=("rdf.yaml",)) as folder:
        (folder.path / "weights.bin").write_bytes(b"w")
        (folder.path / "rdf.yaml").write_text("x: 1\n")
    assert names_in(final) == ["rdf.yaml", "weights.bin"] and names_in(tmp_path) == ["pkg"]


def test_an_existing_package_folder_is_only_replaced_with_overwrite(tmp_path: Path) -> None:
    final = tmp_path / "pkg"
    final.mkdir()
    (final / "rdf.yaml").write_text("old: 1\n")
    (final / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="rdf.yaml exists already"):
        with staging.stage_folder(final, overwrite=False, descriptions=("rdf.yaml",)) as folder:
            (folder.path / "rdf.yaml").write_text("new: 1\n")
    assert names_in(final) == ["notes.txt", "rdf.yaml"]
    assert (final / "rdf.yaml").read_text() == "old: 1\n"

    (final / "bioimageio.yaml").write_text("other: 1\n")
    descriptions = ("bioimageio.yaml", "rdf.yaml")
    with staging.stage_folder(final, overwrite=True, descriptions=descriptions) as folder:
        assert folder.path.parent == final  # never written outside the output folder
        assert "notes.txt" not in folder.taken_names()  # may be replaced
        (folder.path / "w.bin").write_bytes(b"w")
        (folder.path / "rdf.yaml").write_text("new: 1\n")
    # the old descriptions are gone, the user's other file is kept
    assert names_in(final) == ["notes.txt", "rdf.yaml", "w.bin"]
    assert (final / "rdf.yaml").read_text() == "new: 1\n"


def test_markers_of_stores_written_in_place() -> None:
    attrs: dict[str, object] = {}
    assert staging.incomplete_writer(attrs) is None  # not written by bioimageio-run
    staging.mark_incomplete(attrs)
    assert staging.incomplete_writer(attrs) == staging.writer_id()
    with pytest.raises(OSError, match="still writing it"):
        staging.check_complete(attrs, "x.zarr")
    attrs[staging.WRITER_ATTR] = f"{staging.writer_id().split('-')[0]}-{dead_pid()}"
    with pytest.raises(OSError, match="was interrupted"):
        staging.check_complete(attrs, "x.zarr")
    staging.mark_complete(attrs)
    staging.check_complete(attrs, "x.zarr")
    assert attrs == {staging.COMPLETE_ATTR: True}


_FILE_NAMES = st.text(
    alphabet=st.characters(blacklist_characters="/\\\0", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=120,
).filter(lambda n: n not in (".", "..") and len(n.encode()) <= 255)


@given(name=_FILE_NAMES)
def test_temporary_names_fit_and_keep_the_suffix(name: str) -> None:
    temp = staging.temporary_path(Path("/out") / name)
    assert temp.parent == Path("/out")
    assert len(temp.name.encode()) <= 255
    assert staging.is_temporary(temp)
    parsed = staging.parse_temporary_name(temp.name)
    assert parsed is not None and parsed.pid == os.getpid()
    if len(name.encode()) <= 200:
        assert temp.name.endswith(f"-{name}")
    else:  # shortened, keeping a short suffix
        assert temp.suffix == Path(name).suffix or len(Path(name).suffix) > 32
    assert not staging.is_temporary(Path("/out") / name) or name.startswith(".tmp-")
