"""Block math for tiled prediction: split with halo, pad at borders, map to outputs, stitch.

Coordinates are sample coordinates. Per axis a block has

* ``inner``: the region of the sample this block is responsible for (written out; an output
  block may own an empty region when the model crops its output),
* ``outer``: the region read from the sample (inner plus halo, clipped to the sample),
* ``padding``: how far the block's data extends beyond the sample on each side.

The block's data covers ``[outer.start - padding.left, outer.stop + padding.right)``; its
``origin`` is the first of these (negative at the left border). Block shapes include the halo:
``inner = block - 2*halo``. Inner regions of consecutive blocks do not overlap; the last block is
shifted back to end at the sample edge (its data stays full size) so every block has one shape.
A sample smaller than a block becomes one block padded up to the block shape.

Output blocks follow the model's size references: with ``r = ref.scale / out.scale`` and offset
``off``, output block data index ``j`` is output sample position ``j + origin*r``, and an inner
boundary at input position ``p`` maps to ``p*r + floor(off/2)`` (an offset is split between both
sides, as a "valid" convolution crops). Output axes without a reference to a split input axis are
whole.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from fractions import Fraction
from typing import Any, Literal, Protocol, TypeVar

import attrs
import numpy as np
import numpy.typing as npt

from bioimageio_core.shapes import (
    ModelShape,
    ShapeError,
    SizeReference,
    TensorAxis,
    block_halos,
    scale_ratio,
    valid_input_sizes,
)
from bioimageio_core.tensor import Padding, PadMode, Tensor, pad_array

T = TypeVar("T")

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


# --- splitting --------------------------------------------------------------------------------


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
                split = axis_split(
                    size, block_shape.get(key, size), halo.get(key, 0), ok, border
                )
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
    splits, grid = _member_splits(sample_shape, block_shape, halo or {}, splittable, border)
    return _iter_sample_blocks(sample_shape, splits, grid)


def _iter_sample_blocks(
    sample_shape: SampleShape, splits: dict[str, list[AxisSplit]], grid: dict[str, int]
) -> Iterator[SampleBlock]:
    grid_axes = list(grid)
    for index, position in enumerate(itertools.product(*(range(grid[a]) for a in grid_axes))):
        at = dict(zip(grid_axes, position, strict=True))
        members = {
            m: Block(
                tuple(sample_shape[m]),
                tuple(
                    split[at[a]] if len(split) > 1 else split[0]
                    for a, split in zip(sample_shape[m], axis_splits, strict=True)
                ),
            )
            for m, axis_splits in splits.items()
        }
        yield SampleBlock(index=index, members=members, sample_shape=sample_shape)


def count_blocks(
    sample_shape: SampleShape,
    block_shape: Mapping[TensorAxis, int],
    halo: Mapping[TensorAxis, int] | None = None,
    splittable: Callable[[TensorAxis], bool] | None = None,
) -> int:
    """Number of blocks :func:`split_sample_shape` yields (the same for every border mode)."""
    _, grid = _member_splits(sample_shape, block_shape, halo or {}, splittable, "inside")
    return math.prod(grid.values())


def model_sample_blocks(
    model: ModelShape,
    sample_shape: SampleShape,
    block_shape: Mapping[TensorAxis, int],
    border: BorderMode = "inside",
) -> Iterator[SampleBlock]:
    """Blocks of an input sample for ``model``: halos from the outputs, split only splittable axes."""
    return split_sample_shape(
        sample_shape,
        block_shape,
        block_halos(model),
        splittable=lambda key: model.axis(key).splittable,
        border=border,
    )


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
    halo = halo or {}
    sizes = {
        (t, a): s + 2 * halo.get((t, a), 0) for t, axes in sample_shape.items() for a, s in axes.items()
    }
    valid = valid_input_sizes(model, sizes)
    return next(split_sample_shape(sample_shape, valid, halo))


# --- block data -------------------------------------------------------------------------------


def block_data(
    source: Tensor | npt.ArrayLike, block: Block, mode: PadMode | Padding = "reflect"
) -> np.ndarray[Any, Any]:
    """Cut ``block``'s data out of ``source`` (ndarray, memmap, zarr array, Tensor …).

    Only the outer region is read; borders are padded with ``mode`` (a numpy mode or a
    :class:`~bioimageio_core.tensor.Padding`, see :func:`bioimageio_core.tensor.pad_array`),
    exactly as padding the whole sample would.
    """
    array: Any = source.data if isinstance(source, Tensor) else source
    region = np.asarray(array[block.outer_slices])
    return pad_array(region, [b.padding for b in block.axis_blocks], mode)


def inner_data(data: npt.ArrayLike, block: Block) -> np.ndarray[Any, Any]:
    """The inner region of a block's data (a view)."""
    array = np.asarray(data)
    _check_shape(array, block)
    return array[block.local_inner_slices]


