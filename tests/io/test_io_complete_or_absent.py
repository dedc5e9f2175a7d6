"""Tensor outputs are complete or absent: failed, refused and killed writes in every format."""

from __future__ import annotations

import errno
import json
import os
import resource
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from io_processes import kill_when_ready

from bioimageio_core.io import check_outputs, load_tensor, open_output_array, save_tensor
from bioimageio_core.tensor import Tensor

LIMIT = 64 * 1024
"""File size limit (bytes) of the subprocesses that must fail; every test output is larger."""
SHAPE = (1, 1, 256, 256)

FILES = ["o.npy", "o.npz", "o.tif", "o.ome.tif", "o.png", "o.h5", "o.zarr", "o.zarr:pred"]
STREAMED = [
    "o.npy",
    "o.tif",
    "o.h5",
    "o.h5:/group/pred",
    "o.zarr",
    "o.zarr:pred",
    "o.ome.zarr",
]


def data_for(name: str) -> np.ndarray[Any, Any]:
    """Random data that does not compress below ``LIMIT`` (PNG: a 2D uint16 image)."""
    rng = np.random.default_rng(0)
    if name.endswith(".png"):
        return rng.integers(0, 2**16, size=SHAPE[2:], dtype=np.uint16)
    return rng.standard_normal(SHAPE).astype(np.float32)


def dims_for(name: str) -> str:
    return "yx" if name.endswith(".png") else "bcyx"


