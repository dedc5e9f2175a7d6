"""Shared by the instance segmentation ops (stardist, cellpose): optional packages, axis layout."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.util import find_spec

import attrs

from bioimageio_core.errors import PluginError
from bioimageio_core.shapes import FixedSize, ShapeError, TensorShape
from bioimageio_core.stats import BATCH_AXIS
from bioimageio_core.tensor import Tensor

CHANNEL = "channel"
SPATIAL_ORDER = ("z", "y", "x")


def missing_package(package: str) -> str | None:
    """None when ``package`` can be imported (nothing is imported), else why not."""
    if find_spec(package) is None:
        return f"the {package} package is not installed"
    return None


def require_package(op_id: str, package: str, install_hint: str) -> None:
    """Raise a :class:`PluginError` with the install hint when ``package`` is missing."""
    reason = missing_package(package)
    if reason is not None:
        raise PluginError(f"processing step {op_id!r} cannot run: {reason}", hint=install_hint)


def spatial_axes(dims: Sequence[str]) -> tuple[str, ...]:
    """The axes other than batch and channel: in z, y, x order when they are named so, else in
    the tensor's order."""
    spatial = tuple(d for d in dims if d not in (BATCH_AXIS, CHANNEL))
    if set(spatial) <= set(SPATIAL_ORDER):
        return tuple(a for a in SPATIAL_ORDER if a in spatial)
    return spatial


def label_layout(
    x: Tensor, op_id: str, channels: int, n_spatial: Sequence[int]
) -> tuple[tuple[str, ...], bool]:
    """Check ``x`` for a label op: a channel axis of ``channels`` entries and ``n_spatial`` other
    axes (besides batch). Returns the spatial axes and whether there is a batch axis."""
    if CHANNEL not in x.dims:
        raise ShapeError(f"{op_id}: the tensor has no channel axis (its axes are {x.dims})")
    got = x.sizes[CHANNEL]
    if got != channels:
        raise ShapeError(
            f"{op_id}: the model output has {got} channels, {channels} are needed",
            hint="check the kwargs against the model's raw output",
        )
    spatial = spatial_axes(x.dims)
    if len(spatial) not in n_spatial:
        raise ShapeError(
            f"{op_id}: needs {' or '.join(map(str, n_spatial))} spatial axes, the tensor has "
            f"{list(spatial)}"
        )
    return spatial, BATCH_AXIS in x.dims


def with_channels(described: TensorShape, channels: int, op_id: str) -> TensorShape:
    """``described`` with its channel axis holding ``channels`` entries (what the model returns)."""
    if CHANNEL not in described.axis_ids:
        raise ShapeError(
            f"{op_id}: output {described.id!r} has no channel axis",
            hint="the described output is the label image: give it a channel axis of size 1",
        )
    return TensorShape(
        described.id,
        tuple(
            attrs.evolve(a, size=FixedSize(channels)) if a.id == CHANNEL else a
            for a in described.axes
        ),
    )
