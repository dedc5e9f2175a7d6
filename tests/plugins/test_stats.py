"""Statistics against independent numpy formulations; dataset stats equal concatenated stats."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bioimageio_core.stats import (
    DatasetMean,
    DatasetQuantile,
    DatasetStatsCalculator,
    DatasetStd,
    DatasetVar,
    SampleMean,
    SampleQuantile,
    SampleStd,
    SampleVar,
    StatsCalculator,
    compute_sample_measures,
)
from bioimageio_core.tensor import Tensor

DIMS = ("batch", "channel", "y", "x")
finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)


def as_array(value: Any, kept: tuple[str, ...]) -> np.ndarray[Any, Any]:
    if isinstance(value, Tensor):
        assert value.dims == kept
        return value.data
    assert kept == ()
    assert isinstance(value, float)
    return np.asarray(value)


@st.composite
def tensors_and_axes(draw: st.DrawFn) -> tuple[np.ndarray[Any, Any], tuple[str, ...] | None]:
    shape = draw(st.tuples(*(st.integers(1, 4) for _ in DIMS)))
    data = draw(hnp.arrays(np.float32, shape, elements=finite))
    axes = draw(st.none() | st.lists(st.sampled_from(DIMS[1:]), min_size=1, unique=True).map(tuple))
    return data, axes


def np_axes(axes: tuple[str, ...] | None) -> tuple[int, ...]:
    return tuple(range(len(DIMS))) if axes is None else tuple(DIMS.index(a) for a in axes)


@settings(max_examples=40, deadline=None)
@given(tensors_and_axes(), st.floats(0, 1), st.sampled_from(["linear", "inverted_cdf"]))
def test_sample_measures_match_numpy(
    case: tuple[np.ndarray[Any, Any], tuple[str, ...] | None], q: float, method: Any
) -> None:
    data, axes = case
    x = data.astype(np.float64)
    ax = np_axes(axes)
    kept = tuple(d for i, d in enumerate(DIMS) if i not in ax)
    measures = [SampleMean("t", axes), SampleVar("t", axes), SampleStd("t", axes),
                SampleQuantile("t", q, axes, method)]
    values = compute_sample_measures({"t": Tensor(data, DIMS)}, measures)
    np.testing.assert_allclose(as_array(values[measures[0]], kept), x.mean(axis=ax), rtol=1e-10, atol=1e-9)
    expected_var = ((x - x.mean(axis=ax, keepdims=True)) ** 2).mean(axis=ax)
    np.testing.assert_allclose(as_array(values[measures[1]], kept), expected_var, rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(as_array(values[measures[2]], kept), np.sqrt(expected_var), rtol=1e-9, atol=1e-6)
    # quantile: sort the reduced values (independent of np.quantile's axis handling)
    moved = np.moveaxis(x, ax, tuple(range(-len(ax), 0))).reshape(*[x.shape[i] for i in range(4) if i not in ax], -1)
    s = np.sort(moved, axis=-1)
    n = s.shape[-1]
    if method == "linear":
        pos = q * (n - 1)
        lo, hi = int(np.floor(pos)), int(np.ceil(pos))
        expected_q = s[..., lo] + (s[..., hi] - s[..., lo]) * (pos - lo)
    else:
        k = max(int(np.ceil(q * n)) - 1, 0)
        expected_q = s[..., k]
    np.testing.assert_allclose(as_array(values[measures[3]], kept), expected_q, rtol=1e-9, atol=1e-7)


def test_nan_and_inf_handling() -> None:
    data = np.array([[1.0, np.nan, 3.0], [-np.inf, 1.0, 1.0]])
    t = {"t": Tensor(data, ("y", "x"))}
    m, v, q = SampleMean("t", ("x",)), SampleVar("t", ("x",)), SampleQuantile("t", 0.5, ("x",))
    values = compute_sample_measures(t, [m, v, q])
    mean = values[m]
    assert isinstance(mean, Tensor)
    np.testing.assert_array_equal(mean.data, [2.0, -np.inf])  # mean skips NaN
    var = values[v]
    assert isinstance(var, Tensor)
    assert np.isnan(var.data).all()  # NaN / inf make the variance NaN
    qv = values[q]
    assert isinstance(qv, Tensor)
    np.testing.assert_array_equal(qv.data, [2.0, 1.0])  # quantiles skip NaN


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.bool_])
def test_integer_inputs_accumulate_in_float64(dtype: Any) -> None:
    data = (np.arange(24).reshape(2, 3, 4) * 97).astype(dtype)
    m, s = SampleMean("t"), SampleStd("t", ("y", "x"))
    values = compute_sample_measures({"t": Tensor(data, ("channel", "y", "x"))}, [m, s])
    assert values[m] == pytest.approx(data.astype(np.float64).mean(), rel=1e-12)
    std = values[s]
    assert isinstance(std, Tensor) and std.data.dtype == np.float64
    np.testing.assert_allclose(std.data, data.astype(np.float64).std(axis=(1, 2)), rtol=1e-12)


def test_measures_are_hashable_values_and_validated() -> None:
    assert SampleMean("a", ["x", "y"]) == SampleMean("a", ("y", "x"))
    assert len({SampleMean("a", ["x", "y"]), SampleMean("a", ("y", "x"))}) == 1
    assert SampleMean("a") != DatasetMean("a")
    with pytest.raises(ValueError, match="batch"):
        SampleMean("a", ("batch", "x"))
    with pytest.raises(ValueError, match="batch"):
        DatasetMean("a", ("x",))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        SampleQuantile("a", 1.5)
    with pytest.raises(ValueError, match="method"):
        SampleQuantile("a", 0.5, method="nearest")  # type: ignore[arg-type]


@st.composite
def datasets(draw: st.DrawFn) -> tuple[list[np.ndarray[Any, Any]], tuple[str, ...] | None]:
    c, y, x = (draw(st.integers(1, 3)) for _ in range(3))
    n = draw(st.integers(1, 4))
    arrays = [
        draw(hnp.arrays(np.float64, (draw(st.integers(1, 2)), c, y, x), elements=finite))
        for _ in range(n)
    ]
    axes = draw(st.sampled_from([None, ("batch", "y", "x"), ("batch", "channel", "y", "x"), ("batch",)]))
    return arrays, axes


@settings(max_examples=40, deadline=None)
@given(datasets(), st.floats(0, 1))
def test_dataset_statistics_equal_statistics_of_concatenated_data(
    case: tuple[list[np.ndarray[Any, Any]], tuple[str, ...] | None], q: float
) -> None:
    arrays, axes = case
    measures = [DatasetMean("t", axes), DatasetVar("t", axes), DatasetStd("t", axes),
                DatasetQuantile("t", q, axes)]
    calc = DatasetStatsCalculator(measures)
    for a in arrays:
        calc.update({"t": Tensor(a, DIMS)})
    values = calc.values()
    full = np.concatenate(arrays, axis=0)
    ax = np_axes(axes)
    kept = tuple(d for i, d in enumerate(DIMS) if i not in ax)
    np.testing.assert_allclose(as_array(values[measures[0]], kept), full.mean(axis=ax), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(as_array(values[measures[1]], kept), full.var(axis=ax), rtol=1e-7, atol=1e-6)
    np.testing.assert_allclose(as_array(values[measures[2]], kept), full.std(axis=ax), rtol=1e-7, atol=1e-6)
    np.testing.assert_allclose(
        as_array(values[measures[3]], kept), np.quantile(full, q, axis=ax), rtol=1e-9, atol=1e-9
    )


def test_dataset_quantile_approximation_beyond_memory_bound() -> None:
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(1, 10)) * (i + 1) for i in range(4)]
    m = DatasetQuantile("t", 0.9)
    calc = DatasetStatsCalculator([m], max_quantile_values=25)
    with pytest.warns(UserWarning, match="approximate"):
        for a in arrays:
            calc.update({"t": Tensor(a, ("batch", "x"))})
    # the first 20 values fit: they are summarised exactly, then per-sample quantiles are averaged
    exact_part = np.quantile(np.concatenate(arrays[:2], axis=1), 0.9)
    expected = (20 * exact_part + 10 * np.quantile(arrays[2], 0.9) + 10 * np.quantile(arrays[3], 0.9)) / 40
    assert calc.values()[m] == pytest.approx(expected)


def test_stats_calculator_fixed_dataset_values_and_updating() -> None:
    sample = {"t": Tensor(np.array([[1.0, 2.0, 3.0]]), ("batch", "x"))}
    dm, sm = DatasetMean("t"), SampleStd("t", ("x",))
    fixed = StatsCalculator([dm, sm], fixed={dm: 10.0})
    got = fixed.update_and_get_all(sample)
    assert got[dm] == 10.0
    assert isinstance(got[sm], Tensor)
    np.testing.assert_allclose(got[sm].data, [np.std([1.0, 2.0, 3.0])])

    running = StatsCalculator([dm])  # no fixed values: running statistics
    assert running.update_and_get_all(sample)[dm] == pytest.approx(2.0)
    second = {"t": Tensor(np.array([[5.0, 5.0, 5.0]]), ("batch", "x"))}
    assert running.update_and_get_all(second)[dm] == pytest.approx(3.5)
    assert running.skip_update_and_get_all(sample)[dm] == pytest.approx(3.5)

    incomplete = StatsCalculator([dm, DatasetStd("t")], fixed={dm: 10.0})  # ignored: incomplete
    assert incomplete.update_and_get_all(sample)[dm] == pytest.approx(2.0)


def test_all_nan_gives_nan_without_warnings() -> None:
    data = np.full((2, 3), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = compute_sample_measures(
            {"t": Tensor(data, ("y", "x"))}, [SampleMean("t"), SampleQuantile("t", 0.5)]
        )
    assert all(np.isnan(v) for v in values.values())  # type: ignore[arg-type]


def test_dataset_statistics_with_nan_match_concatenated_data() -> None:
    a = np.array([[[1.0, np.nan, 3.0]], [[np.nan, np.nan, np.nan]]])  # (batch, channel, x)
    b = np.array([[[4.0, 5.0, np.nan]]])
    dims = ("batch", "channel", "x")
    mean, var, q = DatasetMean("t"), DatasetVar("t"), DatasetQuantile("t", 0.25)
    calc = DatasetStatsCalculator([mean, var, q])
    calc.update({"t": Tensor(a, dims)})
    calc.update({"t": Tensor(b, dims)})
    values = calc.values()
    full = np.concatenate([a, b])
    assert values[mean] == pytest.approx(np.nanmean(full))
    assert np.isnan(values[var])  # type: ignore[arg-type]  # NaN propagates like the sample path
    assert values[q] == pytest.approx(np.nanquantile(full, 0.25))


INT_AND_FLOAT_DTYPES = [np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(INT_AND_FLOAT_DTYPES).flatmap(
        lambda dtype: hnp.arrays(
            dtype,
            st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)),
            elements=(
                st.floats(-1e6, 1e6, allow_nan=False, width=np.dtype(dtype).itemsize * 8)
                if np.dtype(dtype).kind == "f"
                else None
            ),
        )
    ),
    st.lists(st.floats(0, 1), min_size=1, max_size=4, unique=True),
    st.sampled_from([("y", "x"), ("channel", "y", "x"), ("x",), ("channel",), None]),
    st.sampled_from(["linear", "inverted_cdf"]),
)
def test_quantiles_equal_numpy_of_float64_data_exactly_and_leave_data_untouched(
    data: np.ndarray[Any, Any], qs: list[float], axes: tuple[str, ...] | None, method: Any
) -> None:
    """Quantiles of NaN-free data are partitioned in the data's own dtype (no float64 copy) and
    interpolated in float64: the numbers are exactly numpy's on the float64 data."""
    before = data.copy()
    tensor = Tensor(data, DIMS)
    measures = [SampleQuantile("t", q, axes, method) for q in qs]
    values = compute_sample_measures({"t": tensor}, measures)
    np.testing.assert_array_equal(data, before)  # the caller's array is not reordered
    ax = np_axes(axes)
    kept = tuple(d for i, d in enumerate(DIMS) if i not in ax)
    for m, q in zip(measures, qs, strict=True):
        expected = np.quantile(before.astype(np.float64), q, axis=ax, method=method)
        np.testing.assert_array_equal(as_array(values[m], kept), expected)