def names_in(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def run_python(
    code: str, cwd: Path, *, limit: int | None = None, timeout: float = 120
) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter (optionally with a file size limit); its last line
    of output is JSON."""
    def set_limit() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=set_limit,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr
    parsed: dict[str, Any] = json.loads(lines[-1])
    return parsed


_TRY_WRITE = """
    import json, sys
    import numpy as np
    from bioimageio_core.errors import OutputError
    from bioimageio_core.io import open_output_array, save_tensor
    from bioimageio_core.tensor import Tensor
    name, how, dims = sys.argv[1:] if len(sys.argv) > 1 else ({name!r}, {how!r}, {dims!r})
    rng = np.random.default_rng(0)
    if name.endswith(".png"):
        data = rng.integers(0, 2**16, size={shape}[2:], dtype=np.uint16)
    else:
        data = rng.standard_normal({shape}).astype(np.float32)
    try:
        if how == "save":
            save_tensor(name, Tensor(data, dims))
        else:
            with open_output_array(name, data.shape, data.dtype, dims) as out:
                half = data.shape[-1] // 2
                out[..., :half] = data[..., :half]
                out[..., half:] = data[..., half:]
        print(json.dumps({{"written": True}}))
    except OutputError as e:
        print(json.dumps({{"error": str(e)}}))
"""


def try_write(cwd: Path, name: str, how: str, limit: int | None) -> dict[str, Any]:
    code = _TRY_WRITE.format(name=name, how=how, dims=dims_for(name), shape=SHAPE)
    return run_python(code, cwd, limit=limit)


@pytest.mark.parametrize("name", FILES)
def test_file_size_limit_leaves_nothing_and_says_why(tmp_path: Path, name: str) -> None:
    result = try_write(tmp_path, name, "save", LIMIT)
    assert "file size limit" in result.get("error", ""), result
    assert "incomplete data was removed" in result["error"]
    assert names_in(tmp_path) == []  # neither the output nor a temporary file
    # the rerun is not blocked ("exists already") and writes the whole output
    save_tensor(f"{tmp_path}/{name}", Tensor(data_for(name), dims_for(name)), overwrite=False)
    loaded = load_tensor(f"{tmp_path}/{name}")
    np.testing.assert_array_equal(np.squeeze(loaded.data), np.squeeze(data_for(name)))
    assert [n for n in names_in(tmp_path) if n.startswith(".tmp-")] == []


@pytest.mark.parametrize("name", STREAMED)
def test_file_size_limit_while_streaming_leaves_nothing(tmp_path: Path, name: str) -> None:
    result = try_write(tmp_path, name, "stream", LIMIT)
    assert "file size limit" in result.get("error", ""), result
    assert names_in(tmp_path) == []


@pytest.mark.parametrize("how", ["save", "stream"])
def test_a_failed_write_into_an_existing_hdf5_file_keeps_the_file(
    tmp_path: Path, how: str
) -> None:
    small = Tensor(np.arange(6, dtype="int32").reshape(2, 3), "yx")
    save_tensor(tmp_path / "o.h5:/raw", small)
    before = (tmp_path / "o.h5").read_bytes()
    result = try_write(tmp_path, "o.h5:/pred", how, LIMIT)
    assert "file size limit" in result.get("error", ""), result
    assert names_in(tmp_path) == ["o.h5"]
    assert (tmp_path / "o.h5").read_bytes() == before  # HDF5 is changed in a copy
    np.testing.assert_array_equal(load_tensor(tmp_path / "o.h5:/raw").data, small.data)


_KILLED_WRITER = """
    import sys, time
    import numpy as np
    from bioimageio_core.io import open_output_array
    name, dims = {name!r}, {dims!r}
    data = np.random.default_rng(0).standard_normal({shape}).astype(np.float32)
    out = open_output_array(name, data.shape, data.dtype, dims, chunks={chunks})
    out[..., : data.shape[-1] // 2] = data[..., : data.shape[-1] // 2]
    out.flush()
    print("ready", flush=True)
    time.sleep(120)
"""


def kill_while_writing(cwd: Path, name: str, chunks: tuple[int, ...] | None = None) -> None:
    """Start a streamed write of ``name``, SIGKILL the process half way, reap it."""
    code = _KILLED_WRITER.format(name=name, dims="bcyx", shape=SHAPE, chunks=chunks)
    kill_when_ready(code, cwd=cwd)


@pytest.fixture
def existing_containers(tmp_path: Path) -> Iterator[Tensor]:
    """``o.h5`` and ``o.zarr`` exist already, each with an array ``raw``."""
    raw = Tensor(np.arange(12, dtype="float32").reshape(3, 4), "yx")
    save_tensor(tmp_path / "o.h5:/raw", raw)
    save_tensor(tmp_path / "o.zarr:raw", raw)
    yield raw


@pytest.mark.parametrize(
    "name, chunks",
    [
        ("o.npy", None),
        ("o.tif", None),
        ("o.tif", (1, 1, 64, 64)),  # tiled
        ("o.h5", None),
        ("o.zarr", None),
        ("o.ome.zarr", (1, 1, 64, 64)),
    ],
)
def test_killed_streaming_leaves_no_output_and_the_rerun_cleans_up(
    tmp_path: Path, name: str, chunks: tuple[int, ...] | None
) -> None:
    from bioimageio_core.errors import IncompleteOutputError
    from bioimageio_core.io.staging import OutputNotice

    kill_while_writing(tmp_path, name, chunks)
    assert not (tmp_path / name).exists()  # nothing that looks like a result
    (leftover,) = names_in(tmp_path)
    assert leftover.startswith(".tmp-") and leftover.endswith(name)
    with pytest.raises(IncompleteOutputError, match="interrupted"):
        load_tensor(tmp_path / leftover)
    check_outputs([tmp_path / name], overwrite=False)  # a rerun is not refused

    data = data_for(name)
    with pytest.warns(OutputNotice, match="removed .*interrupted run"):
        out = open_output_array(tmp_path / name, data.shape, data.dtype, "bcyx", overwrite=False)
    with out:
        out[...] = data
    assert names_in(tmp_path) == [name]
    loaded = load_tensor(tmp_path / name, expected_axes="bcyx")
    np.testing.assert_array_equal(loaded.data.reshape(data.shape), data)


def test_killed_writing_into_an_existing_zarr_store_is_marked_incomplete(
    tmp_path: Path, existing_containers: Tensor
) -> None:
    from bioimageio_core.errors import IncompleteOutputError
    from bioimageio_core.io.staging import OutputNotice

    name = f"{tmp_path}/o.zarr:pred"
    kill_while_writing(tmp_path, "o.zarr:pred")
    assert names_in(tmp_path) == ["o.h5", "o.zarr"]
    with pytest.raises(IncompleteOutputError, match="interrupted") as info:
        load_tensor(name)
    assert info.value.hint is not None and "again" in info.value.hint
    np.testing.assert_array_equal(
        load_tensor(f"{tmp_path}/o.zarr:raw").data, existing_containers.data
    )
    check_outputs([name], overwrite=False)  # replaced, not "exists already"

    data = data_for(name)
    with pytest.warns(OutputNotice, match="replacing .*interrupted run"):
        save_tensor(name, Tensor(data, "bcyx"), overwrite=False)
    np.testing.assert_array_equal(load_tensor(name).data, data)


def test_killed_writing_into_an_existing_hdf5_file_leaves_it_as_it_was(
    tmp_path: Path, existing_containers: Tensor
) -> None:
    from bioimageio_core.io.staging import OutputNotice

    before = (tmp_path / "o.h5").read_bytes()
    kill_while_writing(tmp_path, "o.h5:/pred")
    assert (tmp_path / "o.h5").read_bytes() == before
    (leftover,) = (n for n in names_in(tmp_path) if n.startswith(".tmp-"))
    assert leftover.endswith("o.h5")
    data = data_for("o.h5")
    with pytest.warns(OutputNotice, match="removed .*interrupted run"):
        save_tensor(f"{tmp_path}/o.h5:/pred", Tensor(data, "bcyx"), overwrite=False)
    assert names_in(tmp_path) == ["o.h5", "o.zarr"]
    np.testing.assert_array_equal(load_tensor(f"{tmp_path}/o.h5:/pred").data, data)
    np.testing.assert_array_equal(load_tensor(f"{tmp_path}/o.h5:/raw").data, existing_containers.data)


def test_a_full_disk_while_streaming_fails_before_the_first_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bioimageio_core.errors import OutputError

    def no_space(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    for name in ("o.npy", "o.tif"):
        with pytest.raises(OutputError, match="disk is full"):
            open_output_array(tmp_path / name, SHAPE, "float32", "bcyx")
    assert names_in(tmp_path) == []


def test_a_full_disk_while_saving_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tifffile

    from bioimageio_core.errors import OutputError

    old = Tensor(np.zeros((4, 4), dtype="uint8"), "yx")
    save_tensor(tmp_path / "o.tif", old)
    real = tifffile.imwrite

    def half_then_full(path: Any, data: Any, **kwargs: Any) -> None:
        real(path, data[..., : data.shape[-1] // 2], **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(tifffile, "imwrite", half_then_full)
    with pytest.raises(OutputError, match="disk is full.*o.tif is unchanged"):
        save_tensor(tmp_path / "o.tif", Tensor(data_for("o.tif"), "bcyx"))
    assert names_in(tmp_path) == ["o.tif"]
    np.testing.assert_array_equal(load_tensor(tmp_path / "o.tif").data, old.data)


@pytest.mark.parametrize("name", ["o.npy", "o.npz", "o.tif", "o.png", "o.h5", "o.zarr"])
def test_outputs_get_the_umask_and_keep_a_replaced_files_mode(tmp_path: Path, name: str) -> None:
    tensor = Tensor(data_for(name), dims_for(name))
    old = os.umask(0o027)
    try:
        save_tensor(tmp_path / name, tensor)
    finally:
        os.umask(old)
    path = tmp_path / name
    expected = 0o750 if path.is_dir() else 0o640
    assert stat.S_IMODE(path.stat().st_mode) == expected
    path.chmod(0o604 if path.is_file() else 0o705)
    save_tensor(path, tensor)
    assert stat.S_IMODE(path.stat().st_mode) == (0o604 if path.is_file() else 0o705)


def test_members_are_refused_only_when_they_exist(
    tmp_path: Path, existing_containers: Tensor
) -> None:
    from bioimageio_core.errors import OutputExistsError

    for existing, new in (("o.h5:/raw", "o.h5:/other"), ("o.zarr:raw", "o.zarr:other")):
        with pytest.raises(OutputExistsError, match="exists already"):
            save_tensor(f"{tmp_path}/{existing}", existing_containers, overwrite=False)
        with pytest.raises(OutputExistsError, match=r"exists already \(and 1 more\)"):
            check_outputs(
                [f"{tmp_path}/{existing}", f"{tmp_path}/{new}", tmp_path / "o.zarr"],
                overwrite=False,
            )
        save_tensor(f"{tmp_path}/{new}", existing_containers, overwrite=False)
        np.testing.assert_array_equal(
            load_tensor(f"{tmp_path}/{existing}").data, existing_containers.data
        )


def test_an_error_in_the_with_block_removes_the_output(tmp_path: Path) -> None:
    final = tmp_path / "o.npy"
    np.save(final, np.ones(3))
    with pytest.raises(KeyboardInterrupt):
        with open_output_array(final, (5,), "float32", "x") as out:
            out[:2] = 7
            raise KeyboardInterrupt
    assert names_in(tmp_path) == ["o.npy"]
    np.testing.assert_array_equal(np.load(final), np.ones(3))
