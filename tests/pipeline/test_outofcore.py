"""Out-of-core prediction: stored inputs read and outputs written block by block, equal to
in-memory prediction bit for bit; chosen by default for chunked inputs; resumable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pipeline_models import InputDef, OutputDef, conv_model, kernel

from bioimageio_core.blocks import model_sample_grid, sample_grid
from bioimageio_core.errors import InputError
from bioimageio_core.execution import outofcore
from bioimageio_core.execution.forward import Forward
from bioimageio_core.execution.outofcore import plan_layout, task_sizes
from bioimageio_core.execution.plan import BlockPlan
from bioimageio_core.io import load_tensor, open_array, save_tensor
from bioimageio_core.io.staging import OutputNotice
from bioimageio_core.prediction import predict, predict_many
from bioimageio_core.shapes import (
    AxisShape,
    ModelShape,
    SizeReference,
    TensorShape,
    output_sizes,
)
from bioimageio_core.tensor import Tensor

pytest.importorskip("zarr", reason="the 'zarr' extra is not installed")

Array = np.ndarray[Any, Any]
HERE = Path(__file__).parent

PREPROCESSING = {
    "zero_mean_unit_variance": [{"id": "zero_mean_unit_variance", "kwargs": {"axes": ["y", "x"]}}],
    "scale_range": [
        {
            "id": "scale_range",
            "kwargs": {"axes": ["channel", "y", "x"], "min_percentile": 1, "max_percentile": 99.8},
        }
    ],
    "fixed": [{"id": "scale_linear", "kwargs": {"gain": 0.5, "offset": 1.0}}],
}


def volume(y: int, x: int, seed: int = 0, channels: int = 1) -> Array:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(channels, y, x)) * 30 + 100).astype("float32")


@pytest.mark.parametrize("preprocessing", sorted(PREPROCESSING))
@pytest.mark.parametrize("output", ["out.zarr", "out.npy", "out.ome.zarr"])
def test_out_of_core_equals_in_memory_bit_for_bit(
    tmp_path: Path, preprocessing: str, output: str
) -> None:
    model = conv_model(
        tmp_path,
        [InputDef("raw", channels=2, preprocessing=PREPROCESSING[preprocessing])],
        [OutputDef("out", kernel(2, seed=4), halo=2, postprocessing=[{"id": "sigmoid"}])],
    )
    x = volume(300, 170, channels=2)
    save_tensor(tmp_path / "x.zarr", Tensor(x, ("channel", "y", "x")))
    expected = predict(model=model, inputs=x, axes="cyx", blocksize_parameter=3, batch_size=2)
    result = predict(
        model=model,
        inputs={"raw": str(tmp_path / "x.zarr")},
        save_output_path=tmp_path / output,
        blocksize_parameter=3,
        batch_size=2,
    )
    assert result.members == {} and result.written == {"out": tmp_path / output}
    want = expected.members["out"].data
    got = load_tensor(tmp_path / output).data  # OME-Zarr stores no batch axis
    np.testing.assert_array_equal(got.reshape(want.shape), want)


def test_several_inputs_and_outputs_out_of_core(tmp_path: Path) -> None:
    inputs = [InputDef("a", preprocessing=PREPROCESSING["zero_mean_unit_variance"]), InputDef("b")]
    outputs = [OutputDef("oa", kernel(1), input_index=0), OutputDef("ob", kernel(2, seed=2), input_index=1)]
    model = conv_model(tmp_path, inputs, outputs)
    a, b = volume(200, 150, seed=1)[0], volume(200, 150, seed=2)[0]
    save_tensor(tmp_path / "a.zarr", Tensor(a, ("y", "x")))
    np.save(tmp_path / "b.npy", b)
    expected = predict(model=model, inputs={"a": a, "b": b}, axes="yx", blocksize_parameter=2)
    predict(
        model=model,
        inputs={"a": str(tmp_path / "a.zarr"), "b": str(tmp_path / "b.npy")},
        axes="yx",
        save_output_path=tmp_path / "{output_id}.zarr",
        blocksize_parameter=2,
    )
    for oid in ("oa", "ob"):
        got = load_tensor(tmp_path / f"{oid}.zarr").data
        np.testing.assert_array_equal(got, expected.members[oid].data)


def test_small_files_stay_in_memory_and_chunked_ones_stream(tmp_path: Path) -> None:
    model = conv_model(tmp_path)
    x = volume(100, 100)[0]
    np.save(tmp_path / "x.npy", x)
    in_memory = predict(model=model, inputs=str(tmp_path / "x.npy"), save_output_path=tmp_path / "a.npy")
    assert in_memory.members and not in_memory.written
    save_tensor(tmp_path / "x.zarr", Tensor(x, ("y", "x")))
    streamed = predict(model=model, inputs=str(tmp_path / "x.zarr"), save_output_path=tmp_path / "b.npy")
    assert not streamed.members and streamed.written == {"out": tmp_path / "b.npy"}
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), in_memory.members["out"].data)
    forced = predict(model=model, inputs=str(tmp_path / "x.npy"), save_output_path=tmp_path / "c.npy", out_of_core=True)
    assert forced.written and np.array_equal(np.load(tmp_path / "c.npy"), np.load(tmp_path / "b.npy"))
    kept = predict(model=model, inputs=str(tmp_path / "x.zarr"), save_output_path=tmp_path / "d.npy", out_of_core=False)
    assert kept.members


def test_out_of_core_says_why_it_cannot_run(tmp_path: Path) -> None:
    stats_post = [{"id": "zero_mean_unit_variance", "kwargs": {"axes": ["y", "x"]}}]
    model = conv_model(tmp_path, outputs=[OutputDef("out", kernel(1), postprocessing=stats_post)])
    x = volume(80, 80)[0]
    save_tensor(tmp_path / "x.zarr", Tensor(x, ("y", "x")))
    with pytest.raises(InputError, match="cannot predict out-of-core: this model cannot: its postprocessing"):
        predict(model=model, inputs=str(tmp_path / "x.zarr"), save_output_path=tmp_path / "o.zarr", out_of_core=True)
    # by default such a model simply runs in memory
    assert predict(model=model, inputs=str(tmp_path / "x.zarr"), save_output_path=tmp_path / "o.zarr").members
    (tmp_path / "plain").mkdir()
    plain = conv_model(tmp_path / "plain")
    with pytest.raises(InputError, match="the inputs are not all files"):
        predict(model=plain, inputs=x, save_output_path=tmp_path / "p.zarr", out_of_core=True)
    with pytest.raises(InputError, match="the outputs are not written to files"):
        predict(model=plain, inputs=str(tmp_path / "x.zarr"), out_of_core=True)
    with pytest.raises(InputError, match="cannot be written block by block"):
        predict(model=plain, inputs=str(tmp_path / "x.zarr"), save_output_path=tmp_path / "p.png", out_of_core=True)


def test_dataset_statistics_of_stored_inputs_equal_the_in_memory_ones(tmp_path: Path) -> None:
    dataset_zmuv = [{"id": "zero_mean_unit_variance", "kwargs": {"axes": ["batch", "y", "x"]}}]
    model = conv_model(tmp_path, [InputDef("raw", preprocessing=dataset_zmuv)])
    xs = [volume(120 + 16 * i, 90, seed=i)[0] for i in range(3)]
    for i, x in enumerate(xs):
        save_tensor(tmp_path / f"x{i}.zarr", Tensor(x, ("y", "x")))
    expected = list(predict_many(model=model, inputs=xs, axes="yx", blocksize_parameter=1))
    reports: list[Any] = []
    streamed = list(
        predict_many(
            model=model,
            inputs=[str(tmp_path / f"x{i}.zarr") for i in range(3)],
            save_output_path=tmp_path / "out" / "{sample_id}.zarr",
            blocksize_parameter=1,
            on_dataset_statistics=reports.append,
        )
    )
    assert reports[0].origin == "computed" and reports[0].n_samples == 3
    for result, exp in zip(streamed, expected, strict=True):
        got = load_tensor(result.written["out"]).data
        np.testing.assert_array_equal(got, exp.members["out"].data)


_KILLED = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from bioimageio_core.prediction import predict

def stop(done, total):
    if done >= 10:
        os.kill(os.getpid(), signal.SIGKILL)

predict(model=sys.argv[2], inputs=sys.argv[3], save_output_path=sys.argv[4],
        blocksize_parameter=0, resume=True, on_progress=stop)
"""


