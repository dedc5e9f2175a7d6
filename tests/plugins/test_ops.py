"""Every built-in op against an independent numpy (or pure Python) formulation, run the way
prediction runs it (the pipeline's preprocessing, see op_pipeline.py)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from op_pipeline import preprocess, steps_pipeline

from bioimageio_core.errors import PluginError
from bioimageio_core.hookspecs import OpTarget
from bioimageio_core.ops import BoundOp, build_ops, required_measures
from bioimageio_core.ops.builtin import builtin_op_specs
from bioimageio_core.ops.elementwise import ensure_dtype_array
from bioimageio_core.spec import ProcessingStep, ScaleRangeKwargs, structure
from bioimageio_core.stats import (
    DatasetMean,
    DatasetStd,
    SampleMean,
    SampleQuantile,
    SampleStd,
)
from bioimageio_core.tensor import Tensor

OPS = {s.id: s for s in builtin_op_specs()}
EPS = 1e-6
RNG = np.random.default_rng(42)


def step(op_id: str, **fields: Any) -> ProcessingStep:
    """A processing step parsed from raw YAML-like data, exactly as a description would hold it."""
    raw = {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}
    return structure({"id": op_id, "kwargs": raw}, ProcessingStep)


def run(
    steps: list[ProcessingStep],
    members: dict[str, Tensor],
    member: str = "x",
    *,
    axes_none_scope: Any = "dataset",
) -> np.ndarray[Any, Any]:
    """``steps`` applied to ``member`` as prediction applies them (the pipeline's preprocessing)."""
    with steps_pipeline(members, member, steps, axes_none_scope=axes_none_scope) as pipeline:
        return preprocess(pipeline, members)[member].data


def tensor(shape: tuple[int, ...], dims: tuple[str, ...], dtype: Any = np.float32) -> Tensor:
    return Tensor((RNG.normal(size=shape) * 10 + 3).astype(dtype), dims)


# binarize -------------------------------------------------------------------------------------


def test_binarize_scalar_and_along_axis_uses_the_named_axis() -> None:
    x = tensor((3, 4, 5), ("channel", "y", "x"))
    out = run([step("binarize", threshold=3.0)], {"x": x})
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(out, x.data > 3.0)
    thresholds = [0.0, 3.0, 10.0]
    out = run([step("binarize", threshold=thresholds, axis="channel")], {"x": x})
    expected = np.stack([x.data[c] > thresholds[c] for c in range(3)])
    np.testing.assert_array_equal(out, expected)


def test_along_axis_length_mismatch_is_a_clear_error() -> None:
    x = tensor((3, 4), ("channel", "x"))
    with pytest.raises(ValueError, match="axis 'channel' of the tensor has size 3"):
        run([step("binarize", threshold=[1.0, 2.0], axis="channel")], {"x": x})


# clip -----------------------------------------------------------------------------------------


def test_clip_fixed_and_one_sided() -> None:
    x = tensor((2, 6), ("y", "x"))
    np.testing.assert_array_equal(run([step("clip", min=0.0, max=5.0)], {"x": x}),
                                  np.minimum(np.maximum(x.data, 0.0), 5.0))
    np.testing.assert_array_equal(run([step("clip", min=1.0, max=None)], {"x": x}),
                                  np.maximum(x.data, 1.0))


def test_clip_percentiles_per_sample_inverted_cdf() -> None:
    x = tensor((2, 3, 11), ("batch", "channel", "x"))
    out = run([step("clip", min_percentile=10.0, max_percentile=90.0, axes=["x"])], {"x": x})
    for b in range(2):
        for c in range(3):
            v = np.sort(x.data[b, c].astype(np.float64))
            lo, hi = v[math.ceil(0.1 * 11) - 1], v[math.ceil(0.9 * 11) - 1]
            np.testing.assert_allclose(out[b, c], np.clip(x.data[b, c], lo, hi))


# ensure_dtype -------------------------------------------------------------------------------


def reference_cast(value: float, dtype: Any) -> int:
    info = np.iinfo(dtype)
    if math.isnan(value):
        return 0
    if math.isinf(value):
        return int(info.max) if value > 0 else int(info.min)
    return min(max(round(value), int(info.min)), int(info.max))  # round(): half to even


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(np.float64, st.integers(1, 20),
               elements=st.floats(-1e5, 1e5) | st.sampled_from([0.5, 1.5, 2.5, -0.5, 254.5, 255.5, np.nan, np.inf, -np.inf])),
    st.sampled_from([np.uint8, np.uint16, np.int8, np.int16, np.int32]),
)
def test_ensure_dtype_float_to_int_rounds_half_even_and_clips(data: np.ndarray[Any, Any], dtype: Any) -> None:
    out = ensure_dtype_array(data, dtype)
    assert out.dtype == dtype
    assert out.tolist() == [reference_cast(float(v), dtype) for v in data]


