"""The thread budget of a process governs every pool a prediction uses."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pipeline_models import InputDef, OutputDef, conv_model, kernel

from bioimageio_core.execution.outofcore import TaskRunner
from bioimageio_core.io import load_tensor, save_tensor
from bioimageio_core.prediction import predict
from bioimageio_core.prefetch import PrefetchPolicy
from bioimageio_core.tensor import Tensor
from bioimageio_core.threads import (
    LIBRARY_THREAD_VARIABLES,
    missing_thread_environment,
    set_thread_budget,
    thread_budget,
    thread_environment,
    usable_cores,
)

zarr = pytest.importorskip("zarr", reason="the 'zarr' extra is not installed")


@pytest.fixture
def restore_budget() -> Iterator[None]:
    before = zarr.config.get("threading.max_workers")
    try:
        yield
    finally:
        set_thread_budget(None)
        zarr.config.set({"threading.max_workers": before})


def test_the_budget_defaults_to_the_usable_cores(restore_budget: None) -> None:
    assert thread_budget() == usable_cores()
    assert PrefetchPolicy().cores == usable_cores()
    set_thread_budget(3)
    assert thread_budget() == 3
    assert PrefetchPolicy().cores == 3
    assert zarr.config.get("threading.max_workers") == 3  # zarr's codec pool
    set_thread_budget(None)
    assert thread_budget() == usable_cores()
    with pytest.raises(ValueError, match="at least 1"):
        set_thread_budget(0)


def test_thread_environment_names_every_library() -> None:
    env = thread_environment(2)
    assert set(env) == set(LIBRARY_THREAD_VARIABLES) and set(env.values()) == {"2"}
    assert {
        "OMP_NUM_THREADS",
        "BIOIMAGEIO_ONNX_INTRA_OP_THREADS",
        "ZARR_THREADING__MAX_WORKERS",
    } <= set(env)
    # a setting the process already has stays
    kept = missing_thread_environment(1, {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": ""})
    assert "OMP_NUM_THREADS" not in kept and kept["MKL_NUM_THREADS"] == "1"


def test_on_a_budget_of_one_thread_blocks_are_read_and_written_in_the_calling_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_budget: None
) -> None:
    """A CPU backend keeps the one thread busy: no read-ahead or write-behind thread works
    beside it (a dask worker with one thread then uses one core, not more)."""
    model = conv_model(
        tmp_path,
        [InputDef("raw")],
        [OutputDef("out", kernel(2, seed=1), halo=2)],
    )
    x = (np.random.default_rng(0).normal(size=(300, 260)) * 20).astype("float32")
    save_tensor(tmp_path / "x.zarr", Tensor(x, ("y", "x")))
    where: dict[str, set[str]] = {"read": set(), "write": set()}
    write, read = TaskRunner.write, TaskRunner._batches

    def recording_write(self: TaskRunner, *args: Any) -> None:
        where["write"].add(threading.current_thread().name)
        write(self, *args)

    def recording_batches(self: TaskRunner, tasks: Any) -> Any:
        for item in read(self, tasks):
            where["read"].add(threading.current_thread().name)
            yield item

    monkeypatch.setattr(TaskRunner, "write", recording_write)
    monkeypatch.setattr(TaskRunner, "_batches", recording_batches)
    expected = predict(model=model, inputs=x, axes="yx", blocksize_parameter=2)
    # budget 1: whatever the timings (a slow disk may still justify reading ahead); budget 2:
    # reads that take any time go to the background
    for budget, min_seconds, background in ((1, float("inf"), False), (2, 0.0, True)):
        monkeypatch.setattr("bioimageio_core.prefetch.PREFETCH_MIN_SECONDS", min_seconds)
        set_thread_budget(budget)
        where["read"].clear()
        where["write"].clear()
        out = tmp_path / f"out{budget}.zarr"
        predict(model=model, inputs=str(tmp_path / "x.zarr"), save_output_path=out,
                blocksize_parameter=2, out_of_core=True)  # fmt: skip
        main = threading.current_thread().name
        if background:
            assert where["read"] - {main} and where["write"] - {main}
        else:
            assert where == {"read": {main}, "write": {main}}
        want = expected.members["out"].data
        np.testing.assert_array_equal(load_tensor(out).data.reshape(want.shape), want)
