"""Cutting a sample into blocks with halo: per axis, on a grid shared by all members, lazily."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Literal

import attrs

from bioimageio_core.blocks.regions import AxisBlock, Block, SampleBlock, SampleShape
from bioimageio_core.shapes import (
    ModelShape,
    ShapeError,
    TensorAxis,
    block_halos,
    valid_input_sizes,
)

BorderMode = Literal["inside", "pad"]
"""Where blocks at a sample border take their context from.

``"inside"`` (default): a sample at least one block large is cut into blocks that lie inside it,
so a block at the border sees the sample's real border, exactly as a whole-sample prediction does
(the model's own border handling, e.g. zero padding of its convolutions, applies at the same
place). Its halo on the far side is wider instead. Blockwise then equals whole-sample prediction
for any model whose receptive field fits its halo. ``"pad"``: blocks are centred on their inner
region and padded beyond the sample border (as bioimageio.core does); the border of the output
then depends on the padding mode.
"""


@attrs.frozen
class AxisSplit:
    """The blocks along one axis, computed on demand (``len``, indexing, iteration)."""

    size: int
    block_size: int
    halo: int
    border: BorderMode = "inside"

    @property
    def inner(self) -> int:
        return self.block_size - 2 * self.halo

    def __len__(self) -> int:
        return max(1, -(-self.size // self.inner))

    def __getitem__(self, i: int) -> AxisBlock:
        if not 0 <= i < len(self):
            raise IndexError(f"block {i} of {len(self)}")
        if len(self) == 1:
            return _axis_block(0, self.size, -self.halo, self.block_size, self.size)
        start = i * self.inner
        stop = min(start + self.inner, self.size)
        if self.border == "inside" and self.size >= self.block_size:
            origin = max(0, min(start - self.halo, self.size - self.block_size))
        else:
            origin = min(start - self.halo, self.size + self.halo - self.block_size)
        return _axis_block(start, stop, origin, self.block_size, self.size)

    def __iter__(self) -> Iterator[AxisBlock]:
        return (self[i] for i in range(len(self)))


def axis_split(
    size: int,
    block_size: int,
    halo: int = 0,
    splittable: bool = True,
    border: BorderMode = "inside",
) -> AxisSplit:
    """Blocks of ``block_size`` (halo included) along an axis of ``size`` (see :func:`split_axis`)."""
    if size < 1:
        raise ShapeError(f"cannot split an axis of size {size}")
    if halo < 0 or block_size - 2 * halo < 1:
        raise ShapeError(
            f"block size {block_size} leaves no inner region with halo {halo} on both sides",
            hint=f"use a block size larger than {2 * halo}",
        )
    split = AxisSplit(size, block_size, halo, border)
    if len(split) > 1 and not splittable:
        raise ShapeError(
            f"an axis of size {size} that cannot be split does not fit into a block of size "
            f"{block_size} with halo {halo}",
            hint="choose a block size that covers the whole axis",
        )
    return split


def split_axis(
    size: int,
    block_size: int,
    halo: int = 0,
    splittable: bool = True,
    border: BorderMode = "inside",
) -> list[AxisBlock]:
    """Blocks of ``block_size`` (halo included) along an axis of ``size``.

    Inner regions tile ``[0, size)`` without overlap. With ``border="inside"`` blocks at the
    sample edges are shifted to lie inside the sample (see :data:`BorderMode`); with ``"pad"`` only
    the last block's data is shifted back, to end ``halo`` beyond the sample edge. An axis that must
    not be split needs a block at least as large as the axis (plus halo); it becomes one padded
    block.
    """
    return list(axis_split(size, block_size, halo, splittable, border))


def _axis_block(start: int, stop: int, origin: int, length: int, size: int) -> AxisBlock:
    o0, o1 = max(0, origin), min(size, origin + length)
    return AxisBlock((start, stop), (o0, o1), (o0 - origin, origin + length - o1))


def _member_splits(
    sample_shape: SampleShape,
    block_shape: Mapping[TensorAxis, int],
    halo: Mapping[TensorAxis, int],
    splittable: Callable[[TensorAxis], bool] | None,
    border: BorderMode,
) -> tuple[dict[str, list[AxisSplit]], dict[str, int]]:
    splits: dict[str, list[AxisSplit]] = {}
    grid: dict[str, int] = {}
    for member, sizes in sample_shape.items():
        axis_splits: list[AxisSplit] = []
        for axis_id, size in sizes.items():
            key = (member, axis_id)
            ok = True if splittable is None else splittable(key)
            try:
                split = axis_split(size, block_shape.get(key, size), halo.get(key, 0), ok, border)
            except ShapeError as e:
                raise ShapeError(
                    f"tensor {member!r} axis {axis_id!r}: {e.message}", hint=e.hint
                ) from None
            axis_splits.append(split)
            if len(split) > 1:
                known = grid.setdefault(axis_id, len(split))
                if known != len(split):
                    raise ShapeError(
                        f"axis {axis_id!r} is cut into {known} and {len(split)} blocks in "
                        "different tensors",
                        hint="give all tensors block shapes that cover the same regions",
                    )
        splits[member] = axis_splits
    return splits, grid


@attrs.frozen(eq=False)
class SampleGrid:
    """The blocks of a sample on their common grid: counted, indexed and iterated lazily.

    ``grid`` holds the axes cut into more than one block (axis id → blocks along it) in the
    order of iteration (the last one fastest); ``splits`` the :class:`AxisSplit` of every axis
    of every member. A block's ``index`` is its place in iteration order.
    """

    sample_shape: SampleShape
    splits: Mapping[str, tuple[AxisSplit, ...]]
    grid: Mapping[str, int]

    def __len__(self) -> int:
        return math.prod(self.grid.values())

    def position(self, index: int) -> dict[str, int]:
        """Grid position (block number along each grid axis) of the block ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"block {index} of {len(self)}")
        at: dict[str, int] = {}
        for axis_id in reversed(list(self.grid)):
            index, at[axis_id] = divmod(index, self.grid[axis_id])
        return at

    def __getitem__(self, index: int) -> SampleBlock:
        return self._block(index, self.position(index))

    def __iter__(self) -> Iterator[SampleBlock]:
        axes = list(self.grid)
        positions = itertools.product(*(range(self.grid[a]) for a in axes))
        for index, position in enumerate(positions):
            yield self._block(index, dict(zip(axes, position, strict=True)))

    def _block(self, index: int, at: Mapping[str, int]) -> SampleBlock:
        members = {
            m: Block(
                tuple(self.sample_shape[m]),
                tuple(
                    split[at[a]] if len(split) > 1 else split[0]
                    for a, split in zip(self.sample_shape[m], axis_splits, strict=True)
                ),
            )
            for m, axis_splits in self.splits.items()
        }
        return SampleBlock(index=index, members=members, sample_shape=self.sample_shape)


