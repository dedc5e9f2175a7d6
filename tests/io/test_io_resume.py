"""Outputs written block by block by several processes, killed, and resumed (zarr, OME-Zarr)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from io_processes import kill_when_ready, start

from bioimageio_core.errors import IncompleteOutputError, OutputError
from bioimageio_core.io import ChunkGrid, load_tensor, open_array, open_output_array
from bioimageio_core.io.staging import OutputNotice

pytest.importorskip("zarr", reason="the 'zarr' extra is not installed")

SHAPE = (1, 2, 24, 20)
CHUNKS = (1, 2, 8, 8)
DIMS = "bcyx"


def expected() -> np.ndarray[Any, Any]:
    return np.random.default_rng(3).standard_normal(SHAPE).astype("float32")


def names_in(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


_WORKER = """
    import pickle, sys
    import numpy as np
    shared = pickle.loads(open(sys.argv[1], "rb").read())
    part, parts = int(sys.argv[2]), int(sys.argv[3])
    data = np.random.default_rng(3).standard_normal(shared.shape).astype("float32")
    from bioimageio_core.io import ChunkGrid
    grid = ChunkGrid(shared.shape, shared.chunks)
    with shared.open() as out:
        for k, index in enumerate(grid.indices()):
            if k % parts == part:
                region = grid.chunk_region(index)
                out.write_block(region, data[region])
    print("done", flush=True)
"""


@pytest.mark.parametrize("name", ["o.zarr", "o.ome.zarr", "s.zarr:pred"])
def test_two_processes_write_their_chunks_and_the_owner_finalizes(
    tmp_path: Path, name: str
) -> None:
    if name.startswith("s.zarr"):
        from bioimageio_core.io import save_tensor
        from bioimageio_core.tensor import Tensor

        save_tensor(tmp_path / "s.zarr:raw", Tensor(np.zeros((2, 2)), "yx"))
    target = f"{tmp_path}/{name}"
    out = open_output_array(target, SHAPE, "float32", DIMS, chunks=CHUNKS, fingerprint="run-1")
    shared = out.shared()
    assert shared.fingerprint == "run-1"
    handle = tmp_path / "handle.pickle"
    handle.write_bytes(pickle.dumps(shared))
    workers = [start(_WORKER, str(handle), str(i), "2") for i in range(2)]
    for w in workers:
        stdout, stderr = w.communicate(timeout=120)
        assert w.returncode == 0 and stdout.strip() == "done", stderr
    assert not out.missing_chunks()
    out.finalize()
    loaded = load_tensor(target)
    np.testing.assert_array_equal(loaded.data.reshape(SHAPE), expected())
    with open_array(target) as opened:  # the record is gone with the finished output
        assert not list(Path(tmp_path).rglob(".bioimageio_run_done"))
        assert opened.chunks is not None


def test_shared_writers_must_write_whole_chunks(tmp_path: Path) -> None:
    out = open_output_array(tmp_path / "o.zarr", SHAPE, "float32", DIMS, chunks=CHUNKS)
    with out.shared().open() as part:
        with pytest.raises(OutputError, match="cuts chunks"):
            part.write_block((0, slice(None), slice(0, 4), slice(0, 8)), np.zeros((1, 2, 4, 8)))
        part.write_block((0, slice(None), slice(16, 24), slice(16, 20)), np.ones((1, 2, 8, 4)))
    assert out.done_chunks() == {(0, 0, 2, 2)}
    out.discard()
    assert names_in(tmp_path) == []


@pytest.mark.parametrize("name", ["o.npy", "o.tif", "o.h5"])
def test_single_writer_formats_say_so(tmp_path: Path, name: str) -> None:
    from bioimageio_core.io import output_format

    fmt = output_format(tmp_path / name)
    assert not fmt.concurrent and not fmt.resumable  # asked before anything is created
    assert output_format(tmp_path / "x.ome.zarr").concurrent
    assert output_format(f"{tmp_path}/s.zarr:pred").resumable
    with open_output_array(tmp_path / name, SHAPE, "float32", DIMS) as out:
        assert not out.concurrent and not out.resumable
        with pytest.raises(OutputError, match="single writer") as info:
            out.shared()
        assert info.value.hint is not None and ".zarr" in info.value.hint
        out.write_block(..., expected())
        assert out.done_chunks() == frozenset()


_KILLED = """
    import sys, time
    import numpy as np
    from bioimageio_core.io import open_output_array
    target, n = sys.argv[1], int(sys.argv[2])
    data = np.random.default_rng(3).standard_normal({shape}).astype("float32")
    out = open_output_array(target, data.shape, data.dtype, {dims!r}, chunks={chunks},
                            fingerprint="run-1")
    for k, index in enumerate(out.chunk_grid.indices()):
        if k == n:
            break
        region = out.chunk_grid.chunk_region(index)
        out.write_block(region, data[region])
    print("ready", flush=True)
    time.sleep(120)
