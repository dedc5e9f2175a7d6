"""Input checking before any compute: ids, axes, sizes, dtype; messages name tensor and axis."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pipeline_models import InputDef, OutputDef, conv_model, kernel

from bioimageio_core.digest import check_input_sizes, digest_inputs, normalize_block_shape
from bioimageio_core.errors import InputError
from bioimageio_core.pipeline import create_prediction_pipeline
from bioimageio_core.sample import Sample
from bioimageio_core.shapes import ModelShape, model_shape
from bioimageio_core.spec import ModelDescr
from bioimageio_core.tensor import Tensor

Array = np.ndarray[Any, Any]


@pytest.fixture
def one_input(tmp_path: Path) -> ModelDescr:
    return conv_model(tmp_path, inputs=[InputDef("raw", channels=2)], outputs=[OutputDef("out", kernel(1))])


@pytest.fixture
def two_inputs(tmp_path: Path) -> ModelDescr:
    return conv_model(
        tmp_path,
        inputs=[InputDef("a"), InputDef("b", optional=True)],
        outputs=[OutputDef("out", kernel(1))],
    )


def test_single_array_gets_model_axes_and_singletons(one_input: ModelDescr) -> None:
    spec = model_shape(one_input)
    x = np.arange(2 * 70 * 90, dtype=np.float32).reshape(2, 70, 90)
    sample = digest_inputs(spec, x, axes="cyx")
    t = sample.members["raw"]
    assert t.dims == ("batch", "channel", "y", "x")
    assert t.shape == (1, 2, 70, 90)
    assert np.shares_memory(t.data, x)
    assert sample.id == "sample"


def test_explicit_axes_transpose(one_input: ModelDescr) -> None:
    spec = model_shape(one_input)
    x = np.random.default_rng(0).normal(size=(90, 70, 2))
    t = digest_inputs(spec, {"raw": x}, axes={"raw": "xyc"}).members["raw"]
    assert t.shape == (1, 2, 70, 90)
    np.testing.assert_array_equal(t.data[0, 1], x[:, :, 1].T)


def test_tensor_and_file_inputs(one_input: ModelDescr, tmp_path: Path) -> None:
    spec = model_shape(one_input)
    x = np.random.default_rng(1).normal(size=(2, 64, 64)).astype(np.float32)
    np.save(tmp_path / "in.npy", x)
    from_file = digest_inputs(spec, tmp_path / "in.npy", axes="cyx").members["raw"]
    from_tensor = digest_inputs(spec, Tensor(x, ("channel", "y", "x"))).members["raw"]
    np.testing.assert_array_equal(from_file.data, from_tensor.data)


def test_sample_keeps_id_and_stat(one_input: ModelDescr) -> None:
    spec = model_shape(one_input)
    x = np.zeros((2, 64, 64), dtype=np.float32)
    s = Sample(members={"raw": Tensor(x, ("channel", "y", "x"))}, stat={"k": 1.0}, id="mine")
    digested = digest_inputs(spec, s)
    assert digested.id == "mine" and digested.stat == {"k": 1.0}
    assert digested is not s and s.members["raw"].dims == ("channel", "y", "x")


def test_unknown_tensor_id(two_inputs: ModelDescr) -> None:
    spec = model_shape(two_inputs)
    with pytest.raises(InputError, match=r"unknown input tensor id\(s\) 'c'; the model's inputs are 'a', 'b'"):
        digest_inputs(spec, {"a": np.zeros((64, 64)), "c": np.zeros((64, 64))}, optional=("b",))


def test_missing_and_optional_inputs(two_inputs: ModelDescr) -> None:
    spec = model_shape(two_inputs)
    with pytest.raises(InputError, match=re.escape("missing input(s) inputs[0] ('a')")):
        digest_inputs(spec, {"b": np.zeros((64, 64))}, optional=("b",))
    sample = digest_inputs(spec, np.zeros((64, 64)), optional=("b",))
    assert set(sample.members) == {"a"}
    with pytest.raises(InputError, match="2 inputs .* but one value was given"):
        digest_inputs(spec, np.zeros((64, 64)))
    assert digest_inputs(spec, np.zeros((64, 65)), axes="xy", optional=("b",)).members["a"].shape[-2:] == (65, 64)
    # one axes value applies to every input
    both = digest_inputs(spec, {"a": np.zeros((64, 65)), "b": np.zeros((64, 65))}, axes="xy")
    assert [m.shape[-2:] for m in both.members.values()] == [(65, 64), (65, 64)]
    with pytest.raises(InputError, match="'axes' names unknown input\\(s\\) 'c'"):
        digest_inputs(spec, {"a": np.zeros((64, 64))}, axes={"c": "yx"}, optional=("b",))


def test_wrong_channel_count_names_tensor(one_input: ModelDescr) -> None:
    spec = model_shape(one_input)
    with pytest.raises(InputError, match=r"inputs\[0\] \('raw'\) .*channel=3 but the model expects 2 channels"):
        digest_inputs(spec, np.zeros((3, 64, 64)), axes="cyx")


def test_non_numeric_dtype(one_input: ModelDescr) -> None:
    spec = model_shape(one_input)
    with pytest.raises(InputError, match=r"inputs\[0\] \('raw'\) has dtype <U1, which is not numeric"):
        digest_inputs(spec, np.full((2, 64, 64), "a"), axes="cyx")


def test_batch_size_mismatch(two_inputs: ModelDescr) -> None:
    spec = model_shape(two_inputs)
    with pytest.raises(InputError, match="batch size mismatch"):
        digest_inputs(
            spec, {"a": np.zeros((2, 1, 64, 64)), "b": np.zeros((3, 1, 64, 64))}, optional=("b",)
        )


def test_strict_size_message_lists_valid_sizes(one_input: ModelDescr) -> None:
    spec = model_shape(one_input)
    valid = {("raw", "batch"): 1, ("raw", "channel"): 2, ("raw", "y"): 496, ("raw", "x"): 64}
    check_input_sizes(spec, valid)
    with pytest.raises(InputError) as info:
        check_input_sizes(spec, {**valid, ("raw", "y"): 500})
    assert str(info.value) == (
        "inputs[0] ('raw') axis 'y': size 500 is not valid, valid sizes are 64 + n*16, e.g. 496 or 512"
    )
    with pytest.raises(InputError, match=r"axis 'channel': size 3 is not valid, valid sizes are 2$"):
        check_input_sizes(spec, {**valid, ("raw", "channel"): 3})


def test_invalid_fixed_block_shape_is_rejected_before_compute(one_input: ModelDescr) -> None:
    x = np.zeros((1, 2, 600, 600), dtype=np.float32)
    with create_prediction_pipeline(one_input) as pp:
        assert pp.adapter is not None
        before = pp.adapter.calls  # type: ignore[attr-defined]
        with pytest.raises(InputError, match=re.escape("inputs[0] ('raw') axis 'x': size 100 is not valid, valid sizes are 64 + n*16, e.g. 96 or 112")):
            pp.predict_sample_with_fixed_blocking(x, {"raw": {"y": 96, "x": 100}})
        with pytest.raises(InputError, match=re.escape("unknown axis 'z' of inputs[0] ('raw')")):
            pp.predict_sample_with_fixed_blocking(x, {"raw": {"z": 96}})
        with pytest.raises(InputError, match=re.escape("axis 'y': size 600 is not valid")):
            pp.predict_sample_block(x)
        assert pp.adapter.calls == before  # type: ignore[attr-defined]


def test_normalize_block_shape_forms(one_input: ModelDescr) -> None:
    spec = model_shape(one_input)
    assert normalize_block_shape(spec, {"raw": {"y": 96, "x": 64}}) == normalize_block_shape(
        spec, {("raw", "y"): 96, ("raw", "x"): 64}
    )
    with pytest.raises(InputError, match="unknown input 'nope'"):
        normalize_block_shape(spec, {"nope": {"y": 96}})


def test_callers_arrays_are_not_modified(tmp_path: Path) -> None:
    model = conv_model(
        tmp_path,
        inputs=[
            InputDef(
                "raw",
                preprocessing=[
                    {"id": "scale_linear", "kwargs": {"gain": 2.0, "offset": 1.0}},
                    {"id": "zero_mean_unit_variance", "kwargs": {"axes": ["y", "x"]}},
                ],
            )
        ],
        outputs=[OutputDef("out", kernel(1), halo=1)],
    )
    x = np.random.default_rng(3).normal(size=(1, 1, 150, 150)).astype(np.float32)
    original = x.copy()
    x.flags.writeable = False  # any write attempt raises
    sample = Sample(members={"raw": Tensor(x, ("batch", "channel", "y", "x"))}, id="s")
    with create_prediction_pipeline(model) as pp:
        pp.predict_sample_without_blocking(sample)
        pp.predict_sample_with_blocking(sample, ns=1)
        assert sample.stat == {} and sample.members["raw"].data is x  # predicting: untouched
        pre = pp.apply_preprocessing(sample)  # the Sample is updated, its arrays are not
    np.testing.assert_array_equal(x, original)
    assert pre is sample and sample.stat
    assert not np.shares_memory(sample.members["raw"].data, x)


@pytest.fixture(scope="module")
def one_input_spec(tmp_path_factory: pytest.TempPathFactory) -> ModelShape:
    folder = tmp_path_factory.mktemp("model")
    model = conv_model(folder, inputs=[InputDef("raw", channels=2)], outputs=[OutputDef("out", kernel(1))])
    return model_shape(model)


@settings(max_examples=30, deadline=None)
@given(
    order=st.permutations(["batch", "channel", "y", "x"]),
    drop_batch=st.booleans(),
    y=st.integers(1, 9),
    x=st.integers(1, 9),
)
def test_any_axis_order_becomes_the_model_order(
    one_input_spec: ModelShape, order: list[str], drop_batch: bool, y: int, x: int
) -> None:
    spec = one_input_spec
    sizes = {"batch": 1, "channel": 2, "y": y, "x": x}
    axes = [a for a in order if not (drop_batch and a == "batch")]
    data = np.random.default_rng(y * 10 + x).normal(size=[sizes[a] for a in axes])
    t = digest_inputs(spec, {"raw": data}, axes={"raw": axes}).members["raw"]
    assert t.dims == ("batch", "channel", "y", "x")
    assert t.shape == (1, 2, y, x)
    assert np.shares_memory(t.data, data)
    for c in range(2):  # an independent read-out: index the original by axis name
        index = tuple({"batch": 0, "channel": c}.get(a, slice(None)) for a in axes)
        expected = data[index]
        remaining = [a for a in axes if a in ("y", "x")]
        if remaining != ["y", "x"]:
            expected = expected.T
        np.testing.assert_array_equal(t.data[0, c], expected)