def test_chunked_moments_match_float64_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mean and variance accumulate in float64 over chunks of the data (here many small ones)."""
    import bioimageio_core.stats.reductions as stats_module

    monkeypatch.setattr(stats_module, "_CHUNK_VALUES", 7)
    rng = np.random.default_rng(3)
    data = (rng.normal(size=(2, 3, 17, 13)) * 100 + 1e4).astype(np.float32)
    axes = ("y", "x")
    m, v = SampleMean("t", axes), SampleVar("t", axes)
    values = compute_sample_measures({"t": Tensor(data, DIMS)}, [m, v])
    x = data.astype(np.float64)
    np.testing.assert_allclose(as_array(values[m], ("batch", "channel")), x.mean(axis=(2, 3)), rtol=1e-13)
    np.testing.assert_allclose(as_array(values[v], ("batch", "channel")), x.var(axis=(2, 3)), rtol=1e-11)


def test_dataset_quantiles_keep_a_copy_of_each_sample() -> None:
    sample = np.array([[1.0, 2.0, 3.0, 4.0]])
    q = DatasetQuantile("t", 0.5)
    calc = DatasetStatsCalculator([q])
    calc.update({"t": Tensor(sample, ("batch", "x"))})
    sample[...] = 100.0  # the caller reuses its buffer
    assert calc.values()[q] == pytest.approx(2.5)
    assert calc.values()[q] == pytest.approx(2.5)  # asking twice gives the same


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16])
@pytest.mark.parametrize("method", ["linear", "inverted_cdf"])
def test_counted_quantiles_of_small_integers_equal_numpy(dtype: Any, method: Any) -> None:
    """8/16 bit images (the usual camera data) are ordered by counting values: same numbers."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(7)
    n = (2 << (8 * np.dtype(dtype).itemsize)) + 17  # just past the counting threshold
    data = rng.integers(info.min, info.max, size=(2, n), endpoint=True).astype(dtype)
    data[1, :5] = info.min  # extremes present
    data[1, 5:9] = info.max
    qs = [0.0, 0.001, 0.01, 0.5, 0.998, 0.999999, 1.0]
    measures = [SampleQuantile("t", q, ("x",), method) for q in qs]
    values = compute_sample_measures({"t": Tensor(data, ("channel", "x"))}, measures)
    for m, q in zip(measures, qs, strict=True):
        expected = np.quantile(data.astype(np.float64), q, axis=1, method=method)
        np.testing.assert_array_equal(as_array(values[m], ("channel",)), expected)


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from([np.uint8, np.int8, np.uint16, np.int16]).flatmap(
        lambda dtype: hnp.arrays(dtype, st.tuples(st.integers(1, 3), st.integers(1, 40)))
    ),
    st.lists(st.floats(0, 1), min_size=1, max_size=4),
    st.sampled_from(["linear", "inverted_cdf"]),
)
def test_counting_equals_partitioning(data: np.ndarray[Any, Any], qs: list[float], method: Any) -> None:
    import bioimageio_core.stats.reductions as stats_module

    tensor = {"t": Tensor(data, ("channel", "x"))}
    measures = [SampleQuantile("t", q, ("x",), method) for q in qs]
    partitioned = compute_sample_measures(tensor, measures)
    old = stats_module._COUNTING_MIN_FACTOR
    stats_module._COUNTING_MIN_FACTOR = 0  # count even the smallest arrays
    try:
        counted = compute_sample_measures(tensor, measures)
    finally:
        stats_module._COUNTING_MIN_FACTOR = old
    for m in measures:
        np.testing.assert_array_equal(as_array(counted[m], ("channel",)), as_array(partitioned[m], ("channel",)))