"""


def kill_after(target: str, n_chunks: int) -> None:
    kill_when_ready(_KILLED.format(shape=SHAPE, dims=DIMS, chunks=CHUNKS), target, str(n_chunks))


@pytest.mark.parametrize("name", ["o.zarr", "o.ome.zarr"])
def test_a_killed_run_is_resumed_and_skips_finished_chunks(tmp_path: Path, name: str) -> None:
    target = f"{tmp_path}/{name}"
    kill_after(target, 5)
    assert not Path(target).exists()  # nothing that looks like a result
    (leftover,) = names_in(tmp_path)
    assert leftover.startswith(".tmp-")
    with pytest.raises(IncompleteOutputError, match="interrupted"):
        load_tensor(tmp_path / leftover)

    with pytest.warns(OutputNotice, match="resuming"):
        out = open_output_array(
            target, SHAPE, "float32", DIMS, chunks=CHUNKS, resume=True, fingerprint="run-1"
        )
    grid = ChunkGrid(SHAPE, CHUNKS)
    assert out.done_chunks() == set(list(grid.indices())[:5])
    data = expected()
    written = 0
    for index in out.missing_chunks():
        region = grid.chunk_region(index)
        out.write_block(region, data[region])
        written += 1
    assert written == grid.n_chunks - 5
    out.finalize()
    assert names_in(tmp_path) == [name]
    np.testing.assert_array_equal(load_tensor(target).data.reshape(SHAPE), data)

    # resuming a complete output finds nothing to do
    again = open_output_array(
        target, SHAPE, "float32", DIMS, chunks=CHUNKS, resume=True, fingerprint="run-1"
    )
    assert again.committed and not again.missing_chunks()
    assert again.is_done(...)
    with pytest.raises(OutputError, match="complete already"):
        again.write_block(..., data)
    again.finalize()
    np.testing.assert_array_equal(load_tensor(target).data.reshape(SHAPE), data)


def test_resuming_a_member_of_an_existing_store(tmp_path: Path) -> None:
    from bioimageio_core.io import save_tensor
    from bioimageio_core.tensor import Tensor

    raw = Tensor(np.arange(6.0).reshape(2, 3), "yx")
    save_tensor(tmp_path / "s.zarr:raw", raw)
    target = f"{tmp_path}/s.zarr:pred"
    kill_after(target, 3)
    with pytest.raises(IncompleteOutputError):
        load_tensor(target)
    out = open_output_array(
        target, SHAPE, "float32", DIMS, chunks=CHUNKS, resume=True, fingerprint="run-1"
    )
    assert len(out.done_chunks()) == 3
    data = expected()
    for index in out.missing_chunks():
        region = out.chunk_grid.chunk_region(index)
        out.write_block(region, data[region])
    out.finalize()
    np.testing.assert_array_equal(load_tensor(target).data, data)
    np.testing.assert_array_equal(load_tensor(f"{tmp_path}/s.zarr:raw").data, raw.data)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"fingerprint": "run-2"}, "different run"),
        ({"chunks": (1, 2, 4, 4)}, "chunks"),
        ({"dtype": "float64"}, "dtype"),
    ],
)
def test_a_resume_never_mixes_two_different_runs(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    target = f"{tmp_path}/o.zarr"
    kill_after(target, 2)
    kwargs: dict[str, Any] = {"chunks": CHUNKS, "fingerprint": "run-1", "dtype": "float32"}
    kwargs.update(change)
    dtype = kwargs.pop("dtype")
    with pytest.raises(OutputError, match=f"cannot resume .*{message}") as info:
        with pytest.warns(OutputNotice):
            open_output_array(target, SHAPE, dtype, DIMS, resume=True, **kwargs)
    assert info.value.hint is not None and "--overwrite" in info.value.hint
    assert f"cannot resume {target}:" in str(info.value)  # the output, not its temporary name
    # what the interrupted run wrote is kept: the matching run resumes it
    (leftover,) = names_in(tmp_path)
    assert leftover.startswith(".tmp-")
    with pytest.warns(OutputNotice, match="resuming"):
        out = open_output_array(
            target, SHAPE, "float32", DIMS, chunks=CHUNKS, resume=True, fingerprint="run-1"
        )
    assert len(out.done_chunks()) == 2
    out.discard()


def test_without_resume_the_leftover_is_removed_and_written_anew(tmp_path: Path) -> None:
    target = f"{tmp_path}/o.zarr"
    kill_after(target, 4)
    with pytest.warns(OutputNotice, match="removed"):
        out = open_output_array(target, SHAPE, "float32", DIMS, chunks=CHUNKS)
    assert out.done_chunks() == frozenset()
    out.write_block(..., expected())
    out.finalize()
    assert names_in(tmp_path) == ["o.zarr"]


def test_data_a_running_process_writes_is_never_taken_over(tmp_path: Path) -> None:
    from bioimageio_core.io.staging import adopt, host_tag

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = tmp_path / f".tmp-{host_tag()}-{sleeper.pid}-0123abcd-o.zarr"
        busy.mkdir()
        with pytest.raises(
            OutputError, match=f"being written by another run \\(process {sleeper.pid}\\)"
        ):
            open_output_array(tmp_path / "o.zarr", SHAPE, "float32", DIMS, resume=True)
        assert busy.is_dir()
    finally:
        sleeper.kill()
        sleeper.wait()
    staged = adopt(tmp_path / "o.zarr", directory=True)  # its writer has ended now
    assert staged is not None and staged.adopted_from == busy and staged.path.is_dir()
    staged.give_back()
    assert names_in(tmp_path) == [busy.name]
    assert adopt(tmp_path / "other.zarr", directory=True) is None