@pytest.mark.parametrize(
    ("source", "target"),
    [(np.int32, np.uint8), (np.uint16, np.int8), (np.int64, np.uint16), (np.uint8, np.int8), (np.int8, np.uint64)],
)
def test_ensure_dtype_int_to_int_clips(source: Any, target: Any) -> None:
    s = np.iinfo(source)
    candidates = [int(s.min), -1, 0, 1, 127, 128, 255, 256, 70000, int(s.max)]
    values = np.array([v for v in candidates if s.min <= v <= s.max], dtype=source)
    out = ensure_dtype_array(values, target)
    t = np.iinfo(target)
    assert out.dtype == target
    assert out.tolist() == [min(max(int(v), int(t.min)), int(t.max)) for v in values]


def test_ensure_dtype_same_dtype_is_no_copy_and_float_bool_casts() -> None:
    data = np.arange(4, dtype=np.float32)
    assert ensure_dtype_array(data, "float32") is data
    np.testing.assert_array_equal(ensure_dtype_array(data, "float64"), data.astype(np.float64))
    np.testing.assert_array_equal(ensure_dtype_array(data, "bool"), [False, True, True, True])
    x = Tensor(np.array([[1.4, 2.6]]), ("y", "x"))
    np.testing.assert_array_equal(run([step("ensure_dtype", dtype="uint8")], {"x": x}), [[1, 3]])


# fixed / linear --------------------------------------------------------------------------------


def test_fixed_zero_mean_unit_variance_scalar_and_along_axis() -> None:
    x = tensor((2, 3, 4), ("batch", "channel", "x"))
    np.testing.assert_allclose(
        run([step("fixed_zero_mean_unit_variance", mean=3.0, std=2.0)], {"x": x}),
        (x.data - 3.0) / (2.0 + EPS), rtol=1e-6,
    )
    mean, std = [1.0, 2.0, 3.0], [0.5, 1.0, 4.0]
    out = run([step("fixed_zero_mean_unit_variance", mean=mean, std=std, axis="channel")], {"x": x})
    for c in range(3):
        np.testing.assert_allclose(out[:, c], (x.data[:, c] - mean[c]) / (std[c] + EPS), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int16])
def test_scale_linear_scalar_and_along_axis(dtype: Any) -> None:
    x = Tensor(np.arange(24).reshape(2, 3, 4).astype(dtype), ("y", "channel", "x"))
    np.testing.assert_allclose(run([step("scale_linear", gain=2.0, offset=-1.0)], {"x": x}),
                               x.data.astype(np.float64) * 2.0 - 1.0)
    gain = [1.0, 0.5, -2.0]
    out = run([step("scale_linear", gain=gain, offset=3.0, axis="channel")], {"x": x})
    for c in range(3):
        np.testing.assert_allclose(out[:, c], x.data[:, c].astype(np.float64) * gain[c] + 3.0)


# sigmoid / softmax --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8, np.int32])
def test_sigmoid(dtype: Any) -> None:
    data = np.array([[-50, -3, 0], [1, 7, 100]]).astype(dtype) if dtype != np.uint8 else np.array([[0, 1, 2], [3, 200, 255]], dtype=dtype)
    out = run([step("sigmoid")], {"x": Tensor(data, ("y", "x"))})
    expected = [[1 / (1 + math.exp(-float(v))) for v in row] for row in data]
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_sigmoid_nan_inf() -> None:
    out = run([step("sigmoid")], {"x": Tensor(np.array([np.nan, np.inf, -np.inf]), ("x",))})
    np.testing.assert_array_equal(out, [np.nan, 1.0, 0.0])


