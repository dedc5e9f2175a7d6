"""Batch: blocks stacked along the batch axis for one forward call, and the outputs split again."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bioimageio_core.execution.read import Array


def stack(
    parts: Sequence[Mapping[str, Array]], input_axes: Mapping[str, tuple[str, ...]], fill_to: int
) -> tuple[dict[str, Array], int]:
    """The blocks' data stacked along each input's batch axis, filled up to ``fill_to`` blocks
    with copies of the last one; returns the arrays and the number of blocks stacked."""
    filled = list(parts) + [parts[-1]] * (max(fill_to, len(parts)) - len(parts))
    if len(filled) == 1:
        return dict(filled[0]), 1
    arrays = {
        m: np.concatenate([p[m] for p in filled], axis=input_axes[m].index("batch"))
        for m in filled[0]
    }
    return arrays, len(filled)


def unstack(data: Array, axes: tuple[str, ...], i: int, n: int) -> Array:
    """The part of a batched array (axes ``axes``) that belongs to block ``i`` of ``n``."""
    if n == 1:
        return data
    axis = axes.index("batch")
    step = data.shape[axis] // n
    index: list[slice] = [slice(None)] * data.ndim
    index[axis] = slice(i * step, (i + 1) * step)
    return data[tuple(index)]


__all__ = ["stack", "unstack"]