def _killed_run(tmp_path: Path) -> tuple[np.ndarray[Any, Any], Path]:
    """A model and its input ``x`` in ``tmp_path``, predicted into ``pred.zarr`` by a process
    killed (SIGKILL) after 10 blocks: (``x``, the output path, still absent)."""
    conv_model(tmp_path, outputs=[OutputDef("out", kernel(2), halo=2)])
    x = volume(300, 300)[0]
    save_tensor(tmp_path / "x.zarr", Tensor(x, ("y", "x")))
    out = tmp_path / "pred.zarr"
    killed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_KILLED), str(HERE), str(tmp_path / "rdf.yaml"), str(tmp_path / "x.zarr"), str(out)],
        capture_output=True, text=True, timeout=300, env=os.environ,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not out.exists()  # absent: the data lies under a temporary name
    return x, out


def test_a_killed_run_is_resumed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x, out = _killed_run(tmp_path)
    calls: list[int] = []
    real = Forward.calls

    def counting(self: Forward, adapter: Any, forward_calls: Any) -> Any:
        calls.extend([1] * len(forward_calls))
        return real(self, adapter, forward_calls)

    monkeypatch.setattr(Forward, "calls", counting)
    progress: list[tuple[int, int]] = []
    with pytest.warns(OutputNotice, match="resuming .*taking over the data an interrupted run left"):
        result = predict(
            model=tmp_path / "rdf.yaml",
            inputs=str(tmp_path / "x.zarr"),
            save_output_path=out,
            blocksize_parameter=0,
            resume=True,
            on_progress=lambda done, total: progress.append((done, total)),
        )
    total = progress[-1][1]
    # writes trail the model by a few blocks (at most 4 queued): most of the 10 are recorded
    assert progress[0][0] >= 5 and progress[-1] == (total, total)
    assert len(calls) == 1 + total - progress[0][0]  # the dtype probe and the blocks not written
    expected = predict(model=tmp_path / "rdf.yaml", inputs=x, blocksize_parameter=0)
    np.testing.assert_array_equal(load_tensor(result.written["out"]).data, expected.members["out"].data)
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())
    with open_array(out) as opened:  # complete: no record of written chunks is left
        assert opened.shape == expected.members["out"].data.shape
    assert not (out / ".bioimageio_run_done").exists()


