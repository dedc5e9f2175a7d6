"""``cellpose_flow_dynamics``: Cellpose's mask reconstruction from flows and cell probability.
Needs the optional ``cellpose`` package (3.x; imported when applied).

The model's raw output holds, along its ``channel`` axis, the flows and then the cell probability:
``[flow_y, flow_x, cell_probability]`` in 2D, ``[flow_z, flow_y, flow_x, cell_probability]`` with
``do_3D: true`` (three spatial axes). Per batch element, pixels with a probability above
``cellprob_threshold`` follow the flow field to their sinks and form instances
(``cellpose.dynamics.compute_masks``, which in 2D also drops masks whose flow error exceeds
``flow_threshold``); then holes are filled and masks smaller than ``min_size`` pixels removed
(``cellpose.utils.fill_holes_and_remove_small_masks``, not with ``min_size: 0``). The described
output is the label image: the same axes with a ``channel`` of size 1, ``output_dtype`` labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bioimageio_core.hookspecs import OpTarget
from bioimageio_core.ops._labels import (
    CHANNEL,
    label_layout,
    missing_package,
    require_package,
    with_channels,
)
from bioimageio_core.ops.elementwise import _member
from bioimageio_core.shapes import TensorShape
from bioimageio_core.stats import BATCH_AXIS, Measure, MeasureValue
from bioimageio_core.tensor import Tensor

OP_ID = "cellpose_flow_dynamics"
INSTALL_HINT = (
    'pip install "cellpose<4"  (cellpose 4 brings a torchvision that needs a CUDA torch build)'
)


def cellpose_available() -> str | None:
    """None when the cellpose package can be imported, else why not (imports nothing)."""
    return missing_package("cellpose")


def _channels(kwargs: Any) -> int:
    return 4 if kwargs.do_3D else 3


def cellpose_input_axes(kwargs: Any, described: TensorShape) -> TensorShape:
    """The model's raw output for a described label image: flows and probability channels."""
    return with_channels(described, _channels(kwargs), OP_ID)


def cellpose_flow_dynamics(
    kwargs: Any, target: OpTarget, members: Mapping[str, Tensor], stat: Mapping[Measure, MeasureValue]
) -> Tensor:
    """Instance labels from a Cellpose model's flows and cell probability."""
    require_package(OP_ID, "cellpose", INSTALL_HINT)
    x = _member(target, members)
    spatial, has_batch = label_layout(
        x, OP_ID, _channels(kwargs), (3,) if kwargs.do_3D else (2,)
    )
    order = ((BATCH_AXIS,) if has_batch else ()) + (CHANNEL,) + spatial
    data = np.asarray(x.transpose(order).data, dtype=np.float32)
    if not has_batch:
        data = data[None]
    dtype = np.dtype(str(kwargs.output_dtype))
    labels = [_masks(kwargs, item).astype(dtype) for item in data]
    out = np.stack(labels)[:, None] if has_batch else labels[0][None]
    return Tensor(out, order).transpose(x.dims)


def _masks(kwargs: Any, item: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    from cellpose import dynamics, utils  # type: ignore[import-not-found,import-untyped,unused-ignore]

    flows, probability = item[:-1], item[-1]
    result = dynamics.compute_masks(
        flows,
        probability,
        cellprob_threshold=float(kwargs.cellprob_threshold),
        flow_threshold=float(kwargs.flow_threshold),
        do_3D=bool(kwargs.do_3D),
    )
    masks = result[0] if isinstance(result, tuple) else result  # cellpose < 3.1 returns (masks, p)
    min_size = int(kwargs.min_size)
    if min_size > 0:
        masks = utils.fill_holes_and_remove_small_masks(masks, min_size=min_size)
    return np.asarray(masks)
