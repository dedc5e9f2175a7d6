"""Physical metadata of an array's axes: type, unit, pixel spacing (scale) and offset.

Read from OME-Zarr (NGFF ``axes`` and ``coordinateTransformations``) and written into OME-Zarr
outputs, so that a prediction keeps the coordinates of its input. The convention is NGFF's: the
physical position of element ``i`` along an axis is ``i * scale + translation`` (the centre of
the pixel).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

import attrs

AXIS_TYPES = {"batch": "batch", "channel": "channel", "time": "time", "index": "index"}
"""Axis type of the non-space axis ids; every other id (x, y, z, …) is a space axis."""


def axis_type(axis_id: str) -> str:
    """``space`` for x/y/z and other ids, else ``batch``/``channel``/``time``/``index``."""
    return AXIS_TYPES.get(axis_id, "space")


def _finite(value: float, what: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number (got {value!r})")
    return number


def _scale(value: float) -> float:
    return _finite(value, "scale")


def _translation(value: float) -> float:
    return _finite(value, "translation")


def _axes_tuple(value: Sequence[AxisMetadata]) -> tuple[AxisMetadata, ...]:
    return tuple(value)


@attrs.frozen
class AxisMetadata:
    """One axis: its id, type (``space``, ``time``, ``channel``, …), unit, scale, translation."""

    id: str
    type: str | None = None
    unit: str | None = None
    scale: float = attrs.field(default=1.0, converter=_scale)
    translation: float = attrs.field(default=0.0, converter=_translation)

    @scale.validator
    def _positive_scale(self, attribute: Any, value: float) -> None:
        if value <= 0:
            raise ValueError(f"'scale' of axis {self.id!r} must be positive (got {value})")

    @classmethod
    def default(cls, axis_id: str) -> AxisMetadata:
        """An axis without physical units (scale 1, translation 0)."""
        return cls(axis_id, axis_type(axis_id))


@attrs.frozen
class ArrayMetadata:
    """The physical metadata of every axis of an array, in the array's axis order."""

    axes: tuple[AxisMetadata, ...] = attrs.field(converter=_axes_tuple)
    name: str | None = None

    @axes.validator
    def _unique(self, attribute: Any, value: tuple[AxisMetadata, ...]) -> None:
        ids = [a.id for a in value]
        if len(set(ids)) != len(ids):
            raise ValueError(f"axis ids must be unique (got {ids})")

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.axes)

    def __getitem__(self, axis_id: str) -> AxisMetadata:
        for a in self.axes:
            if a.id == axis_id:
                return a
        raise KeyError(f"no axis {axis_id!r} (axes: {', '.join(self.dims)})")

    def get(self, axis_id: str) -> AxisMetadata | None:
        return next((a for a in self.axes if a.id == axis_id), None)

    def for_dims(self, dims: Sequence[str]) -> ArrayMetadata:
        """The metadata of an array with axes ``dims``: axes known here keep their metadata,
        the others have none (scale 1)."""
        return ArrayMetadata(
            tuple(self.get(d) or AxisMetadata.default(d) for d in dims), name=self.name
        )

    def rescaled(self, factors: Mapping[str, float | Fraction]) -> ArrayMetadata:
        """The metadata after resampling axes by ``factors`` (output pixel size / input pixel
        size, e.g. 2 for an output at half resolution).

        Pixel centres move with the pixel size: output pixel ``j`` covers input pixels
        ``j*f … j*f + f - 1``, so its centre is at ``translation + (f - 1) * scale / 2``.
        """
        axes = []
        for a in self.axes:
            f = float(factors.get(a.id, 1))
            if f <= 0 or not math.isfinite(f):
                raise ValueError(f"scale factor of axis {a.id!r} must be positive (got {f})")
            axes.append(
                attrs.evolve(
                    a, scale=a.scale * f, translation=a.translation + (f - 1) * a.scale / 2
                )
            )
        return ArrayMetadata(tuple(axes), name=self.name)

    @property
    def is_trivial(self) -> bool:
        """No units, scales of 1 and no translations: nothing worth recording."""
        return all(a.unit is None and a.scale == 1 and a.translation == 0 for a in self.axes)
