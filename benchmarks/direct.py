"""The floor: the same tiles run straight through the framework by a minimal hand-written loop.

The loop does exactly the work the pipeline must do for the benchmark models (zero-mean/unit-
variance over the spatial axes, overlapping tiles of one shape placed as the pipeline places them,
reflect padding where a tile reaches beyond the sample, stitching of the inner regions, sigmoid) with plain
numpy and one framework call per tile, so ``pipeline time / direct time - 1`` is the pipeline's
overhead.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]
Forward = Callable[[Array], Array]


def onnx_forward(path: Path, threads: int) -> Forward:
    from benchmarks._common import onnx_session

    session = onnx_session(path, threads)
    in_name = session.get_inputs()[0].name

    def forward(x: Array) -> Array:
        return session.run(None, {in_name: np.ascontiguousarray(x)})[0]  # type: ignore[no-any-return]

    return forward


def torchscript_forward(path: Path) -> Forward:
    import torch

    module = torch.jit.load(str(path), map_location="cpu").eval()  # type: ignore[no-untyped-call]

    def forward(x: Array) -> Array:
        with torch.inference_mode():
            return module(torch.from_numpy(np.ascontiguousarray(x))).numpy()  # type: ignore[no-any-return]

    return forward


class Timed:
    """Wraps a forward function and sums the time spent inside it."""

    def __init__(self, forward: Callable[..., Any]) -> None:
        self.forward = forward
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, x: Any) -> Any:
        t0 = time.perf_counter()
        y = self.forward(x)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return y


def _axis_tiles(
    size: int, block: int, halo: int, border: str = "inside"
) -> list[tuple[int, int, int]]:
    """(start, stop, origin) of each tile along an axis; origin may be negative (padding).

    ``border="inside"``: tiles at the sample border lie inside the sample (when it is at least one
    tile large); ``"pad"``: every tile is centred on its inner region, the last one shifted back
    to end one halo beyond the border, reflect padding beyond the border.
    """
    inner = block - 2 * halo
    n = max(1, -(-size // inner))
    if n == 1:
        return [(0, size, -halo)]
    tiles = []
    for i in range(n):
        start = i * inner
        if border == "inside" and size >= block:
            origin = max(0, min(start - halo, size - block))
        else:
            origin = min(start - halo, size + halo - block)
        tiles.append((start, min(start + inner, size), origin))
    return tiles


def tiled_predict(
    x: Array,
    forward: Forward,
    block: tuple[int, ...],
    halo: int,
    eps: float = 1e-6,
    batch_size: int = 1,
    border: str = "inside",
) -> Array:
    """Predict ``x`` (batch, channel, *spatial) tile by tile; ``block`` includes the halo."""
    spatial = tuple(range(2, x.ndim))
    mean = x.mean(axis=spatial, keepdims=True)
    std = x.std(axis=spatial, keepdims=True)
    normed = (x - mean) / (std + eps)
    per_axis = [_axis_tiles(s, b, halo, border) for s, b in zip(x.shape[2:], block, strict=True)]
    pad_right = [
        max(0, max(o + b for _, _, o in tiles) - s)
        for tiles, s, b in zip(per_axis, x.shape[2:], block, strict=True)
    ]
    pad_left = [max(0, -min(o for _, _, o in tiles)) for tiles in per_axis]
    padded = np.pad(
        normed, [(0, 0), (0, 0), *zip(pad_left, pad_right, strict=True)], mode="reflect"
    )
    out: Array | None = None
    positions = list(itertools.product(*per_axis))
    for first in range(0, len(positions), batch_size):
        group = positions[first : first + batch_size]
        tiles = [
            padded[
                (
                    slice(None),
                    slice(None),
                    *(
                        slice(o + pl, o + pl + b)
                        for (_, _, o), pl, b in zip(pos, pad_left, block, strict=True)
                    ),
                )
            ]
            for pos in group
        ]
        y = forward(tiles[0] if len(tiles) == 1 else np.concatenate(tiles, axis=0))
        if out is None:
            out = np.empty(x.shape[:1] + y.shape[1:2] + x.shape[2:], dtype=y.dtype)
        for i, pos in enumerate(group):
            src = tuple(slice(start - o, stop - o) for start, stop, o in pos)
            dst = tuple(slice(start, stop) for start, stop, _ in pos)
            out[(slice(None), slice(None), *dst)] = y[(slice(i, i + 1), slice(None), *src)]
    assert out is not None
    return 1.0 / (1.0 + np.exp(-out))  # type: ignore[no-any-return]


def n_tiles(shape: tuple[int, ...], block: tuple[int, ...], halo: int) -> int:
    """Number of tiles :func:`tiled_predict` runs for a sample of spatial ``shape``."""
    return int(np.prod([len(_axis_tiles(s, b, halo)) for s, b in zip(shape, block, strict=True)]))
