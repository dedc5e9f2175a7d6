"""The prediction path as stages: each stage alone, composed in any block order, and the
guarantees of the path through them (each sample digested once, one streaming path)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pipeline_models import InputDef, OutputDef, conv_model, kernel, oracle_conv

import bioimageio_core.digest
import bioimageio_core.pipeline
from bioimageio_core.errors import InputError
from bioimageio_core.execution import (
    Blocking,
    MemberReader,
    OutputTargets,
    Stitcher,
    plan,
)
from bioimageio_core.execution.batch import stack, unstack
from bioimageio_core.execution.inprocess import grouped
from bioimageio_core.pipeline import create_prediction_pipeline
from bioimageio_core.prediction import predict, predict_many
from bioimageio_core.sample import Sample

Array = np.ndarray[Any, Any]


def rand(*shape: int, seed: int = 0) -> Array:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_stages_in_any_block_order_equal_the_pipeline(tmp_path: Path) -> None:
    """plan → read → forward → stitch → write, blocks taken in a shuffled order, give the
    pipeline's numbers exactly: each block's result depends on that block only."""
    k = kernel(2, seed=3)
    model = conv_model(tmp_path, outputs=[OutputDef("out", k, halo=2, postprocessing=[{"id": "sigmoid"}])])
    x = rand(150, 130, seed=1)
    with create_prediction_pipeline(model) as pp:
        expected = pp.predict_sample_with_blocking(x, 0).members["out"].data
        sample = pp.digest(x)
        block_plan = plan(
            pp.layout,
            sample.shape,
            Blocking(blocksize_parameter=0),
            default_blocksize_parameter=10,
            default_batch_size=1,
        )
        assert block_plan.n_blocks > 4
        processed = pp._preprocess(sample)
        reader = MemberReader(processed.members, {})
        stitcher = Stitcher(
            pp.io_shape,
            block_plan.output_sizes,
            weights_format=pp.weights_format,
            postprocessing=pp.postprocessing,
            stat=processed.stat,
        )
        targets = OutputTargets(None, pp.io_shape)
        order = list(range(block_plan.n_blocks))
        random.Random(7).shuffle(order)
        assert pp.adapter is not None
        for index in order:
            block = block_plan.grid[index]
            (outputs,) = pp.forward(pp.adapter, reader(block), 1, 1)
            for oid, (out_block, inner) in stitcher(block, outputs).items():
                targets.write(oid, out_block, inner, stitcher.output_sizes)
        got = targets.tensors()["out"].data
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(got[0, 0], 1 / (1 + np.exp(-oracle_conv(x, k))), atol=1e-5)


def test_stack_fills_a_short_batch_and_unstack_splits_it() -> None:
    axes = {"raw": ("batch", "channel", "y")}
    parts = [{"raw": np.full((1, 1, 3), i, dtype=np.float32)} for i in range(2)]
    arrays, n = stack(parts, axes, fill_to=4)
    assert n == 4 and arrays["raw"].shape == (4, 1, 3)
    assert [float(unstack(arrays["raw"], axes["raw"], i, n).max()) for i in range(n)] == [0, 1, 1, 1]
    single, one = stack(parts[:1], axes, fill_to=1)
    assert one == 1 and single["raw"] is parts[0]["raw"]


@given(st.lists(st.integers(1, 100), max_size=30), st.integers(0, 250))
def test_grouped_keeps_order_and_fills_each_request_up_to_the_limit(
    sizes: list[int], limit: int
) -> None:
    batches = [([], {"raw": np.zeros(n, np.uint8)}, i) for i, n in enumerate(sizes)]
    groups = list(grouped(iter(batches), limit))
    assert [b for g in groups for b in g] == batches  # every batch once, in order
    totals = [sum(b[1]["raw"].nbytes for b in g) for g in groups]
    for group, total in zip(groups, totals, strict=True):
        assert total <= limit or len(group) == 1  # a batch larger than the limit goes alone
    for total, after in zip(totals, groups[1:], strict=False):
        assert total + after[0][1]["raw"].nbytes > limit  # as full as the next batch allows
    if limit == 0:
        assert all(len(g) == 1 for g in groups)


def test_plan_reports_size_problems_before_anything_runs(tmp_path: Path) -> None:
    model = conv_model(tmp_path)
    with create_prediction_pipeline(model) as pp:
        sample_shape = pp.digest(rand(100, 100)).shape
        with pytest.raises(InputError, match="not valid"):
            plan(
                pp.layout,
                sample_shape,
                Blocking(input_block_shape={"raw": {"y": 70, "x": 64}}),
                default_blocksize_parameter=0,
                default_batch_size=1,
            )
        whole = plan(
            pp.layout, sample_shape, Blocking(), default_blocksize_parameter=0, default_batch_size=3
        )
        assert whole.n_blocks == 1 and whole.fill_to == 1


def test_each_sample_is_digested_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = conv_model(tmp_path)
    calls: list[Any] = []
    real = bioimageio_core.digest.digest_inputs

    def counting(*args: Any, **kwargs: Any) -> Sample:
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(bioimageio_core.pipeline, "digest_inputs", counting)
    x = rand(80, 80)
    with create_prediction_pipeline(model) as pp:
        given = Sample(members=pp.digest(x).members, id="given")
        runs: list[tuple[int, Any]] = [
            (1, lambda: predict(model=pp, inputs=x, blocksize_parameter=0)),
            (1, lambda: predict(model=pp, inputs={"raw": x}, save_output_path=tmp_path / "o.npy")),
            (1, lambda: pp.predict_sample_with_fixed_blocking(x, {"raw": {"y": 64, "x": 64}})),
            (1, lambda: pp.predict_sample_without_blocking(given)),
            (2, lambda: list(predict_many(model=pp, inputs=[x, given]))),  # two samples
        ]
        for expected, run in runs:
            calls.clear()
            run()
            assert len(calls) == expected


def test_predict_many_takes_one_id_per_input_and_streams(tmp_path: Path) -> None:
    k = kernel(1, seed=2)
    model = conv_model(tmp_path, outputs=[OutputDef("out", k, halo=1)])
    xs = [rand(64, 64 + 16 * i, seed=i) for i in range(3)]
    consumed: list[int] = []

    def inputs() -> Any:
        for i, x in enumerate(xs):
            consumed.append(i)
            yield x

    results = predict_many(
        model=model,
        inputs=inputs(),
        sample_id=["a", "b", "c"],
        save_output_path=tmp_path / "out" / "{sample_id}.npy",
    )
    first = next(results)  # a generator of inputs is read one sample at a time
    assert first.id == "a" and consumed == [0]
    rest = list(results)
    assert [r.id for r in rest] == ["b", "c"]
    for sid, x in zip("abc", xs, strict=True):
        np.testing.assert_allclose(np.load(tmp_path / "out" / f"{sid}.npy")[0, 0], oracle_conv(x, k), atol=1e-5)
    with pytest.raises(InputError, match="2 sample ids for 3 inputs"):
        list(predict_many(model=model, inputs=xs, sample_id=["a", "b"]))
    one = list(predict_many(model=model, inputs=xs[:1], sample_id=["only"], save_output_path=tmp_path / "o.npy"))
    assert one[0].id == "only" and (tmp_path / "o.npy").exists()


def test_the_cli_predicts_through_predict_many(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    import bioimageio_core.prediction
    from bioimageio_core.cli import main

    (tmp_path / "m").mkdir()
    conv_model(tmp_path / "m", [InputDef("raw")])
    for i in range(2):
        np.save(tmp_path / f"img{i}.npy", rand(64, 64, seed=i))
    seen: list[list[Any]] = []
    real = bioimageio_core.prediction.predict_many

    def spy(**kwargs: Any) -> Any:
        seen.append(list(kwargs["sample_id"]))
        return real(**kwargs)

    monkeypatch.setattr(bioimageio_core.prediction, "predict_many", spy)
    result = CliRunner().invoke(
        main,
        ["predict", str(tmp_path / "m" / "rdf.yaml"), "-i", str(tmp_path / "img*.npy"), "-o", str(tmp_path / "o" / "{sample_id}.npy")],
    )
    assert result.exit_code == 0, result.output
    assert seen == [["0", "1"]]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["0.npy", "1.npy"]
