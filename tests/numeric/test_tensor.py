from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import pad_modes, small_arrays

from bioimageio_core.tensor import Tensor, pad_array


@settings(max_examples=60, deadline=None)
@given(array=small_arrays(), mode=pad_modes, data=st.data())
def test_pad_equals_numpy_pad(array: np.ndarray[Any, Any], mode: str, data: st.DataObject) -> None:
    widths = [(data.draw(st.integers(0, 7)), data.draw(st.integers(0, 7))) for _ in array.shape]
    dims = [f"a{i}" for i in range(array.ndim)]
    padded = Tensor.from_numpy(array, dims).pad(dict(zip(dims, widths, strict=True)), mode)  # type: ignore[arg-type]
    if mode == "constant":
        expected = np.zeros([s + lo + hi for s, (lo, hi) in zip(array.shape, widths, strict=True)])
        expected[
            tuple(slice(lo, lo + s) for s, (lo, _) in zip(array.shape, widths, strict=True))
        ] = array
    else:
        expected = np.pad(array, widths, mode=mode)  # type: ignore[call-overload]
    assert padded.dims == tuple(dims)
    np.testing.assert_array_equal(padded.data, expected)


def test_reflect_does_not_repeat_the_edge_and_symmetric_does() -> None:
    t = Tensor(np.array([1, 2, 3]), ["x"])
    assert t.pad({"x": (2, 2)}, "reflect").data.tolist() == [3, 2, 1, 2, 3, 2, 1]
    assert t.pad({"x": (2, 2)}, "symmetric").data.tolist() == [2, 1, 1, 2, 3, 3, 2]
    assert t.pad({"x": (1, 1)}, "edge").data.tolist() == [1, 1, 2, 3, 3]


def test_pad_without_widths_is_not_a_copy_and_bad_input_is_rejected() -> None:
    array = np.arange(6.0).reshape(2, 3)
    assert pad_array(array, [(0, 0), (0, 0)]) is array
    with pytest.raises(ValueError, match="unknown pad mode"):
        pad_array(array, [(1, 1), (0, 0)], "wrap")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 0"):
        pad_array(array, [(-1, 0), (0, 0)])
    with pytest.raises(KeyError, match="no axes"):
        Tensor(array, "yx").pad({"z": (1, 1)})


def test_from_numpy_expands_letters_and_keeps_a_view() -> None:
    array = np.zeros((1, 2, 3, 4))
    t = Tensor.from_numpy(array, "bcyx")
    assert t.dims == ("batch", "channel", "y", "x")
    assert np.shares_memory(t.data, array)
    assert np.shares_memory(t.crop({"x": (1, 3)}).data, array)
    assert t.crop({"x": (1, 3)}).sizes == {"batch": 1, "channel": 2, "y": 3, "x": 2}
    assert t.squeeze("batch").dims == ("channel", "y", "x")
    assert t.squeeze("batch").expand_dims("batch").sizes == t.sizes
    assert np.asarray(t) is array
    with pytest.raises(ValueError, match="size 2"):
        t.squeeze("channel")
