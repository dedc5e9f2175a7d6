"""Statistics of stored inputs, read in small segments, equal the in-memory ones bit for bit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bioimageio_core.stats.reductions as reductions
from bioimageio_core.execution.statistics import run_in_threads, stored_statistics
from bioimageio_core.execution.stored import StoredInput, StoredSample, close_stored
from bioimageio_core.stats import (
    DatasetMean,
    DatasetQuantile,
    DatasetStd,
    Measure,
    SampleMean,
    SampleQuantile,
    SampleStd,
    SampleVar,
    compute_dataset_measures,
    compute_sample_measures,
)
from bioimageio_core.tensor import Tensor

Array = np.ndarray[Any, Any]
DIMS = ("batch", "channel", "y", "x")


def _stored(path: Path, data: Array, file_axes: tuple[str, ...] = DIMS) -> StoredInput:
    np.save(path, data)
    return StoredInput(str(path), file_axes, DIMS, data.shape, data.dtype.str)


def _same(a: Any, b: Any) -> None:
    a_data = a.data if isinstance(a, Tensor) else np.asarray(a)
    b_data = b.data if isinstance(b, Tensor) else np.asarray(b)
    assert a_data.shape == b_data.shape
    assert np.asarray(a_data, np.float64).tobytes() == np.asarray(b_data, np.float64).tobytes()


axes_choices = st.sampled_from([None, ("y", "x"), ("channel", "y", "x"), ("x",)])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 20), st.integers(1, 30)),
    dtype=st.sampled_from(["float32", "uint16", "int32"]),
    axes=axes_choices,
    chunk_values=st.integers(3, 50),
    segment_values=st.integers(1, 200),
    seed=st.integers(0, 50),
    threads=st.integers(1, 3),
)
def test_sample_statistics_of_a_stored_input_equal_the_in_memory_ones(
    tmp_path: Path,
    shape: tuple[int, ...],
    dtype: str,
    axes: tuple[str, ...] | None,
    chunk_values: int,
    segment_values: int,
    seed: int,
    threads: int,
) -> None:
    """Also when the segments are read in several threads (jobs merged in order)."""
    if axes is not None:  # sample measures never reduce the batch axis
        axes = tuple(a for a in axes if a != "batch")
    data = (np.random.default_rng(seed).normal(size=shape) * 300).astype(dtype)
    stored = _stored(tmp_path / f"x{seed}.npy", data)
    measures: list[Measure] = [
        SampleMean("raw", axes),
        SampleVar("raw", axes),
        SampleStd("raw", axes),
        SampleQuantile("raw", 0.1, axes),
        SampleQuantile("raw", 0.999, axes, method="inverted_cdf"),
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reductions, "_CHUNK_VALUES", chunk_values)
        expected = compute_sample_measures({"raw": Tensor(data, DIMS)}, measures)  # type: ignore[arg-type]
        got = stored_statistics(
            [StoredSample({"raw": stored})],
            measures,
            segment_values=segment_values,
            max_kept_values=64,  # forces the multi-pass quantile search
            run=run_in_threads(threads),
            jobs=threads,
        )
    close_stored()
    for m in measures:
        _same(got[m], expected[m])


def test_dataset_statistics_over_stored_samples_equal_the_in_memory_ones(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    arrays = [rng.normal(size=(1, 2, 40 + 7 * i, 33)).astype("float32") * 50 for i in range(3)]
    samples = [
        StoredSample({"raw": _stored(tmp_path / f"s{i}.npy", a)}, id=i)
        for i, a in enumerate(arrays)
    ]
    measures: list[Any] = [
        DatasetMean("raw", ("batch", "y", "x")),
        DatasetStd("raw", None),
        DatasetQuantile("raw", 0.5, ("batch", "y", "x")),
    ]
    expected = compute_dataset_measures(measures, [{"raw": Tensor(a, DIMS)} for a in arrays])
    got = stored_statistics(samples, measures, segment_values=500, max_kept_values=100)
    for m in measures:
        _same(got[m], expected[m])


def test_file_axes_are_mapped_onto_the_model_axes(tmp_path: Path) -> None:
    data = np.arange(6 * 5, dtype="float32").reshape(6, 5)
    np.save(tmp_path / "yx.npy", data.T)  # stored as (x, y)
    stored = StoredInput(str(tmp_path / "yx.npy"), ("x", "y"), DIMS, (1, 1, 6, 5), "<f4")
    np.testing.assert_array_equal(
        stored.read((slice(0, 1), slice(0, 1), slice(2, 4), slice(1, 5))), data[None, None, 2:4, 1:5]
    )
    close_stored()


def test_samples_whose_kept_axes_differ_are_refused(tmp_path: Path) -> None:
    a = StoredSample({"raw": _stored(tmp_path / "a.npy", np.zeros((1, 2, 4, 4), "float32"))})
    b = StoredSample({"raw": _stored(tmp_path / "b.npy", np.zeros((1, 3, 4, 4), "float32"))})
    from bioimageio_core.errors import InputError

    with pytest.raises(InputError, match="keep axes whose sizes differ"):
        stored_statistics([a, b], [DatasetMean("raw", ("batch", "y", "x"))])
