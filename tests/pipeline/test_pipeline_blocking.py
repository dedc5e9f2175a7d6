"""Blockwise prediction equals whole-image prediction and an independent numpy formulation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pipeline_models import InputDef, OutputDef, conv_model, kernel, oracle_conv

from bioimageio_core.blocks import count_blocks
from bioimageio_core.errors import InputError
from bioimageio_core.pipeline import PredictionPipeline, create_prediction_pipeline
from bioimageio_core.sample import Sample
from bioimageio_core.shapes import block_halos, block_shape, model_shape
from bioimageio_core.tensor import Tensor

Array = np.ndarray[Any, Any]


def rand(*shape: int, seed: int = 0) -> Array:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


class CountingPipeline:
    """Counts forward calls and the batch sizes they received."""

    def __init__(self, pipeline: PredictionPipeline) -> None:
        self.calls: list[dict[str, tuple[int, ...]]] = []
        adapter = pipeline.adapter
        assert adapter is not None
        forward = adapter.forward

        def counting(inputs: Any) -> Any:
            self.calls.append({k: v.shape for k, v in inputs.items()})
            return forward(inputs)

        adapter.forward = counting  # type: ignore[method-assign]


def test_2048_blockwise_equals_whole_and_batch_4_equals_batch_1(tmp_path: Path) -> None:
    k = kernel(2)
    model = conv_model(tmp_path, outputs=[OutputDef("out", k, halo=4)])
    x = rand(1, 1, 2048, 2048)
    original = x.copy()
    with create_prediction_pipeline(model) as pp:
        calls = CountingPipeline(pp)
        whole = pp.predict_sample_without_blocking({"raw": x}).members["out"].data
        assert len(calls.calls) == 1 and calls.calls[0]["raw"] == (1, 1, 2048, 2048)
        calls.calls.clear()
        b1 = pp.predict_sample_with_blocking({"raw": x}, ns=6).members["out"].data
        n1 = len(calls.calls)
        calls.calls.clear()
        b4 = pp.predict_sample_with_blocking({"raw": x}, ns=6, batch_size=4).members["out"].data
        n4 = len(calls.calls)
        shapes = {c["raw"] for c in calls.calls}
    # block 64 + 6*16 = 160 with halo 4 → inner 152 → 14 blocks per axis
    assert n1 == 14 * 14
    assert n4 == -(-n1 // 4)
    assert shapes == {(4, 1, 160, 160)}, shapes  # the short last batch is filled up: one shape
    assert whole.shape == b1.shape == (1, 1, 2048, 2048)
    np.testing.assert_allclose(b1, whole, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(b4, b1)
    np.testing.assert_allclose(whole, oracle_conv(x, k), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(x, original)


@pytest.mark.parametrize("downscale", [2, 4])
def test_outputs_scaled_relative_to_inputs(tmp_path: Path, downscale: int) -> None:
    k = kernel(2, seed=3)
    model = conv_model(
        tmp_path,
        inputs=[InputDef("raw", y={"min": 64, "step": 32}, x={"min": 64, "step": 32})],
        outputs=[OutputDef("small", k, downscale=downscale, halo=8 // downscale)],
    )
    x = rand(1, 1, 512, 384, seed=1)
    with create_prediction_pipeline(model) as pp:
        whole = pp.predict_sample_without_blocking({"raw": x}).members["small"].data
        blocked = pp.predict_sample_with_blocking({"raw": x}, ns=2, batch_size=3)
    out = blocked.members["small"]
    assert out.sizes == {"batch": 1, "channel": 1, "y": 512 // downscale, "x": 384 // downscale}
    np.testing.assert_allclose(out.data, whole, atol=1e-5, rtol=0)
    np.testing.assert_allclose(whole, oracle_conv(x, k, downscale), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("shape", "ns"),
    [((500, 300), None), ((500, 300), 2), ((40, 50), None), ((40, 50), 4), ((17, 200), 1)],
)
def test_non_valid_sizes_are_padded_and_cropped(
    tmp_path: Path, shape: tuple[int, int], ns: int | None
) -> None:
    k = kernel(1, seed=5)
    model = conv_model(tmp_path, outputs=[OutputDef("out", k, halo=2)])
    x = rand(*shape, seed=2)  # 2D: batch and channel are added
    with create_prediction_pipeline(model) as pp:
        calls = CountingPipeline(pp)
        if ns is None:
            result = pp.predict_sample_without_blocking(x)
        else:
            result = pp.predict_sample_with_blocking(x, ns=ns)
    out = result.members["out"]
    assert out.sizes == {"batch": 1, "channel": 1, "y": shape[0], "x": shape[1]}
    for call in calls.calls:  # the model only ever sees valid sizes
        y, x_ = call["raw"][2:]
        assert y >= 64 and (y - 64) % 16 == 0 and x_ >= 64 and (x_ - 64) % 16 == 0
    # each padded side is >= the kernel radius, so reflect padding equals the model's own border
    np.testing.assert_allclose(out.data[0, 0], oracle_conv(x, k), atol=1e-5, rtol=0)


def test_multi_input_multi_output(tmp_path: Path) -> None:
    k0, k1, k2 = kernel(1, seed=7), kernel(2, seed=8), kernel(3, seed=9)
    inputs = [
        InputDef("a", channels=2),
        InputDef("b", y={"min": 64, "step": 32}, x={"min": 64, "step": 32}),
    ]
    outputs = [
        OutputDef("a_out", k0, input_index=0, bias=0.5),
        OutputDef("b_small", k1, input_index=1, downscale=2, halo=2),
        OutputDef("b_out", k2, input_index=1, halo=4),
    ]
    model = conv_model(tmp_path, inputs, outputs)
    a = rand(1, 2, 300, 280, seed=10)
    b = rand(1, 1, 300, 280, seed=11)
    with create_prediction_pipeline(model) as pp:
        whole = pp.predict_sample_without_blocking({"a": a, "b": b})
        blocked = pp.predict_sample_with_blocking(
            {"a": a, "b": b}, ns={("a", "y"): 4, ("a", "x"): 4, ("b", "y"): 2, ("b", "x"): 2}
        )
    expected = {
        "a_out": oracle_conv(a, k0, bias=0.5),
        "b_small": oracle_conv(b, k1, 2),
        "b_out": oracle_conv(b, k2),
    }
    assert set(blocked.members) == set(expected)
    for oid, exp in expected.items():
        assert blocked.members[oid].shape == exp.shape, oid
        np.testing.assert_allclose(blocked.members[oid].data, exp, atol=1e-5, rtol=0, err_msg=oid)
        np.testing.assert_allclose(whole.members[oid].data, exp, atol=1e-5, rtol=0, err_msg=oid)


@pytest.mark.parametrize(
    ("shape", "n_calls"),
    [((3, 300, 200), 3 * 3 * 2), ((1, 100, 60), 1), ((2, 128, 128), 2)],
)
def test_fixed_size_model_tiles_larger_and_pads_smaller_inputs(
    tmp_path: Path, shape: tuple[int, int, int], n_calls: int
) -> None:
    k = kernel(2, seed=12)
    model = conv_model(
        tmp_path,
        inputs=[InputDef("raw", y=128, x=128, batch=1)],
        outputs=[OutputDef("out", k, halo=8)],
    )
    x = rand(shape[0], 1, *shape[1:], seed=13)
    with create_prediction_pipeline(model, batch_size=4) as pp:
        calls = CountingPipeline(pp)
        out = pp.predict_sample_without_blocking(x).members["out"]
    # the fixed batch size 1 forbids batching; inner 112: ceil(300/112) x ceil(200/112) blocks
    assert {c["raw"] for c in calls.calls} == {(1, 1, 128, 128)}
    assert len(calls.calls) == n_calls
    np.testing.assert_allclose(out.data, oracle_conv(x, k), atol=1e-5, rtol=0)


def test_fixed_blocking_and_batch_of_samples(tmp_path: Path) -> None:
    k = kernel(1, seed=14)
    model = conv_model(tmp_path, outputs=[OutputDef("out", k, halo=1)])
    x = rand(3, 1, 150, 130, seed=15)
    with create_prediction_pipeline(model, batch_size=5) as pp:
        calls = CountingPipeline(pp)
        out = pp.predict_sample_with_fixed_blocking({"raw": x}, {"raw": {"y": 96, "x": 80}})
    # 3 x 2 x 2 = 12 blocks (batch split in blocks of 1; inner 94 x 78); the last batch of 2 is
    # filled up to 5 so that the model sees one shape only
    assert [c["raw"][0] for c in calls.calls] == [5, 5, 5]
    assert {c["raw"][2:] for c in calls.calls} == {(96, 80)}
    np.testing.assert_allclose(out.members["out"].data, oracle_conv(x, k), atol=1e-5, rtol=0)


def test_outputs_are_written_into_given_arrays(tmp_path: Path) -> None:
    k = kernel(1, seed=16)
    model = conv_model(tmp_path, outputs=[OutputDef("out", k, halo=1)])
    x = rand(1, 1, 200, 100, seed=17)
    target = np.lib.format.open_memmap(
        tmp_path / "out.npy", mode="w+", dtype=np.float32, shape=(1, 1, 200, 100)
    )
    with create_prediction_pipeline(model) as pp:
        result = pp.predict_sample_with_blocking(x, ns=1, outputs={"out": target})
    assert result.members["out"].data is target
    target.flush()
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), oracle_conv(x, k), atol=1e-5, rtol=0)


def test_progress_is_reported_per_forward_call(tmp_path: Path) -> None:
    model = conv_model(tmp_path, outputs=[OutputDef("out", kernel(1), halo=1)])
    x = rand(1, 1, 200, 200)
    seen: list[tuple[int, int]] = []
    with create_prediction_pipeline(model, batch_size=3) as pp:
        pp.predict_sample_with_blocking(x, ns=0, on_progress=lambda d, t: seen.append((d, t)))
    spec = model_shape(model)
    bs = block_shape(spec, {("raw", "batch"): 1, ("raw", "channel"): 1, ("raw", "y"): 200, ("raw", "x"): 200}, 0, 1)
    total = count_blocks({"raw": {"batch": 1, "channel": 1, "y": 200, "x": 200}}, bs, block_halos(spec))
    assert total == 16  # 64 - 2 = 62 inner: 4 x 4
    assert seen == [(3 * (i + 1), total) for i in range(5)] + [(total, total)]


def test_pipeline_accepts_samples_and_keeps_ids(tmp_path: Path) -> None:
    model = conv_model(tmp_path, outputs=[OutputDef("out", kernel(1), halo=1)])
    x = rand(64, 64)
    sample = Sample(members={"raw": Tensor(x, ("y", "x"))}, id="s1")
    with create_prediction_pipeline(model) as pp:
        out = pp.predict_sample_with_blocking(sample)
    assert out.id == "s1"
    assert out.members["out"].dims == ("batch", "channel", "y", "x")
    assert sample.members["raw"].dims == ("y", "x")


def test_blocks_prepared_in_the_background_give_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bioimageio_core.prefetch as prefetch_module

    k = kernel(1, seed=22)
    post: list[dict[str, Any]] = [{"id": "sigmoid"}]
    model = conv_model(tmp_path, outputs=[OutputDef("out", k, halo=1, postprocessing=post)])
    x = rand(1, 1, 300, 260, seed=23)
    results = {}
    for min_seconds in (0.0, float("inf")):  # always in the background / never
        monkeypatch.setattr(prefetch_module, "PREFETCH_MIN_SECONDS", min_seconds)
        with create_prediction_pipeline(model, batch_size=2) as pp:
            results[min_seconds] = pp.predict_sample_with_blocking(x, ns=0).members["out"].data
    np.testing.assert_array_equal(results[0.0], results[float("inf")])
    expected = 1 / (1 + np.exp(-oracle_conv(x, k)))
    np.testing.assert_allclose(results[0.0], expected, atol=1e-6, rtol=0)


def test_a_model_that_rejects_batches_falls_back_to_one_block_per_call(tmp_path: Path) -> None:
    k = kernel(1, seed=18)
    model = conv_model(tmp_path, outputs=[OutputDef("out", k, halo=1)])
    x = rand(1, 1, 200, 200, seed=19)
    with create_prediction_pipeline(model, batch_size=4) as pp:
        assert pp.adapter is not None
        forward = pp.adapter.forward
        seen: list[int] = []

        def batch_of_one_only(inputs: Any) -> Any:
            seen.append(inputs["raw"].shape[0])
            if inputs["raw"].shape[0] != 1:
                raise ValueError("this graph was exported with batch size 1")
            return forward(inputs)

        pp.adapter.forward = batch_of_one_only  # type: ignore[method-assign]
        with pytest.warns(UserWarning, match="failed on a batch of 4 blocks"):
            out = pp.predict_sample_with_blocking(x, ns=1).members["out"].data
    # 96 - 2 = 94 inner → 3 x 3 = 9 blocks: one failed batch of 4, then single (real) blocks only
    assert seen == [4] + [1] * 9
    np.testing.assert_allclose(out, oracle_conv(x, k), atol=1e-5, rtol=0)


def test_pointwise_postprocessing_runs_per_block(tmp_path: Path) -> None:
    k = kernel(1, seed=20)
    post: list[dict[str, Any]] = [{"id": "sigmoid"}, {"id": "binarize", "kwargs": {"threshold": 0.5}}]
    model = conv_model(tmp_path, outputs=[OutputDef("out", k, halo=1, bias=-0.1, postprocessing=post)])
    x = rand(1, 1, 200, 150, seed=21)
    target = np.zeros((1, 1, 200, 150), dtype=bool)
    with create_prediction_pipeline(model) as pp:
        assert pp.postprocessing_is_pointwise()
        created: list[tuple[str, tuple[int, ...], Any]] = []

        def factory(oid: str, shape: tuple[int, ...], dtype: Any) -> Array:
            created.append((oid, shape, dtype))
            return np.zeros(shape, dtype=dtype)

        by_factory = pp.predict_sample_with_blocking(x, ns=1, outputs=factory)
        into_target = pp.predict_sample_with_blocking(x, ns=1, outputs={"out": target})
        whole = pp.predict_sample_without_blocking(x)
    # the dtype after postprocessing is known from the first block: binarize gives bool
    assert created == [("out", (1, 1, 200, 150), np.dtype(bool))]
    expected = oracle_conv(x, k, bias=-0.1) > 0.0
    np.testing.assert_array_equal(by_factory.members["out"].data, expected)
    assert into_target.members["out"].data is target
    np.testing.assert_array_equal(target, expected)
    np.testing.assert_array_equal(whole.members["out"].data, expected)


def test_postprocessing_with_statistics_is_not_pointwise(tmp_path: Path) -> None:
    post = [{"id": "zero_mean_unit_variance", "kwargs": {"axes": ["y", "x"]}}]
    model = conv_model(tmp_path, outputs=[OutputDef("out", kernel(1), postprocessing=post)])
    with create_prediction_pipeline(model) as pp:
        assert not pp.postprocessing_is_pointwise()
    softmax_y = [{"id": "softmax", "kwargs": {"axis": "y"}}]
    model = conv_model(tmp_path, outputs=[OutputDef("out", kernel(1), postprocessing=softmax_y)])
    with create_prediction_pipeline(model) as pp:
        assert not pp.postprocessing_is_pointwise()  # y is split into blocks


@pytest.mark.parametrize("pointwise", [True, False])
def test_an_op_spec_says_whether_its_step_runs_per_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pointwise: bool
) -> None:
    """No op has a privilege: a plugin's op (``toy_add`` of the toy test distribution) runs on
    each output block exactly when its ``OpSpec.pointwise`` says so and it needs no statistics."""
    import attrs

    from bioimageio_core import plugins

    if "toy_add" not in plugins.processing_ops():
        pytest.skip("the toy test distribution is not installed")
    registry = plugins.get_registry()
    spec = registry.ops.specs["toy_add"]
    calls: list[tuple[int, ...]] = []

    def counting(kwargs: Any, target: Any, members: Any, stat: Any) -> Any:
        calls.append(members[target.member_id].data.shape)
        return spec.apply(kwargs, target, members, stat)

    monkeypatch.setitem(
        registry.ops.specs, "toy_add", attrs.evolve(spec, apply=counting, pointwise=pointwise)
    )
    k = kernel(1, seed=30)
    post: list[dict[str, Any]] = [{"id": "toy_add", "kwargs": {"value": 0.5}}]
    model = conv_model(tmp_path, outputs=[OutputDef("out", k, halo=1, postprocessing=post)])
    x = rand(1, 1, 160, 128, seed=31)
    with create_prediction_pipeline(model) as pp:
        assert pp.postprocessing_is_pointwise() is pointwise
        out = pp.predict_sample_with_blocking(x, ns=1).members["out"].data
    np.testing.assert_allclose(out, oracle_conv(x, k) + 0.5, atol=1e-5)
    if pointwise:  # once per block, on the block's inner region
        assert len(calls) > 1 and all(shape[-2:] != (160, 128) for shape in calls)
    else:  # once, on the whole stitched output
        assert calls == [(1, 1, 160, 128)]
    centered = [{"id": "toy_add", "kwargs": {"value": 0.5, "center": True}}]
    model = conv_model(tmp_path, outputs=[OutputDef("out", k, halo=1, postprocessing=centered)])
    with create_prediction_pipeline(model) as pp:
        assert not pp.postprocessing_is_pointwise()  # statistics need the whole output


def test_missing_optional_input(tmp_path: Path) -> None:
    k = kernel(1, seed=22)
    model = conv_model(
        tmp_path,
        inputs=[InputDef("a"), InputDef("extra", optional=True)],
        outputs=[OutputDef("out", k, input_index=0, halo=1)],
    )
    a = rand(1, 1, 150, 120, seed=23)
    with create_prediction_pipeline(model, batch_size=2) as pp:
        results = [
            pp.predict_sample_without_blocking({"a": a}),
            pp.predict_sample_with_blocking({"a": a}, ns=1),
            pp.predict_sample_with_fixed_blocking({"a": a}, {"a": {"y": 80, "x": 96}}),
            pp.predict_sample_block({"a": rand(1, 1, 64, 80, seed=24)}),
        ]
        with pytest.raises(InputError, match="lacks"):
            pp.predict_sample_with_fixed_blocking({"a": a}, {"extra": {"y": 80}})
    for r in results[:3]:
        np.testing.assert_allclose(r.members["out"].data, oracle_conv(a, k), atol=1e-5, rtol=0)
    assert results[3].members["out"].shape == (1, 1, 64, 80)


def test_fewer_blocks_than_the_batch_size_are_not_filled_up(tmp_path: Path) -> None:
    k = kernel(1, seed=25)
    model = conv_model(tmp_path, outputs=[OutputDef("out", k, halo=1)])
    x = rand(1, 1, 120, 60, seed=26)  # blocks of 64 (inner 62): 2 x 1
    with create_prediction_pipeline(model, batch_size=8) as pp:
        calls = CountingPipeline(pp)
        out = pp.predict_sample_with_blocking(x, ns=0).members["out"].data
    assert [c["raw"] for c in calls.calls] == [(2, 1, 64, 64)]
    np.testing.assert_allclose(out, oracle_conv(x, k), atol=1e-5, rtol=0)


def test_border_blocks_inside_the_sample_match_a_zero_padding_model(tmp_path: Path) -> None:
    """Most CNNs zero-pad at their input's border: only blocks that lie inside the sample see that
    border where the whole-sample prediction sees it."""
    k = kernel(2, seed=27)
    model = conv_model(tmp_path, outputs=[OutputDef("out", k, halo=2, zeros=True)])
    x = rand(1, 1, 400, 336, seed=28) + 3.0  # valid sizes: the whole run is not padded
    expected = oracle_conv(x, k, zeros=True)
    with create_prediction_pipeline(model, batch_size=3) as pp:
        whole = pp.predict_sample_without_blocking(x).members["out"].data
        inside = pp.predict_sample_with_blocking(x, ns=2).members["out"].data
    with create_prediction_pipeline(model, border="pad") as pp:
        padded = pp.predict_sample_with_blocking(x, ns=2).members["out"].data
    np.testing.assert_allclose(whole, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(inside, whole, atol=1e-5, rtol=0)
    # reflect-padded border blocks (the reference's tiles) differ along the sample border only
    diff = np.abs(padded - whole)[0, 0]
    assert diff[:2].max() > 0.1 and diff[:, -2:].max() > 0.1
    assert diff[2:-2, 2:-2].max() < 1e-5