def _check_shape(array: np.ndarray[Any, Any], block: Block) -> None:
    if array.shape != block.shape:
        detail = ", ".join(
            f"{a}: {got} (expected {exp})"
            for a, got, exp in zip(block.axes, array.shape, block.shape, strict=False)
            if got != exp
        )
        raise ShapeError(
            f"block data of shape {array.shape} does not fit the block shape {block.shape} "
            f"({detail or 'different number of axes'})"
        )


def write_block(target: SupportsSetItem, block: Block, data: npt.ArrayLike) -> None:
    """Write the inner region of ``data`` (a block's data) into ``target`` at the block's place.

    ``target`` is any preallocated array-like with ``__setitem__`` (numpy array, np.memmap,
    zarr array) of the whole output sample's shape.
    """
    target[block.inner_slices] = inner_data(data, block)


def sample_block_data(
    members: Mapping[str, Tensor | npt.ArrayLike],
    block: SampleBlock,
    mode: PadMode | Padding | Mapping[str, Padding] = "reflect",
) -> dict[str, np.ndarray[Any, Any]]:
    """:func:`block_data` for every member of ``block`` (members absent from it are skipped).

    ``mode``: one padding for every member, or one per member id (``"reflect"`` for members not
    in the mapping).
    """

    def mode_of(member: str) -> PadMode | Padding:
        if isinstance(mode, Mapping):
            return mode.get(member, "reflect")
        return mode

    return {
        m: block_data(members[m], b, mode_of(m)) for m, b in block.members.items() if m in members
    }


def write_blocks(
    targets: Mapping[str, SupportsSetItem],
    blocks: Mapping[str, Block],
    data: Mapping[str, npt.ArrayLike],
) -> None:
    """:func:`write_block` for every output in ``data``."""
    for member, array in data.items():
        if member not in targets or member not in blocks:
            raise ShapeError(f"no output block or target array for {member!r}")
        write_block(targets[member], blocks[member], array)


# --- output side ------------------------------------------------------------------------------


def map_output_blocks(
    model: ModelShape, block: SampleBlock, output_sizes: Mapping[TensorAxis, int | None]
) -> dict[str, Block]:
    """Output blocks for an input :class:`SampleBlock`.

    ``output_sizes`` are the whole output sample's sizes (:func:`bioimageio_core.shapes.output_sizes`
    for the input sample's sizes); data dependent sizes (None) must be filled in by the caller
    from the model's output before calling this. To map many blocks, build one
    :class:`OutputBlockMapper` and call it per block.
    """
    return OutputBlockMapper(model, output_sizes)(block)


@attrs.frozen
class _AxisPlan:
    """How one output axis follows the input: ``ref`` is None for an axis that is never split."""

    axis_id: str
    size: int
    ref: TensorAxis | None
    ratio: Fraction
    offset: int


class OutputBlockMapper:
    """Maps input :class:`SampleBlock` s to output blocks; how every output axis follows the
    inputs (reference, scale, offset) is worked out once, not per block."""

    def __init__(self, model: ModelShape, output_sizes: Mapping[TensorAxis, int | None]) -> None:
        first_batch = next(
            ((t.id, a.id) for t in model.inputs for a in t.axes if a.type == "batch"), None
        )
        self._plans: list[tuple[str, tuple[str, ...], list[_AxisPlan]]] = []
        for t in model.outputs:
            axes: list[_AxisPlan] = []
            for a in t.axes:
                key = (t.id, a.id)
                size = output_sizes.get(key)
                if size is None:
                    raise ShapeError(
                        f"size of output {t.id!r} axis {a.id!r} is not known",
                        hint="fill data dependent sizes from the model output",
                    )
                ref: TensorAxis | None = None
                ratio, offset = Fraction(1), 0
                if isinstance(a.size, SizeReference):
                    ref = (a.size.tensor_id, a.size.axis_id)
                    ratio, offset = scale_ratio(model, key), a.size.offset
                elif a.type == "batch":
                    ref = first_batch
                axes.append(_AxisPlan(a.id, size, ref, ratio, offset))
            self._plans.append((t.id, t.axis_ids, axes))

    def __call__(self, block: SampleBlock) -> dict[str, Block]:
        """The output blocks (by output id) that belong to the input ``block``."""
        out: dict[str, Block] = {}
        for tensor_id, axis_ids, plans in self._plans:
            axis_blocks: list[AxisBlock] = []
            for p in plans:
                if p.ref is None or p.ref[0] not in block.members:
                    axis_blocks.append(AxisBlock.whole(p.size))
                    continue
                axis_blocks.append(
                    map_axis_block(
                        block.members[p.ref[0]][p.ref[1]],
                        block.sample_shape[p.ref[0]][p.ref[1]],
                        p.ratio,
                        p.offset,
                        p.size,
                        where=f"{tensor_id}.{p.axis_id}",
                    )
                )
            out[tensor_id] = Block(axis_ids, axis_blocks)
        return out