@pytest.mark.parametrize("axis", ["channel", "x"])
def test_softmax_stable_along_axis(axis: str) -> None:
    data = RNG.normal(size=(2, 3, 4)) * 400  # large values: a naive exp would overflow
    x = Tensor(data, ("batch", "channel", "x"))
    out = run([step("softmax", axis=axis)], {"x": x})
    i = x.axis_index(axis)
    expected = np.exp(data - np.logaddexp.reduce(data, axis=i, keepdims=True))  # log-sum-exp form
    np.testing.assert_allclose(out, expected, rtol=1e-10)
    np.testing.assert_allclose(out.sum(axis=x.axis_index(axis)), 1.0)


# zero_mean_unit_variance ----------------------------------------------------------------------


def test_zmuv_per_sample_axes_keep_batch_and_channel() -> None:
    x = tensor((2, 3, 4, 5), ("batch", "channel", "y", "x"))
    out = run([step("zero_mean_unit_variance", axes=["y", "x"], eps=EPS)], {"x": x})
    for b in range(2):
        for c in range(3):
            v = x.data[b, c].astype(np.float64)
            np.testing.assert_allclose(out[b, c], (v - v.mean()) / (v.std() + EPS), rtol=1e-6)


def test_zmuv_axes_none_means_running_dataset_statistics_by_default() -> None:
    first = Tensor(np.array([[1.0, 2.0, 3.0]]), ("batch", "x"))
    second = Tensor(np.array([[10.0, 20.0, 30.0]]), ("batch", "x"))
    steps = [step("zero_mean_unit_variance", axes=None, eps=EPS)]
    ops = build_ops("x", steps, ops=OPS)
    assert required_measures(ops) == {DatasetMean("x"), DatasetStd("x")}
    with steps_pipeline({"x": first}, "x", steps) as pipeline:
        out1 = preprocess(pipeline, {"x": first})
        out2 = preprocess(pipeline, {"x": second})
    np.testing.assert_allclose(out1["x"].data, (first.data - 2.0) / (first.data.std() + EPS))
    both = np.concatenate([first.data, second.data])
    np.testing.assert_allclose(out2["x"].data, (second.data - both.mean()) / (both.std() + EPS))

    # the clearly named switch: per-sample statistics for axes: null
    sample_ops = build_ops("x", steps, ops=OPS, axes_none_scope="sample")
    assert required_measures(sample_ops) == {SampleMean("x"), SampleStd("x")}
    with steps_pipeline({"x": first}, "x", steps, axes_none_scope="sample") as pipeline:
        preprocess(pipeline, {"x": first})
        out2s = preprocess(pipeline, {"x": second})
    np.testing.assert_allclose(out2s["x"].data, (second.data - 20.0) / (second.data.std() + EPS))


def test_zmuv_axes_with_batch_is_dataset_scope_per_channel() -> None:
    x = tensor((3, 2, 5), ("batch", "channel", "x"), np.float64)
    out = run([step("zero_mean_unit_variance", axes=["batch", "x"], eps=1e-3)], {"x": x})
    for c in range(2):
        v = x.data[:, c]
        np.testing.assert_allclose(out[:, c], (v - v.mean()) / (v.std() + 1e-3))


def test_statistics_are_taken_from_the_raw_tensor() -> None:
    x = tensor((1, 10), ("batch", "x"), np.float64)
    out = run([step("scale_linear", gain=2.0, offset=0.0),
               step("zero_mean_unit_variance", axes=["x"], eps=EPS)], {"x": x})
    raw = x.data
    np.testing.assert_allclose(out, (2.0 * raw - raw.mean()) / (raw.std() + EPS))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_zmuv_integer_input(dtype: Any) -> None:
    data = np.array([[0, 1, 2, np.iinfo(dtype).max]], dtype=dtype)
    out = run([step("zero_mean_unit_variance", axes=["x"], eps=EPS)], {"x": Tensor(data, ("batch", "x"))})
    v = data.astype(np.float64)
    np.testing.assert_allclose(out, (v - v.mean()) / (v.std() + EPS))


