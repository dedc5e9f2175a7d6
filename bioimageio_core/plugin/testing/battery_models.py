"""The models of :class:`~bioimageio_core.plugin.testing.BackendConformance`, described once.

A backend builds the network, computes the test outputs with its framework and passes the arrays
(axes in its layout, e.g. ``"bcyx"`` or ``"byxc"``) and its weights entries; the sizes, halos and
tensor ids are the ones the battery's tests rely on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bioimageio_core.plugin.testing.models import ModelDef, Param, Ref, TensorDef, WeightsDef

__all__ = ["multi_model", "scaled_model", "tiled_model"]

Array = np.ndarray[Any, Any]


def tiled_model(letters: str, raw: Array, out: Array, weights: Sequence[WeightsDef]) -> ModelDef:
    """``"tiled"``: input ``raw`` sized 64 + n·16, output ``out`` of raw's size with halo 4."""
    return ModelDef(
        "tiled conv",
        (TensorDef("raw", letters, raw, Param(64, 16)),),
        (TensorDef("out", letters, out, Ref("raw"), halo=4),),
        tuple(weights),
    )


def multi_model(
    letters: str,
    raw: Array,
    mask: Array,
    features: Array,
    pooled: Array,
    weights: Sequence[WeightsDef],
) -> ModelDef:
    """``"multi"``: inputs ``raw`` (32 + n·16) and ``mask`` (raw's size); outputs ``features``
    (raw's size, halo 2) and ``pooled`` (half raw's size, halo 2)."""
    return ModelDef(
        "multi tensor",
        (
            TensorDef("raw", letters, raw, Param(32, 16)),
            TensorDef("mask", letters, mask, Ref("raw")),
        ),
        (
            TensorDef("features", letters, features, Ref("raw"), halo=2),
            TensorDef("pooled", letters, pooled, Ref("raw", 0.5), halo=2),
        ),
        tuple(weights),
    )


def scaled_model(letters: str, raw: Array, down: Array, weights: Sequence[WeightsDef]) -> ModelDef:
    """``"scaled"``: input ``raw`` (32 + n·16), output ``down`` of half raw's size, halo 2."""
    return ModelDef(
        "downsampling",
        (TensorDef("raw", letters, raw, Param(32, 16)),),
        (TensorDef("down", letters, down, Ref("raw", 0.5), halo=2),),
        tuple(weights),
    )
