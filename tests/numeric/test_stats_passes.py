"""Statistics of data seen chunk by chunk (StatsAccumulator): exactly numpy's numbers on the whole.

Quantiles must equal ``numpy.quantile`` of the concatenated float64 data bit for bit, whatever
the chunking, the order of the chunks, the memory bound and the dtype; mean and variance agree
with numpy to float64 rounding.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bioimageio_core import stats
from bioimageio_core.tensor import Tensor

Array = np.ndarray[Any, Any]
DIMS = ("batch", "channel", "y", "x")
DTYPES = [
    np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64,
    np.float16, np.float32, np.float64,
]  # fmt: skip


def as_array(value: stats.MeasureValue) -> Array:
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def run(
    measures: Sequence[stats.Measure], chunks: Sequence[dict[str, Tensor]], max_kept: int
) -> tuple[dict[stats.Measure, stats.MeasureValue], int]:
    acc = stats.StatsAccumulator(measures, max_kept_values=max_kept)
    while acc.needs_pass:
        for chunk in chunks:
            acc.update(chunk)
        acc.end_pass()
    return acc.values(), acc.passes


def elements(dtype: Any) -> st.SearchStrategy[Any] | None:
    if np.dtype(dtype).kind != "f":
        return None  # the whole integer range
    width = np.dtype(dtype).itemsize * 8
    finite = st.floats(allow_nan=False, allow_infinity=False, width=width)
    # many ties and a few extremes: the hard cases for selecting order statistics
    return st.one_of(
        finite,
        st.sampled_from([0.0, -0.0, 1.0, -1.0]),
        st.just(np.inf),
        st.just(-np.inf),
        st.just(np.nan),
    )


@st.composite
def datasets(draw: st.DrawFn) -> tuple[list[Array], tuple[str, ...] | None]:
    dtype = draw(st.sampled_from(DTYPES))
    channels = draw(st.integers(1, 3))
    arrays = [
        draw(
            hnp.arrays(
                dtype,
                (
                    draw(st.integers(1, 2)),
                    channels,
                    draw(st.integers(1, 5)),
                    draw(st.integers(1, 7)),
                ),
                elements=elements(dtype),
            )
        )
        for _ in range(draw(st.integers(1, 4)))
    ]
    axes = draw(st.sampled_from([None, ("batch", "y", "x"), ("batch", "channel", "y", "x")]))
    return arrays, axes


def pooled(arrays: Sequence[Array], axes: tuple[str, ...] | None) -> Array:
    """The float64 values of every array, one row per kept channel (or one row)."""
    if axes is None:
        return np.concatenate([a.astype(np.float64).ravel() for a in arrays])[None]
    assert "channel" not in axes
    rows = [np.moveaxis(a.astype(np.float64), 1, 0).reshape(a.shape[1], -1) for a in arrays]
    return np.concatenate(rows, axis=1)


@settings(max_examples=150, deadline=None)
@given(
    datasets(),
    st.lists(st.floats(0, 1), min_size=1, max_size=4),
    st.sampled_from([0, 7, 1 << 20]),
    st.randoms(use_true_random=False),
)
def test_dataset_quantiles_equal_numpy_on_the_whole_exactly(
    case: tuple[list[Array], tuple[str, ...] | None], qs: list[float], max_kept: int, rnd: Any
) -> None:
    arrays, axes = case
    measures = [stats.DatasetQuantile("t", q, axes) for q in qs]
    order = list(range(len(arrays)))
    rnd.shuffle(order)
    chunks = [{"t": Tensor(arrays[i], DIMS)} for i in order]
    values, _ = run(measures, chunks, max_kept)
    axes_all = axes is None or "channel" in axes
    full = pooled(arrays, None if axes_all else axes)
    for m, q in zip(measures, qs, strict=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: NaN, as ours
            expected = np.nanquantile(full, q, axis=1)
        np.testing.assert_array_equal(as_array(values[m]), expected[0] if axes_all else expected)


@settings(max_examples=80, deadline=None)
@given(datasets(), st.randoms(use_true_random=False))
def test_dataset_moments_equal_numpy_and_ignore_the_order(
    case: tuple[list[Array], tuple[str, ...] | None], rnd: Any
) -> None:
    arrays, axes = case
    arrays = [np.nan_to_num(a.astype(np.float64), posinf=7.0, neginf=-7.0) for a in arrays]
    arrays = [np.clip(a, -1e6, 1e6) for a in arrays]
    measures = [
        stats.DatasetMean("t", axes),
        stats.DatasetVar("t", axes),
        stats.DatasetStd("t", axes),
    ]
    forward, _ = run(measures, [{"t": Tensor(a, DIMS)} for a in arrays], 0)
    shuffled = list(arrays)
    rnd.shuffle(shuffled)
    backward, _ = run(measures, [{"t": Tensor(a, DIMS)} for a in shuffled], 0)
    axes_all = axes is None or "channel" in axes
    full = pooled(arrays, None if axes_all else axes)
    expected = [full.mean(axis=1), full.var(axis=1), full.std(axis=1)]
    for m, e in zip(measures, expected, strict=True):
        e = e[0] if axes_all else e
        np.testing.assert_allclose(as_array(forward[m]), e, rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose(
            as_array(backward[m]), as_array(forward[m]), rtol=1e-12, atol=1e-9
        )


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(DTYPES).flatmap(
        lambda dtype: hnp.arrays(dtype, (2, 3, 11, 9), elements=elements(dtype))
    ),
    st.lists(st.floats(0, 1), min_size=1, max_size=3),
    st.sampled_from(["linear", "inverted_cdf"]),
    st.integers(1, 11),
    st.sampled_from([0, 1 << 20]),
)
def test_sample_measures_chunk_by_chunk_equal_the_whole_sample(
    data: Array, qs: list[float], method: Any, rows_per_chunk: int, max_kept: int
) -> None:
    """A sample split along an axis the measures reduce: the chunked numbers are the in-memory
    ones (quantiles exactly; moments, of values of moderate size, to float64 rounding)."""
    axes = ("y", "x")
    moderate = np.clip(data.astype(np.float64), -1e6, 1e6)  # NaN stays NaN
    measures: list[stats.Measure] = [stats.SampleQuantile("t", q, axes, method) for q in qs]
    measures += [stats.SampleMean("m", axes), stats.SampleVar("m", axes)]
    members = {"t": Tensor(data, DIMS), "m": Tensor(moderate, DIMS)}
    chunks = [
        {k: Tensor(v.data[:, :, y : y + rows_per_chunk], DIMS) for k, v in members.items()}
        for y in range(0, data.shape[2], rows_per_chunk)
    ]
    chunked, _ = run(measures, chunks, max_kept)
    whole = stats.compute_sample_measures(members, measures)  # type: ignore[arg-type]
    for m in measures:
        if isinstance(m, stats.SampleQuantile):
            np.testing.assert_array_equal(as_array(chunked[m]), as_array(whole[m]))  # type: ignore[index]
        else:
            np.testing.assert_allclose(
                as_array(chunked[m]),
                as_array(whole[m]),
                rtol=1e-9,
                atol=1e-3,  # type: ignore[index]
            )


@pytest.mark.parametrize(
    ("dtype", "max_kept", "passes"),
    [
        (np.uint8, 0, 1),  # values counted: resolved by one histogram
        (np.int16, 0, 1),
        (np.float32, 1 << 20, 1),  # small enough to keep: one pass
        (np.float32, 1000, 2),  # histogram of the leading bits, then selection inside the bins
        (np.float64, 1000, 2),
        (np.int32, 0, 2),  # nothing kept: the next 16 bits histogrammed resolve int32 exactly
    ],
)
def test_number_of_passes(dtype: Any, max_kept: int, passes: int) -> None:
    rng = np.random.default_rng(1)
    arrays = [(rng.normal(size=(1, 1, 40, 50)) * 300).astype(dtype) for _ in range(3)]
    measures = [stats.DatasetQuantile("t", q) for q in (0.01, 0.5, 0.998)]
    values, used = run(measures, [{"t": Tensor(a, DIMS)} for a in arrays], max_kept)
    assert used == passes
    full = np.concatenate(arrays).astype(np.float64)
    for m in measures:
        assert values[m] == np.quantile(full, m.q)


def test_spawned_parts_merge_to_the_sequential_result() -> None:
    """Work split among workers: each pass, parts see some chunks; merged, they equal one."""
    rng = np.random.default_rng(2)
    arrays = [(rng.normal(size=(1, 2, 16, 16)) * 10).astype(np.float32) for _ in range(6)]
    axes = ("batch", "y", "x")
    measures: list[stats.Measure] = [stats.DatasetQuantile("t", q, axes) for q in (0.1, 0.9)]
    measures += [stats.DatasetMean("t", axes), stats.DatasetStd("t", axes)]
    sequential, passes = run(measures, [{"t": Tensor(a, DIMS)} for a in arrays], 0)
    acc = stats.StatsAccumulator(measures, max_kept_values=0)
    while acc.needs_pass:
        parts = [acc.spawn() for _ in range(3)]
        for i, a in enumerate(arrays):
            parts[i % 3].update({"t": Tensor(a, DIMS)})
        for part in parts:
            acc.merge(part)
        acc.end_pass()
    assert acc.passes == passes == 2
    merged = acc.values()
    for m in measures:
        if isinstance(m, stats.DatasetQuantile):
            np.testing.assert_array_equal(as_array(merged[m]), as_array(sequential[m]))
        else:
            np.testing.assert_allclose(as_array(merged[m]), as_array(sequential[m]), rtol=1e-12)


def test_mixed_dtypes_become_float64() -> None:
    a = np.array([[[[3, 200, 7]]]], dtype=np.uint8)
    b = np.array([[[[-1.5, 2.25, np.nan]]]], dtype=np.float32)
    measures = [stats.DatasetQuantile("t", q) for q in (0.0, 0.3, 0.5, 1.0)]
    full = np.concatenate([a.astype(np.float64), b.astype(np.float64)])
    for max_kept, expected_passes in ((0, 5), (100, 2)):
        values, passes = run(measures, [{"t": Tensor(a, DIMS)}, {"t": Tensor(b, DIMS)}], max_kept)
        for m in measures:
            assert values[m] == np.nanquantile(full, m.q)
        # the first pass is repeated once with float64 values (without keeping values, each
        # further pass resolves 16 of their 64 bits)
        assert passes == expected_passes


def test_data_that_changes_between_passes_is_an_error() -> None:
    rng = np.random.default_rng(3)
    data = [rng.normal(size=(1, 1, 20, 20)).astype(np.float32) for _ in range(2)]
    acc = stats.StatsAccumulator([stats.DatasetQuantile("t", 0.5)], max_kept_values=0)
    for a in data:
        acc.update({"t": Tensor(a, DIMS)})
    acc.end_pass()
    assert acc.needs_pass
    acc.update({"t": Tensor(data[0], DIMS)})  # one sample missing in the second pass
    with pytest.raises(ValueError, match="changed between passes"):
        acc.end_pass()


def test_a_chunk_must_hold_the_kept_axes_whole() -> None:
    acc = stats.StatsAccumulator([stats.DatasetMean("t", ("batch", "y", "x"))])
    acc.update({"t": Tensor(np.zeros((1, 3, 4, 4)), DIMS)})
    with pytest.raises(ValueError, match=r"keep axes \{'channel': 3\}.*\{'channel': 2\}"):
        acc.update({"t": Tensor(np.zeros((1, 2, 4, 4)), DIMS)})


def test_compute_dataset_measures_reads_a_dataset_once_per_pass() -> None:
    rng = np.random.default_rng(4)
    arrays = [rng.normal(size=(1, 1, 30, 30)).astype(np.float32) for _ in range(3)]
    measures = [stats.DatasetQuantile("raw", 0.99), stats.DatasetMean("raw")]
    reads: list[int] = []

    def dataset() -> Any:
        reads.append(1)
        return ({"raw": Tensor(a, DIMS)} for a in arrays)

    values = stats.compute_dataset_measures(measures, dataset, max_kept_values=100)
    assert len(reads) == 2
    full = np.concatenate(arrays).astype(np.float64)
    assert values[measures[0]] == np.quantile(full, 0.99)
    assert values[measures[1]] == pytest.approx(full.mean(), rel=1e-12)
    # a generator is read once; its samples are kept for the second pass
    once = stats.compute_dataset_measures(
        measures, ({"raw": Tensor(a, DIMS)} for a in arrays), max_kept_values=100
    )
    assert once == values
    with pytest.raises(TypeError, match="dataset measures only"):
        stats.compute_dataset_measures([stats.SampleMean("raw")], [])  # type: ignore[list-item]


def test_members_without_data_and_all_nan_members() -> None:
    nan = {"t": Tensor(np.full((1, 1, 2, 2), np.nan, dtype=np.float32), DIMS)}
    values = stats.accumulate_measures(
        [stats.DatasetQuantile("t", 0.5), stats.DatasetMean("t")], lambda: [nan]
    )
    assert all(np.isnan(as_array(v)) for v in values.values()) and len(values) == 2
    assert stats.accumulate_measures([stats.DatasetMean("t")], lambda: []) == {}
