"""Blocks as value types: per axis ``inner`` / ``outer`` / ``padding``, per tensor, per sample."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import attrs

SampleShape = Mapping[str, Mapping[str, int]]
"""``{tensor_id: {axis_id: size}}``."""


class SupportsSetItem(Protocol):
    def __setitem__(self, key: Any, value: Any, /) -> None: ...


def _pair(value: tuple[int, int] | list[int]) -> tuple[int, int]:
    return (int(value[0]), int(value[1]))


@attrs.frozen
class AxisBlock:
    """One block along one axis (see the module docstring)."""

    inner: tuple[int, int] = attrs.field(converter=_pair)
    outer: tuple[int, int] = attrs.field(converter=_pair)
    padding: tuple[int, int] = attrs.field(default=(0, 0), converter=_pair)

    def __attrs_post_init__(self) -> None:
        (i0, i1), (o0, o1), (p0, p1) = self.inner, self.outer, self.padding
        if not (0 <= o0 <= i0 <= i1 <= o1) or p0 < 0 or p1 < 0:
            raise ValueError(
                f"inconsistent axis block: inner {self.inner}, outer {self.outer}, "
                f"padding {self.padding}"
            )

    @classmethod
    def whole(cls, size: int) -> AxisBlock:
        """The block covering a whole axis of ``size``."""
        return cls((0, size), (0, size), (0, 0))

    @property
    def origin(self) -> int:
        """Sample position of the block's first data element (negative when padded left)."""
        return self.outer[0] - self.padding[0]

    @property
    def size(self) -> int:
        """Length of the block's data (outer region plus padding)."""
        return self.outer[1] - self.outer[0] + self.padding[0] + self.padding[1]

    @property
    def local_inner(self) -> tuple[int, int]:
        """The inner region in block data coordinates."""
        return (self.inner[0] - self.origin, self.inner[1] - self.origin)


def _str_tuple(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


def _blocks_tuple(items: Iterable[AxisBlock]) -> tuple[AxisBlock, ...]:
    return tuple(items)


@attrs.frozen
class Block:
    """A block of one tensor: one :class:`AxisBlock` per axis, in the tensor's axis order."""

    axes: tuple[str, ...] = attrs.field(converter=_str_tuple)
    axis_blocks: tuple[AxisBlock, ...] = attrs.field(converter=_blocks_tuple)

    def __getitem__(self, axis_id: str) -> AxisBlock:
        return self.axis_blocks[self.axes.index(axis_id)]

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the block's data."""
        return tuple(b.size for b in self.axis_blocks)

    @property
    def inner_slices(self) -> tuple[slice, ...]:
        return tuple(slice(*b.inner) for b in self.axis_blocks)

    @property
    def outer_slices(self) -> tuple[slice, ...]:
        return tuple(slice(*b.outer) for b in self.axis_blocks)

    @property
    def local_inner_slices(self) -> tuple[slice, ...]:
        return tuple(slice(*b.local_inner) for b in self.axis_blocks)

    @property
    def padding(self) -> dict[str, tuple[int, int]]:
        return {a: b.padding for a, b in zip(self.axes, self.axis_blocks, strict=True)}


@attrs.frozen(eq=False)
class SampleBlock:
    """Blocks of all members of a sample at one grid position.

    ``index`` counts blocks in iteration order (last grid axis fastest); ``sample_shape`` is the
    shape of the whole sample the blocks were cut from.
    """

    index: int
    members: Mapping[str, Block]
    sample_shape: SampleShape

    @property
    def shape(self) -> dict[str, tuple[int, ...]]:
        return {m: b.shape for m, b in self.members.items()}
