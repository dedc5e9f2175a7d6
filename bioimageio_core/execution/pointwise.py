"""Which processing may run block by block with the same numbers as on the whole sample."""

from __future__ import annotations

from collections.abc import Iterable

from bioimageio_core.ops import BoundOp
from bioimageio_core.shapes import ModelShape

POINTWISE_OPS = frozenset(
    {"binarize", "clip", "ensure_dtype", "fixed_zero_mean_unit_variance", "scale_linear",
     "sigmoid", "softmax"}
)  # fmt: skip
"""Processing ops that work element by element (or along one unsplit axis) when they need no
statistics, so postprocessing made of them can run per block."""


def runs_per_block(ops: Iterable[BoundOp], shape: ModelShape) -> bool:
    """Whether ``ops`` may run on each block (its inner region) instead of the stitched tensor.

    True when no op needs statistics and every op works element by element, or along an axis
    that blocking never splits (e.g. ``softmax`` over channels); ``shape`` holds the tensors the
    ops apply to (as described).
    """
    for op in ops:
        if op.spec.id not in POINTWISE_OPS or op.required_measures:
            return False
        axis = getattr(op.kwargs, "axis", None)
        if axis is not None:
            tensor = shape.tensor(op.target.member_id)
            if str(axis) not in tensor.axis_ids or tensor.axis(str(axis)).splittable:
                return False
    return True


__all__ = ["POINTWISE_OPS", "runs_per_block"]
