"""``stardist_postprocessing``: non-maximum suppression of star-convex polygons (2D) or polyhedra
(3D) and their conversion to instance labels. Needs the optional ``stardist`` package (imported
when applied; its NMS runs without TensorFlow).

The model's raw output holds, along its ``channel`` axis, the object probability first and then
``n_rays`` ray distances, on a grid ``grid`` times coarser than the label image per spatial axis.
The described output is the label image: the same axes with a ``channel`` of size 1 holding
int32 instance labels (0 = background), ``grid`` times larger per spatial axis
(:func:`stardist_input_axes` tells the pipeline what the model returns).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import attrs
import numpy as np

from bioimageio_core.hookspecs import OpTarget
from bioimageio_core.ops._labels import (
    CHANNEL,
    label_layout,
    missing_package,
    require_package,
    spatial_axes,
    with_channels,
)
from bioimageio_core.ops.elementwise import _member
from bioimageio_core.shapes import FixedSize, ShapeError, TensorShape
from bioimageio_core.stats import BATCH_AXIS, Measure, MeasureValue
from bioimageio_core.tensor import Tensor

OP_ID = "stardist_postprocessing"
INSTALL_HINT = "pip install stardist  (TensorFlow is not needed)"


def stardist_available() -> str | None:
    """None when the stardist package can be imported, else why not (imports nothing)."""
    return missing_package("stardist")


def _grid(kwargs: Any, spatial: tuple[str, ...]) -> dict[str, int]:
    grid = tuple(int(g) for g in kwargs.grid)
    if len(grid) != len(spatial):
        raise ShapeError(
            f"{OP_ID}: 'grid' has {len(grid)} entries, the output has {len(spatial)} spatial "
            f"axes {list(spatial)}"
        )
    return dict(zip(spatial, grid, strict=True))


def stardist_input_axes(kwargs: Any, described: TensorShape) -> TensorShape:
    """The model's raw output for a described label image: ``n_rays + 1`` channels, each spatial
    axis ``grid`` times coarser (scale times ``grid``, halo divided by it, rounded up)."""
    raw = with_channels(described, int(kwargs.n_rays) + 1, OP_ID)
    grid = _grid(kwargs, spatial_axes(raw.axis_ids))
    axes = []
    for a in raw.axes:
        g = grid.get(a.id, 1)
        if g == 1:
            axes.append(a)
            continue
        size = a.size
        if isinstance(size, FixedSize):
            if size.size % g:
                raise ShapeError(
                    f"{OP_ID}: output {raw.id!r} axis {a.id!r} has the fixed size {size.size}, "
                    f"not a multiple of the grid {g}"
                )
            size = FixedSize(size.size // g)
        scale = float(Fraction(repr(a.scale)) * g)
        axes.append(attrs.evolve(a, size=size, scale=scale, halo=math.ceil(a.halo / g)))
    return TensorShape(raw.id, tuple(axes))


def _border(kwargs: Any, n: int) -> int | tuple[tuple[int, int], ...]:
    b = kwargs.b
    if isinstance(b, int):
        return b
    pairs = tuple((int(lo), int(hi)) for lo, hi in b)
    if len(pairs) != n:
        raise ShapeError(f"{OP_ID}: 'b' has {len(pairs)} pairs for {n} spatial axes")
    return pairs


def stardist_postprocessing(
    kwargs: Any, target: OpTarget, members: Mapping[str, Tensor], stat: Mapping[Measure, MeasureValue]
) -> Tensor:
    """Instance labels from a stardist model's probability and distance maps."""
    require_package(OP_ID, "stardist", INSTALL_HINT)
    x = _member(target, members)
    n_rays = int(kwargs.n_rays)
    spatial, has_batch = label_layout(x, OP_ID, n_rays + 1, (len(kwargs.grid),))
    grid = tuple(_grid(kwargs, spatial).values())
    order = ((BATCH_AXIS,) if has_batch else ()) + spatial + (CHANNEL,)
    data = np.asarray(x.transpose(order).data, dtype=np.float32)
    if not has_batch:
        data = data[None]
    label = _label_2d if len(spatial) == 2 else _label_3d
    labels = [label(kwargs, item, grid, _border(kwargs, len(spatial))) for item in data]
    out = np.stack(labels)[..., None] if has_batch else labels[0][..., None]
    return Tensor(out, order).transpose(x.dims)


def _nms_options(kwargs: Any, grid: tuple[int, ...], b: Any) -> dict[str, Any]:
    """Keyword arguments of stardist's non-maximum suppression (2D and 3D)."""
    return {
        "grid": grid,
        "b": b,
        "prob_thresh": float(kwargs.prob_threshold),
        "nms_thresh": float(kwargs.nms_threshold),
    }


def _label_2d(
    kwargs: Any, item: np.ndarray[Any, Any], grid: tuple[int, ...], b: Any
) -> np.ndarray[Any, Any]:
    from stardist.geometry import polygons_to_label  # type: ignore[import-not-found,import-untyped,unused-ignore]
    from stardist.nms import non_maximum_suppression  # type: ignore[import-not-found,import-untyped,unused-ignore]

    prob, dist = item[..., 0], np.ascontiguousarray(item[..., 1:])
    shape = tuple(s * g for s, g in zip(prob.shape, grid, strict=True))
    points, probi, disti = non_maximum_suppression(dist, prob, **_nms_options(kwargs, grid, b))
    return np.asarray(polygons_to_label(disti, points, prob=probi, shape=shape), dtype=np.int32)


def _label_3d(
    kwargs: Any, item: np.ndarray[Any, Any], grid: tuple[int, ...], b: Any
) -> np.ndarray[Any, Any]:
    from stardist.geometry import polyhedron_to_label  # type: ignore[import-not-found,import-untyped,unused-ignore]
    from stardist.nms import non_maximum_suppression_3d  # type: ignore[import-not-found,import-untyped,unused-ignore]
    from stardist.rays3d import rays_from_json  # type: ignore[import-not-found,import-untyped,unused-ignore]

    prob, dist = item[..., 0], np.ascontiguousarray(item[..., 1:])
    shape = tuple(s * g for s, g in zip(prob.shape, grid, strict=True))
    anisotropy = [float(a) for a in kwargs.anisotropy]
    rays = rays_from_json(
        {"name": "Rays_GoldenSpiral", "kwargs": {"n": int(kwargs.n_rays), "anisotropy": anisotropy}}
    )
    points, probi, disti = non_maximum_suppression_3d(
        dist, prob, rays, **_nms_options(kwargs, grid, b)
    )
    overlap = getattr(kwargs, "overlap_label", None)
    label = polyhedron_to_label(
        disti, points, rays=rays, prob=probi, shape=shape, overlap_label=overlap, verbose=False
    )
    return np.asarray(label, dtype=np.int32)
