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

STATISTICS_OPS = frozenset({"zero_mean_unit_variance", "scale_range", "scale_mean_variance"})
"""Ops that work element by element once their statistics are known (computed over the whole
sample first): preprocessing made of these and :data:`POINTWISE_OPS` runs per block when a
prediction reads its input block by block."""


def runs_per_block(
    ops: Iterable[BoundOp], shape: ModelShape, *, statistics_known: bool = False
) -> bool:
    """Whether ``ops`` may run on each block instead of the whole tensor, with equal numbers.

    True when every op works element by element, or along an axis that blocking never splits
    (e.g. ``softmax`` over channels), and needs no statistics, or (``statistics_known``) only
    statistics computed over the whole tensor beforehand; ``shape`` holds the tensors the ops
    apply to (as described).
    """
    for op in ops:
        if statistics_known:
            if op.spec.id not in POINTWISE_OPS | STATISTICS_OPS:
                return False
        elif op.spec.id not in POINTWISE_OPS or op.required_measures:
            return False
        axis = getattr(op.kwargs, "axis", None)
        if axis is not None:
            tensor = shape.tensor(op.target.member_id)
            if str(axis) not in tensor.axis_ids or tensor.axis(str(axis)).splittable:
                return False
    return True


__all__ = ["POINTWISE_OPS", "STATISTICS_OPS", "runs_per_block"]