# scale_range ------------------------------------------------------------------------------------


def linear_percentile(values: np.ndarray[Any, Any], p: float) -> float:
    s = np.sort(values.ravel().astype(np.float64))
    pos = p / 100 * (len(s) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(s) - 1)
    return float(s[lo] + (s[hi] - s[lo]) * (pos - lo))


def test_scale_range_per_sample_with_reference_tensor() -> None:
    x = tensor((2, 3, 7), ("batch", "channel", "x"), np.uint16)
    ref = tensor((2, 3, 7), ("batch", "channel", "x"))
    members = {"x": x, "ref": ref}
    out = run([step("scale_range", axes=["x"], min_percentile=5.0, max_percentile=99.8, eps=EPS,
                    reference_tensor="ref")], members)
    for b in range(2):
        for c in range(3):
            lo = linear_percentile(ref.data[b, c], 5.0)
            hi = linear_percentile(ref.data[b, c], 99.8)
            np.testing.assert_allclose(out[b, c], (x.data[b, c] - lo) / (hi - lo + EPS), rtol=1e-6)


def test_scale_range_dataset_scope_via_batch() -> None:
    x = tensor((4, 2, 6), ("batch", "channel", "x"), np.float64)
    out = run([step("scale_range", axes=["batch", "x"], min_percentile=0.0, max_percentile=100.0,
                    eps=EPS, reference_tensor=None)], {"x": x})
    for c in range(2):
        v = x.data[:, c]
        np.testing.assert_allclose(out[:, c], (v - v.min()) / (v.max() - v.min() + EPS))


def test_scale_range_rejects_inverted_percentiles() -> None:
    inverted = ProcessingStep(id="scale_range", kwargs=ScaleRangeKwargs(min_percentile=90.0, max_percentile=10.0))
    ops = build_ops("x", [inverted], ops=OPS)
    with pytest.raises(ValueError, match="smaller than max_percentile"):
        required_measures(ops)


# scale_mean_variance ---------------------------------------------------------------------------


def test_scale_mean_variance_matches_reference_statistics() -> None:
    x = tensor((2, 3, 8), ("batch", "channel", "x"))
    ref = tensor((2, 3, 8), ("batch", "channel", "x"), np.float64)
    out = run([step("scale_mean_variance", reference_tensor="ref", axes=["x"], eps=EPS)],
              {"x": x, "ref": ref})
    for b in range(2):
        for c in range(3):
            v, r = x.data[b, c].astype(np.float64), ref.data[b, c]
            expected = (v - v.mean()) / (v.std() + EPS) * (r.std() + EPS) + r.mean()
            np.testing.assert_allclose(out[b, c], expected, rtol=1e-6, atol=1e-9)


def test_scale_mean_variance_axes_none_is_sample_scope() -> None:
    ops = build_ops("x", [step("scale_mean_variance", reference_tensor="ref", axes=None, eps=EPS)], ops=OPS)
    assert required_measures(ops) == {SampleMean("x"), SampleStd("x"), SampleMean("ref"), SampleStd("ref")}


# wiring -------------------------------------------------------------------------------------------


def test_unknown_op_is_a_clear_error() -> None:
    with pytest.raises(PluginError, match="no installed plugin provides processing op 'foo'") as err:
        build_ops("x", [ProcessingStep(id="foo", kwargs=None)], ops=OPS, loc=("outputs", 0, "postprocessing"))
    assert "outputs[0].postprocessing[0]" in str(err.value)


LABEL_STEPS = {
    "stardist": step(
        "stardist_postprocessing", prob_threshold=0.5, nms_threshold=0.4, n_rays=2, grid=(1, 1), b=2
    ),
    "cellpose": step(
        "cellpose_flow_dynamics", cellprob_threshold=0.0, flow_threshold=0.4, do_3D=False
    ),
}
INSTALL_HINTS = {"stardist": "pip install stardist", "cellpose": 'pip install "cellpose<4"'}


