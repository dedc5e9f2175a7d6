"""Normalisation arithmetic runs in float64 chunk by chunk: same numbers as the whole-array form."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import bioimageio_core.ops._common as common
from bioimageio_core.ops._common import in_float64_chunks
from bioimageio_core.tensor import Tensor

DIMS = ("batch", "channel", "z", "y", "x")


@st.composite
def data_and_operands(draw: st.DrawFn) -> tuple[np.ndarray[Any, Any], list[Any]]:
    ndim = draw(st.integers(1, 5))
    shape = draw(st.tuples(*(st.integers(1, 6) for _ in range(ndim))))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.uint16, np.int16, np.uint8]))
    elements = st.floats(-1e4, 1e4, width=32) if np.dtype(dtype).kind == "f" else None
    data = draw(hnp.arrays(dtype, shape, elements=elements))
    operands: list[Any] = []
    for _ in range(2):
        if draw(st.booleans()):
            operands.append(draw(st.floats(-100, 100)))
        else:  # an array with singletons where a statistic reduced the axis
            op_shape = tuple(s if draw(st.booleans()) else 1 for s in shape)
            operands.append(draw(hnp.arrays(np.float64, op_shape, elements=st.floats(0.5, 100))))
    return data, operands


@settings(max_examples=80, deadline=None)
@given(data_and_operands(), st.integers(1, 40))
def test_chunked_float64_equals_whole_float64_then_cast(
    case: tuple[np.ndarray[Any, Any], list[Any]], chunk: int
) -> None:
    data, (a, b) = case
    before = data.copy()

    def fn(v: Any, m: Any, s: Any) -> Any:
        return (v - m) / (s + 1e-6)

    old = common._CHUNK_VALUES
    common._CHUNK_VALUES = chunk  # many small chunks, also chunks that split an axis
    try:
        got = in_float64_chunks(fn, Tensor(data, DIMS[-data.ndim :]), a, b)
    finally:
        common._CHUNK_VALUES = old
    expected_dtype = data.dtype if data.dtype.kind == "f" else np.float64
    expected = np.asarray(fn(data.astype(np.float64), a, b)).astype(expected_dtype)
    assert got.dtype == expected_dtype
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(data, before)


def test_operands_must_have_the_tensor_dimensions() -> None:
    x = Tensor(np.zeros((2, 3), dtype=np.float32), ("y", "x"))
    with pytest.raises(ValueError, match="2 dimensions"):
        in_float64_chunks(lambda v, m: v - m, x, np.zeros(3))