def test_resume_refuses_an_output_of_another_run(tmp_path: Path) -> None:
    model = conv_model(tmp_path)
    x = volume(100, 100)[0]
    save_tensor(tmp_path / "x.zarr", Tensor(x, ("y", "x")))
    save_tensor(tmp_path / "y.zarr", Tensor(x + 1, ("y", "x")))
    predict(model=model, inputs=str(tmp_path / "x.zarr"), save_output_path=tmp_path / "o.zarr")
    again = predict(model=model, inputs=str(tmp_path / "x.zarr"), save_output_path=tmp_path / "o.zarr", resume=True)
    assert again.written  # complete already: nothing to do
    from bioimageio_core.errors import OutputError

    with pytest.raises(OutputError):
        predict(model=model, inputs=str(tmp_path / "y.zarr"), save_output_path=tmp_path / "o.zarr", resume=True, overwrite=False)


def _shape(offset: int) -> ModelShape:
    axes_in = [AxisShape("y", "space", None), AxisShape("x", "space", None)]
    axes_out = [
        AxisShape("y", "space", SizeReference("raw", "y", offset)),
        AxisShape("x", "space", SizeReference("raw", "x", 0), halo=2),
    ]
    return ModelShape([TensorShape("raw", axes_in)], [TensorShape("out", axes_out)])


def test_layout_chunks_follow_blocks_and_tasks_own_whole_chunks() -> None:
    sample = {"raw": {"y": 100, "x": 90}}
    block = {("raw", "y"): 30, ("raw", "x"): 34}
    shape = _shape(0)
    grid = model_sample_grid(shape, sample, block)
    sizes = output_sizes(shape, {("raw", "y"): 100, ("raw", "x"): 90})
    layout = plan_layout(BlockPlan(grid, sizes, 2, 2), shape, blocks_per_task=3)
    assert layout.chunks == {"out": (30, 30)}
    assert [len(t.blocks) for t in layout.tasks] == [4, 4, 4]  # 12 blocks, whole batches of 2
    # a model that crops its output: inner regions fall off the grid along y, so chunks span y
    # and a task takes every block along it
    cropped = _shape(-2)
    grid = model_sample_grid(cropped, sample, block)
    sizes = output_sizes(cropped, {("raw", "y"): 100, ("raw", "x"): 90})
    layout = plan_layout(BlockPlan(grid, sizes, 1, 1), cropped, 1)
    assert layout.chunks == {"out": (98, 30)}
    n_y = grid.grid["y"]
    assert len(layout.tasks) == 3 and all(len(t.blocks) == n_y for t in layout.tasks)
    assert all(len(t.regions["out"]) == 1 for t in layout.tasks)
    covered = np.zeros((98, 90), dtype=int)  # the tasks' regions tile the output once
    for task in layout.tasks:
        covered[task.regions["out"][0]] += 1
    assert (covered == 1).all()