@pytest.mark.parametrize("package", sorted(LABEL_STEPS))
def test_missing_optional_package_names_what_to_install(
    package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bioimageio_core.ops import _labels

    real = _labels.find_spec
    monkeypatch.setattr(_labels, "find_spec", lambda name: None if name == package else real(name))
    labels_step = LABEL_STEPS[package]
    with pytest.raises(PluginError, match=f"{package} package is not installed") as err:
        build_ops("x", [labels_step], ops=OPS, loc=("outputs", 0, "postprocessing"))
    assert INSTALL_HINTS[package] in str(err.value)
    assert "outputs[0].postprocessing[0]" in str(err.value)
    bound = BoundOp(OPS[labels_step.id], labels_step.kwargs, OpTarget("x"))
    with pytest.raises(PluginError, match=INSTALL_HINTS[package].split()[-1].strip('"')):
        bound({"x": tensor((1, 3, 4, 4), ("batch", "channel", "y", "x"))}, {})


def test_missing_statistic_is_a_clear_error() -> None:
    (op,) = build_ops("x", [step("zero_mean_unit_variance", axes=["x"], eps=EPS)], ops=OPS)
    with pytest.raises(KeyError, match="was not computed"):
        op({"x": tensor((1, 3), ("batch", "x"))}, {})


def test_percentile_clip_requires_inverted_cdf_quantiles() -> None:
    (op,) = build_ops("x", [step("clip", min_percentile=1.0, max_percentile=99.0, axes=["x"])], ops=OPS)
    assert op.required_measures == {
        SampleQuantile("x", 0.01, ("x",), "inverted_cdf"),
        SampleQuantile("x", 0.99, ("x",), "inverted_cdf"),
    }


# property tests over random shapes and axis subsets ---------------------------------------------

AXES = ("batch", "channel", "y", "x")


@st.composite
def sample_and_axes(draw: st.DrawFn) -> tuple[np.ndarray[Any, Any], list[str]]:
    shape = draw(st.tuples(*(st.integers(1, 4) for _ in AXES)))
    data = draw(hnp.arrays(np.float64, shape, elements=st.floats(-1e3, 1e3)))
    axes = draw(st.lists(st.sampled_from(AXES[1:]), min_size=1, unique=True))
    return data, axes


@settings(max_examples=30, deadline=None)
@given(sample_and_axes(), st.floats(0, 40), st.floats(60, 100))
def test_per_sample_normalisations_match_numpy(
    case: tuple[np.ndarray[Any, Any], list[str]], lo_p: float, hi_p: float
) -> None:
    data, axes = case
    ax = tuple(AXES.index(a) for a in axes)
    members = {"x": Tensor(data, AXES)}
    mean, std = data.mean(axis=ax, keepdims=True), data.std(axis=ax, keepdims=True)
    # summation order differs from numpy's: rounding of the statistics (a few ulps of the data)
    # is amplified by 1 / (spread + eps) <= 1 / eps
    atol = 1e-9 + 8 * np.finfo(np.float64).eps * float(np.abs(data).max(initial=0.0)) / 1e-4
    zmuv = run([step("zero_mean_unit_variance", axes=axes, eps=1e-4)], members)
    np.testing.assert_allclose(zmuv, (data - mean) / (std + 1e-4), rtol=1e-9, atol=atol)
    lo = np.percentile(data, lo_p, axis=ax, keepdims=True)
    hi = np.percentile(data, hi_p, axis=ax, keepdims=True)
    sr = run([step("scale_range", axes=axes, min_percentile=lo_p, max_percentile=hi_p, eps=1e-4)], members)
    np.testing.assert_allclose(sr, (data - lo) / (hi - lo + 1e-4), rtol=1e-9, atol=atol)
    clipped = run([step("clip", min_percentile=lo_p, max_percentile=hi_p, axes=axes)], members)
    clo = np.percentile(data, lo_p, axis=ax, keepdims=True, method="inverted_cdf")
    chi = np.percentile(data, hi_p, axis=ax, keepdims=True, method="inverted_cdf")
    np.testing.assert_array_equal(clipped, np.clip(data, clo, chi))
