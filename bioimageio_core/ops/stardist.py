"""``stardist_postprocessing``: non-maximum suppression of star-convex polygons/polyhedra and their
conversion to instance labels. Needs the optional ``stardist`` package (imported when applied).

The tensor holds, along its ``channel`` axis, the object probability first and then the ray
distances; the other non-batch axes are spatial (2 → polygons, 3 → polyhedra). The result has the
same axes with a ``channel`` of size 1 holding int32 instance labels (0 = background).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

import numpy as np

from bioimageio_core.errors import PluginError
from bioimageio_core.hookspecs import OpTarget
from bioimageio_core.ops.elementwise import _member
from bioimageio_core.stats import BATCH_AXIS, Measure, MeasureValue
from bioimageio_core.tensor import Tensor

INSTALL_HINT = "pip install stardist"


def stardist_available() -> str | None:
    """None when the stardist package can be imported, else why not."""
    if importlib.util.find_spec("stardist") is None:
        return "the stardist package is not installed"
    return None


def _require_stardist() -> Any:
    reason = stardist_available()
    if reason is not None:
        raise PluginError(
            f"processing step 'stardist_postprocessing' cannot run: {reason}", hint=INSTALL_HINT
        )
    import stardist  # type: ignore[import-not-found,unused-ignore]

    return stardist


def stardist_postprocessing(
    kwargs: Any, target: OpTarget, members: Mapping[str, Tensor], stat: Mapping[Measure, MeasureValue]
) -> Tensor:
    """Instance labels from stardist probability + distance predictions."""
    _require_stardist()
    from stardist.geometry import (  # type: ignore[import-not-found,unused-ignore]
        polygons_to_label,
        polyhedron_to_label,
    )
    from stardist.nms import (  # type: ignore[import-not-found,unused-ignore]
        non_maximum_suppression,
        non_maximum_suppression_3d,
    )
    from stardist.rays3d import rays_from_json  # type: ignore[import-not-found,unused-ignore]

    x = _member(target, members)
    spatial = tuple(d for d in x.dims if d not in (BATCH_AXIS, "channel"))
    has_batch = BATCH_AXIS in x.dims
    order = ((BATCH_AXIS,) if has_batch else ()) + spatial + ("channel",)
    data = x.transpose(order).data
    if not has_batch:
        data = data[None]
    grid = tuple(int(g) for g in getattr(kwargs, "grid", (1,) * len(spatial)))
    prob_thresh = float(kwargs.prob_threshold)
    nms_thresh = float(kwargs.nms_threshold)
    b = getattr(kwargs, "b", 2)
    overlap_label = getattr(kwargs, "overlap_label", None)
    labels = []
    for item in data:
        prob, dist = item[..., 0], item[..., 1:]
        shape = tuple(s * g for s, g in zip(prob.shape, grid, strict=True))
        if len(spatial) == 2:
            points, probi, disti = non_maximum_suppression(
                dist, prob, grid=grid, prob_thresh=prob_thresh, nms_thresh=nms_thresh, b=b
            )
            label = polygons_to_label(disti, points, prob=probi, shape=shape,
                                      overlap_label=overlap_label)
        elif len(spatial) == 3:
            n_rays = int(kwargs.n_rays)
            anisotropy = getattr(kwargs, "anisotropy", None)
            rays = rays_from_json({"name": "Rays_GoldenSpiral", "kwargs": {"n": n_rays, "anisotropy": anisotropy}})
            points, probi, disti = non_maximum_suppression_3d(
                dist, prob, rays, grid=grid, prob_thresh=prob_thresh, nms_thresh=nms_thresh, b=b
            )
            label = polyhedron_to_label(disti, points, rays=rays, prob=probi, shape=shape,
                                        overlap_label=overlap_label, verbose=False)
        else:
            raise ValueError(
                f"stardist_postprocessing needs 2 or 3 spatial axes; the tensor has {spatial}"
            )
        labels.append(np.asarray(label, dtype=np.int32)[..., None])
    out = np.stack(labels) if has_batch else labels[0]
    return Tensor(out, order).transpose(x.dims)