def map_axis_block(
    block: AxisBlock,
    sample_size: int,
    ratio: Fraction,
    offset: int,
    output_size: int,
    *,
    where: str = "output axis",
) -> AxisBlock:
    """Map an input axis block through ``out = floor(in*ratio) + offset`` (see module docstring)."""
    if block.origin == 0 and block.size == sample_size:
        return AxisBlock.whole(output_size)
    if ratio.denominator == 1:  # integer scale (the common 1): plain int arithmetic
        factor = ratio.numerator

        def scaled(position: int, what: str) -> int:
            return position * factor

        length = block.size * factor + offset
    else:

        def scaled(position: int, what: str) -> int:
            return _whole(position * ratio, where, what)

        length = math.floor(block.size * ratio) + offset
    origin = scaled(block.origin, "block start")
    shift = offset // 2
    start = 0 if block.inner[0] == 0 else scaled(block.inner[0], "block boundary") + shift
    stop = (
        output_size
        if block.inner[1] == sample_size
        else scaled(block.inner[1], "block boundary") + shift
    )
    start, stop = max(0, start), min(output_size, stop)
    o0, o1 = max(0, origin), min(output_size, origin + length)
    if stop <= start:  # e.g. a block of a model that crops ("valid") can own no output
        start = stop = min(max(start, o0), o1)
    if not (o0 <= start <= stop <= o1):
        raise ShapeError(
            f"{where}: an output block of length {length} at {origin} does not cover its "
            f"region [{start}, {stop})",
            hint="the block is too small for the model's halo and offset; use a larger block",
        )
    return AxisBlock((start, stop), (o0, o1), (o0 - origin, origin + length - o1))


def _whole(value: Fraction, where: str, what: str) -> int:
    if value.denominator != 1:
        raise ShapeError(
            f"{where}: {what} maps to output position {float(value):g}, not a whole pixel",
            hint="use block shapes, halos and sample sizes that are multiples of the scale "
            "between input and output",
        )
    return int(value)


# --- batching ---------------------------------------------------------------------------------


def batched(
    items: Iterable[T], batch_size: int, key: Callable[[T], Hashable] | None = None
) -> Iterator[list[T]]:
    """Group consecutive items with equal ``key`` (default: their ``shape``) into lists of at
    most ``batch_size``; lazy, holds one batch at a time."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 (got {batch_size})")

    def default_key(item: T) -> Hashable:
        shape = getattr(item, "shape", None)
        if isinstance(shape, Mapping):
            return tuple(sorted(shape.items()))
        return shape  # type: ignore[no-any-return]

    get_key = key or default_key
    batch: list[T] = []
    batch_key: Hashable = None
    for item in items:
        k = get_key(item)
        if batch and (k != batch_key or len(batch) == batch_size):
            yield batch
            batch = []
        if not batch:
            batch_key = k
        batch.append(item)
    if batch:
        yield batch


def allocate_outputs(
    sizes: Mapping[TensorAxis, int | None],
    model: ModelShape,
    dtype: npt.DTypeLike = np.float32,
    factory: Callable[[tuple[int, ...], Any], Any] | None = None,
) -> dict[str, Any]:
    """Preallocate one array per output (``factory(shape, dtype)``, default ``np.empty``)."""
    make = factory or (lambda shape, dt: np.empty(shape, dtype=dt))
    arrays: dict[str, Any] = {}
    for t in model.outputs:
        shape: list[int] = []
        for a in t.axes:
            s = sizes.get((t.id, a.id))
            if s is None:
                raise ShapeError(f"size of output {t.id!r} axis {a.id!r} is not known")
            shape.append(s)
        arrays[t.id] = make(tuple(shape), dtype)
    return arrays


__all__ = [
    "AxisBlock",
    "Block",
    "SampleBlock",
    "SampleShape",
    "SupportsSetItem",
    "AxisSplit",
    "allocate_outputs",
    "axis_split",
    "batched",
    "block_data",
    "count_blocks",
    "inner_data",
    "map_axis_block",
    "OutputBlockMapper",
    "map_output_blocks",
    "model_sample_blocks",
    "padded_sample_block",
    "sample_block_data",
    "split_axis",
    "split_sample_shape",
    "write_block",
    "write_blocks",
]
