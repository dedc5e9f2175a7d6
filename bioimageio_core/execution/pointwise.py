"""Which processing may run block by block with the same numbers as on the whole sample."""

from __future__ import annotations

from collections.abc import Iterable

from bioimageio_core.ops import BoundOp
from bioimageio_core.shapes import ModelShape


def whole_tensor_steps(
    ops: Iterable[BoundOp], shape: ModelShape, *, statistics_known: bool = False
) -> list[str]:
    """The ids of the ops in ``ops`` that must run on the whole tensor instead of each block.

    An op may run per block when its spec says it is pointwise (:attr:`bioimageio_core.
    hookspecs.OpSpec.pointwise`: element by element, or along an axis that blocking never
    splits, e.g. ``softmax`` over channels) and it needs no statistics, or (``statistics_known``)
    only statistics computed over the whole tensor beforehand; ``shape`` holds the tensors the
    ops apply to (as described).
    """
    steps: list[str] = []
    for op in ops:
        if not op.spec.pointwise or (op.required_measures and not statistics_known):
            steps.append(op.spec.id)
            continue
        axis = getattr(op.kwargs, "axis", None)
        if axis is not None:
            tensor = shape.tensor(op.target.member_id)
            if str(axis) not in tensor.axis_ids or tensor.axis(str(axis)).splittable:
                steps.append(op.spec.id)
    return steps


def runs_per_block(
    ops: Iterable[BoundOp], shape: ModelShape, *, statistics_known: bool = False
) -> bool:
    """Whether ``ops`` may run on each block instead of the whole tensor, with equal numbers
    (none of them is one of :func:`whole_tensor_steps`)."""
    return not whole_tensor_steps(ops, shape, statistics_known=statistics_known)


__all__ = ["runs_per_block", "whole_tensor_steps"]
