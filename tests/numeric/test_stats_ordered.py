"""Moments read piece by piece in any segments equal mean_var of the whole data, bit for bit."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bioimageio_core.stats.reductions as reductions
from bioimageio_core.stats.ordered import (
    PieceLayout,
    add_in_order,
    mean_from_total,
    merge_nan_aware,
    piece_squares,
    piece_sums,
)
from bioimageio_core.stats.reductions import mean_var

Array = np.ndarray[Any, Any]


def _piecewise(flat: Array, max_values: int, seed: int) -> tuple[Array, Array, Array]:
    rows = int(np.prod(flat.shape[:-1]))
    layout = PieceLayout(rows, flat.shape[-1])
    segments = layout.segments(max_values)
    random.Random(seed).shuffle(segments)  # parts arrive in any order
    sums = []
    for first, stop in segments:
        start, end = layout.values(first, stop)
        sums.append((first, piece_sums(flat[..., start:end], layout, first)))
    n, mean = mean_from_total(add_in_order(sums, flat.shape[:-1]), flat.shape[-1])
    squares = []
    for first, stop in segments:
        start, end = layout.values(first, stop)
        squares.append((first, piece_squares(flat[..., start:end], layout, first, mean)))
    return n, mean, add_in_order(squares, flat.shape[:-1])


@settings(max_examples=80, deadline=None)
@given(
    rows=st.sampled_from([(), (1,), (3,), (2, 2)]),
    n=st.integers(1, 300),
    dtype=st.sampled_from(["float32", "float64", "uint8", "int16"]),
    chunk_values=st.integers(5, 64),
    max_values=st.integers(1, 400),
    seed=st.integers(0, 99),
)
def test_piecewise_moments_equal_mean_var_bit_for_bit(
    rows: tuple[int, ...],
    n: int,
    dtype: str,
    chunk_values: int,
    max_values: int,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    flat = (rng.normal(size=(*rows, n)) * 1000 + 17).astype(dtype)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reductions, "_CHUNK_VALUES", chunk_values)  # many pieces on small data
        expected = mean_var(flat)
        got = _piecewise(flat, max_values, seed)
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_array_equal(g, e)
        assert g.tobytes() == np.asarray(e, dtype=np.float64).tobytes()


def test_missing_or_misaligned_pieces_are_refused() -> None:
    layout = PieceLayout(1, 200_000)
    flat = np.ones(200_000, dtype=np.float32)
    with pytest.raises(ValueError, match="piece boundary"):
        piece_sums(flat[5:70_000], layout, 0)
    with pytest.raises(ValueError, match="missing"):
        add_in_order([(1, piece_sums(flat[layout.step : 2 * layout.step], layout, 1))], ())


def test_nan_aware_merge_is_close_to_mean_var() -> None:
    flat = np.random.default_rng(1).normal(size=(2, 1000))
    flat[0, 10] = np.nan
    n, mean, m2 = mean_var(flat)
    got = merge_nan_aware([flat[:, :300], flat[:, 300:]])
    np.testing.assert_array_equal(got[0], n)
    np.testing.assert_allclose(got[1], mean, rtol=1e-12)
    np.testing.assert_allclose(got[2][1], m2[1], rtol=1e-12)
    assert np.isnan(got[2][0]) and np.isnan(m2[0])
