"""Padding modes of ``inputs[i].pad``: pad_array and block data agree with numpy.pad per mode."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import pad_modes, small_arrays

from bioimageio_core.blocks import block_data, split_sample_shape
from bioimageio_core.tensor import Padding, pad_array

fill_values = st.floats(-1e3, 1e3, allow_nan=False, width=32)


def _numpy_pad(array: np.ndarray[Any, Any], widths: list[tuple[int, int]], padding: Padding) -> Any:
    if padding.mode == "constant":
        return np.pad(array, widths, mode="constant", constant_values=padding.value)
    return np.pad(array, widths, mode=padding.mode)


@settings(max_examples=80, deadline=None)
@given(array=small_arrays(), mode=pad_modes, value=fill_values, data=st.data())
def test_pad_array_equals_numpy_pad_per_mode(
    array: np.ndarray[Any, Any], mode: Any, value: float, data: st.DataObject
) -> None:
    widths = [(data.draw(st.integers(0, 9)), data.draw(st.integers(0, 9))) for _ in array.shape]
    padding = Padding(mode, value)
    np.testing.assert_array_equal(pad_array(array, widths, padding), _numpy_pad(array, widths, padding))


@settings(max_examples=60, deadline=None)
@given(
    mode=pad_modes,
    value=fill_values,
    size_y=st.integers(1, 40),
    size_x=st.integers(1, 40),
    inner=st.integers(1, 12),
    halo=st.integers(0, 6),
    seed=st.integers(0, 2**16),
)
def test_padded_border_blocks_are_cut_from_the_numpy_padded_sample(
    mode: Any, value: float, size_y: int, size_x: int, inner: int, halo: int, seed: int
) -> None:
    """Every block of a ``border="pad"`` split equals the same window of numpy.pad(sample, halo)."""
    x = np.random.default_rng(seed).normal(size=(2, size_y, size_x)).astype(np.float32)
    padding = Padding(mode, value)
    block = inner + 2 * halo
    shape = {"raw": {"c": 2, "y": size_y, "x": size_x}}
    # far enough to cover the last block, which may reach up to a whole block beyond the border
    reach = block
    whole = _numpy_pad(x, [(0, 0), (reach, reach), (reach, reach)], padding)
    for sb in split_sample_shape(
        shape, {("raw", "y"): block, ("raw", "x"): block}, {("raw", "y"): halo, ("raw", "x"): halo},
        border="pad",
    ):
        b = sb.members["raw"]
        window = tuple(
            slice(ab.origin + (reach if d else 0), ab.origin + ab.size + (reach if d else 0))
            for d, ab in enumerate(b.axis_blocks)
        )
        np.testing.assert_array_equal(block_data(x, b, padding), whole[window])


def test_constant_fill_may_vary_along_unpadded_axes() -> None:
    x = np.arange(12.0).reshape(1, 2, 2, 3)
    fill = np.array([-1.0, -2.0]).reshape(1, 2, 1, 1)  # one value per channel
    out = pad_array(x, [(0, 0), (0, 0), (1, 0), (0, 2)], Padding("constant", fill))
    assert out.shape == (1, 2, 3, 5)
    np.testing.assert_array_equal(out[0, 0, 0], [-1.0] * 5)
    np.testing.assert_array_equal(out[0, 1, :, 3:], np.full((3, 2), -2.0))
    np.testing.assert_array_equal(out[:, :, 1:, :3], x)


def test_a_fill_array_that_does_not_fit_is_rejected() -> None:
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="size 1 along padded axis 1"):
        pad_array(x, [(0, 0), (1, 1)], Padding("constant", np.zeros((2, 3))))
    with pytest.raises(ValueError, match="unknown pad mode"):
        Padding("wrap")  # type: ignore[arg-type]
