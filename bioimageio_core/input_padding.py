"""How the pipeline fills an input beyond its borders (``inputs[i].pad``, model format 0.5.8+).

The pipeline pads an input where a block reaches beyond the sample: at the sample border of
tiled prediction with ``border="pad"``, around the whole sample when its halo is padded, and
when a sample is padded up to a size the model accepts. The mode comes from the input's ``pad``
(``constant`` with a value, ``edge``, ``reflect``, ``symmetric``); an input without ``pad`` is
reflect-padded.

Padding happens after preprocessing (the pipeline preprocesses the whole sample once), so a
constant ``value``, which the description gives in the units of the raw input, goes through the
input's preprocessing first, with the statistics of the sample: the model sees what it would see
had the raw input been padded with ``value`` before preprocessing (as the reference pipeline does).
The edge and mirror modes commute with the preprocessing ops (all act element by element), so they
need nothing of the kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bioimageio_core.errors import InputError
from bioimageio_core.ops import BoundOp, apply_ops
from bioimageio_core.spec.padding import ConstantPadding
from bioimageio_core.tensor import Padding, Tensor

if TYPE_CHECKING:
    from bioimageio_core.stats import Measure, MeasureValue

DEFAULT_PADDING = Padding("reflect")
"""What an input without ``pad`` is padded with."""

_SPLIT_TYPES = ("space", "time", "index")


def declared_paddings(model: Any) -> dict[str, Padding]:
    """``{input id: Padding}`` for the inputs of a 0.5 model description that declare ``pad``."""
    out: dict[str, Padding] = {}
    for t in model.inputs:
        pad = getattr(t, "pad", None)
        if pad is None:
            continue
        if isinstance(pad, ConstantPadding):
            out[str(t.id)] = Padding("constant", float(pad.value))
        else:
            out[str(t.id)] = Padding(pad.mode)
    return out


def preprocessed_paddings(
    declared: Mapping[str, Padding],
    raw: Mapping[str, Tensor],
    preprocessing: Sequence[BoundOp],
    stat: Mapping[Measure, MeasureValue],
    axis_types: Mapping[str, Sequence[str]],
) -> dict[str, Padding]:
    """``declared`` with every constant fill value taken through its input's preprocessing.

    ``raw`` holds the raw inputs (for shape and dtype), ``stat`` the statistics preprocessing uses
    for this sample, ``axis_types`` the axis types of each input (in its axis order). The fill
    value of an input whose preprocessing depends on the position along a padded axis cannot be
    expressed as a constant and raises :class:`InputError`.
    """
    out = dict(declared)
    for member_id, padding in declared.items():
        if padding.mode != "constant" or member_id not in raw:
            continue
        ops = [op for op in preprocessing if op.target.member_id == member_id]
        if not ops:
            continue
        tensor = raw[member_id]
        types = axis_types[member_id]
        shape = tuple(
            1 if kind in _SPLIT_TYPES else size for kind, size in zip(types, tensor.shape, strict=True)
        )
        fill = _filled(shape, padding.value, tensor.dtype)
        try:
            processed = apply_ops(ops, {member_id: Tensor(fill, tensor.dims)}, stat)[member_id]
        except (KeyError, ValueError) as e:
            raise InputError(
                f"the constant padding value {padding.value!r} of input {member_id!r} cannot go "
                f"through its preprocessing: {e}",
                hint="use pad mode edge, reflect or symmetric for this input",
            ) from e
        out[member_id] = Padding("constant", np.asarray(processed.data))
    return out


def _filled(shape: tuple[int, ...], value: float | Any, dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    """``value`` in an array of ``shape``, in the input's dtype when it fits there exactly."""
    number = float(value) if not isinstance(value, np.ndarray) else float(value.flat[0])
    if dtype.kind in "iub":
        info = np.iinfo(dtype) if dtype.kind in "iu" else None
        fits = number.is_integer() and (
            info is None and number in (0.0, 1.0) or info is not None and info.min <= number <= info.max
        )
        if not fits:
            dtype = np.dtype(np.float64)
    return np.full(shape, number, dtype=dtype)


__all__ = ["DEFAULT_PADDING", "declared_paddings", "preprocessed_paddings"]