def sample_grid(
    sample_shape: SampleShape,
    block_shape: Mapping[TensorAxis, int],
    halo: Mapping[TensorAxis, int] | None = None,
    splittable: Callable[[TensorAxis], bool] | None = None,
    border: BorderMode = "inside",
) -> SampleGrid:
    """The blocks of a multi-tensor sample (see :func:`split_sample_shape`); sizes are checked
    here, blocks are made when they are asked for."""
    splits, grid = _member_splits(sample_shape, block_shape, halo or {}, splittable, border)
    return SampleGrid(sample_shape, {m: tuple(s) for m, s in splits.items()}, grid)


def split_sample_shape(
    sample_shape: SampleShape,
    block_shape: Mapping[TensorAxis, int],
    halo: Mapping[TensorAxis, int] | None = None,
    splittable: Callable[[TensorAxis], bool] | None = None,
    border: BorderMode = "inside",
) -> Iterator[SampleBlock]:
    """Lazily yield the blocks of a multi-tensor sample.

    ``block_shape`` (halo included) and ``halo`` are keyed by ``(tensor_id, axis_id)``; axes
    without a block size are whole. Members are split on a common grid: axes with the same id
    that are cut into more than one block must have the same number of blocks in every member
    that cuts them; a member cut less is repeated along that grid axis. Sizes are checked when
    this is called; blocks are made one at a time as the iterator advances.
    """
    return iter(sample_grid(sample_shape, block_shape, halo, splittable, border))


def count_blocks(
    sample_shape: SampleShape,
    block_shape: Mapping[TensorAxis, int],
    halo: Mapping[TensorAxis, int] | None = None,
    splittable: Callable[[TensorAxis], bool] | None = None,
) -> int:
    """Number of blocks :func:`split_sample_shape` yields (the same for every border mode)."""
    _, grid = _member_splits(sample_shape, block_shape, halo or {}, splittable, "inside")
    return math.prod(grid.values())


def model_sample_grid(
    model: ModelShape,
    sample_shape: SampleShape,
    block_shape: Mapping[TensorAxis, int],
    border: BorderMode = "inside",
) -> SampleGrid:
    """:func:`model_sample_blocks` as a :class:`SampleGrid`."""
    return sample_grid(
        sample_shape,
        block_shape,
        block_halos(model),
        splittable=lambda key: model.axis(key).splittable,
        border=border,
    )


def model_sample_blocks(
    model: ModelShape,
    sample_shape: SampleShape,
    block_shape: Mapping[TensorAxis, int],
    border: BorderMode = "inside",
) -> Iterator[SampleBlock]:
    """Blocks of an input sample for ``model``: halos from the outputs, split only splittable axes."""
    return iter(model_sample_grid(model, sample_shape, block_shape, border))


def padded_sample_grid(
    model: ModelShape,
    sample_shape: SampleShape,
    halo: Mapping[TensorAxis, int] | None = None,
) -> SampleGrid:
    """:func:`padded_sample_block` as a :class:`SampleGrid` of that one block."""
    halo = halo or {}
    sizes = {
        (t, a): s + 2 * halo.get((t, a), 0)
        for t, axes in sample_shape.items()
        for a, s in axes.items()
    }
    return sample_grid(sample_shape, valid_input_sizes(model, sizes), halo)


def padded_sample_block(
    model: ModelShape,
    sample_shape: SampleShape,
    halo: Mapping[TensorAxis, int] | None = None,
) -> SampleBlock:
    """One block holding the whole sample, padded up to the smallest valid input sizes.

    Use it to run a sample whose sizes the model does not accept without tiling: cut the input
    with :func:`block_data`, run the model, and crop each output back with
    :func:`map_output_blocks` and :func:`write_block` (or :func:`inner_data`).
    With ``halo`` (input pixels per ``(tensor_id, axis_id)``, e.g. :func:`block_halos`) the block
    also extends that far beyond both borders of the sample, so the model sees padded context
    there, as a tile at the sample border does with ``border="pad"``.
    """
    return padded_sample_grid(model, sample_shape, halo)[0]
