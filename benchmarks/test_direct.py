"""The benchmark floor must do the pipeline's work: same tiles, same stitching, same numbers.

Run with ``python -m pytest benchmarks`` (no timing is asserted anywhere).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.direct import _axis_tiles, n_tiles, tiled_predict
from bioimageio_core.blocks import BorderMode, axis_split


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 300),
    halo=st.integers(0, 8),
    inner=st.integers(1, 64),
    border=st.sampled_from(["inside", "pad"]),
)
def test_axis_tiles_match_the_core_split(
    size: int, halo: int, inner: int, border: BorderMode
) -> None:
    block = inner + 2 * halo
    split = axis_split(size, block, halo, border=border)
    core = [(b.inner[0], b.inner[1], b.origin) for b in split]
    assert _axis_tiles(size, block, halo, border) == core


def _box_blur(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """3x3 mean over (y, x) with reflect padding: a 'model' whose receptive field is within halo 1."""
    p = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)], mode="reflect")
    h, w = x.shape[2:]
    return np.asarray(sum(p[:, :, i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9)


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(8, 60),
    w=st.integers(8, 60),
    inner=st.integers(3, 20),
    batch_size=st.sampled_from([1, 3]),
    border=st.sampled_from(["inside", "pad"]),
    seed=st.integers(0, 2**16),
)
def test_tiled_equals_whole_for_a_local_model(
    h: int, w: int, inner: int, batch_size: int, border: str, seed: int
) -> None:
    x = np.random.default_rng(seed).random((1, 1, h, w)).astype("float64")
    halo = 1
    block = (inner + 2 * halo, inner + 2 * halo)
    normed = (x - x.mean()) / (x.std() + 1e-6)
    expected = 1 / (1 + np.exp(-_box_blur(normed)))
    calls: list[tuple[int, ...]] = []

    def forward(t: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        calls.append(t.shape)
        # a tile is padded like the whole image only where it touches the border; the inner
        # region (halo 1 away from the tile edge) sees exactly the whole-image neighbourhood
        return _box_blur(t)

    out = tiled_predict(x, forward, block, halo, batch_size=batch_size, border=border)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert sum(c[0] for c in calls) == n_tiles((h, w), block, halo)
    assert all(c[2:] == block for c in calls)