@given(
    batches=st.integers(0, 3000),
    most=st.integers(1, 20),
    slots=st.none() | st.integers(1, 70),
)
def test_tasks_shrink_towards_the_end(batches: int, most: int, slots: int | None) -> None:
    sizes = task_sizes(batches, most, slots)
    assert sum(sizes) == batches and all(1 <= s <= most for s in sizes)
    if slots is None:
        assert all(s == most for s in sizes[:-1])
        return
    assert sizes == sorted(sizes, reverse=True)
    left = batches
    for size in sizes:  # no task takes more than its share of what is left for the slots
        assert size == 1 or size <= left / (2 * slots)
        left -= size
    # while there is enough work left, tasks take ``most`` batches (dask's cost per task stays
    # small); the last ones take one batch, so that the slots finish within a batch of each other
    assert sizes.count(most) >= (batches - 2 * slots * most) // most
    assert sizes[-min(len(sizes), 2 * slots) :] == [1] * min(len(sizes), 2 * slots)


def test_tasks_on_several_slots_are_whole_batches_in_grid_order() -> None:
    sample = {"raw": {"y": 200, "x": 190}}
    block = {("raw", "y"): 30, ("raw", "x"): 34}
    shape = _shape(0)
    grid = model_sample_grid(shape, sample, block)
    sizes = output_sizes(shape, {("raw", "y"): 200, ("raw", "x"): 190})
    layout = plan_layout(BlockPlan(grid, sizes, 3, 3), shape, blocks_per_task=12, slots=2)
    blocks = [b for t in layout.tasks for b in t.blocks]
    assert blocks == list(range(len(grid)))
    counts = [len(t.blocks) for t in layout.tasks]
    assert counts[0] == 12 and counts == sorted(counts, reverse=True)
    assert all(c % 3 == 0 for c in counts[:-1]) and counts[-1] <= 3
    with pytest.raises(ValueError, match="at least one batch"):
        task_sizes(4, 0, 2)


def test_statistics_of_kept_axes_are_cut_to_the_block() -> None:
    from bioimageio_core.stats import SampleMean

    grid = sample_grid({"raw": {"z": 6, "x": 10}}, {("raw", "z"): 2}, {})
    value = Tensor(np.arange(6.0), ("z",))
    cut = outofcore.crop_statistics({SampleMean("raw", ("x",)): value}, grid[1])
    np.testing.assert_array_equal(cut[SampleMean("raw", ("x",))].data, [2.0, 3.0])



@pytest.mark.parametrize("pointwise", [True, False])
def test_an_op_spec_says_whether_its_preprocessing_runs_out_of_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pointwise: bool
) -> None:
    """No op has a privilege out-of-core either: a plugin's preprocessing op (``toy_add`` of the
    toy test distribution) runs per block exactly when its ``OpSpec.pointwise`` says so."""
    import attrs

    from bioimageio_core import plugins

    if "toy_add" not in plugins.processing_ops():
        pytest.skip("the toy test distribution is not installed")
    registry = plugins.get_registry()
    spec = registry.ops.specs["toy_add"]
    monkeypatch.setitem(registry.ops.specs, "toy_add", attrs.evolve(spec, pointwise=pointwise))
    pre = [{"id": "toy_add", "kwargs": {"value": 0.5}}]
    model = conv_model(tmp_path, inputs=[InputDef("raw", preprocessing=pre)])
    x = volume(80, 80)[0]
    save_tensor(tmp_path / "x.zarr", Tensor(x, ("y", "x")))
    expected = predict(model=model, inputs=x).members["out"].data
    if pointwise:
        out = predict(model=model, inputs=str(tmp_path / "x.zarr"),
                      save_output_path=tmp_path / "o.zarr", out_of_core=True)  # fmt: skip
        assert not out.members
        np.testing.assert_array_equal(load_tensor(tmp_path / "o.zarr").data, expected)
    else:
        with pytest.raises(InputError, match=r"its preprocessing \(toy_add\)"):
            predict(model=model, inputs=str(tmp_path / "x.zarr"),
                    save_output_path=tmp_path / "o.zarr", out_of_core=True)  # fmt: skip


def test_the_command_line_resumes_a_killed_run(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from bioimageio_core.cli import main

    x, out = _killed_run(tmp_path)
    args = ["predict", str(tmp_path / "rdf.yaml"), "-i", str(tmp_path / "x.zarr"), "-o", str(out),
            "--blocksize", "0"]  # fmt: skip
    result = CliRunner().invoke(main, [*args, "--resume"])
    assert result.exit_code == 0, result.output
    assert "taking over the data an interrupted run left" in result.stderr
    expected = predict(model=tmp_path / "rdf.yaml", inputs=x, blocksize_parameter=0)
    np.testing.assert_array_equal(load_tensor(out).data, expected.members["out"].data)
