"""Block data: cut a block's data out of an array (padded at borders), write a block's inner
region into a preallocated array."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from bioimageio_core.blocks.regions import Block, SampleBlock, SupportsSetItem
from bioimageio_core.shapes import ModelShape, ShapeError, TensorAxis, TensorShape
from bioimageio_core.tensor import Padding, PadMode, Tensor, pad_array


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
    write_inner(target, block, inner_data(data, block))


def write_inner(target: SupportsSetItem, block: Block, inner: npt.ArrayLike) -> None:
    """Write ``inner`` (a block's inner region, e.g. from :func:`inner_data`) into ``target``."""
    target[block.inner_slices] = inner


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


def output_shape(sizes: Mapping[TensorAxis, int | None], tensor: TensorShape) -> tuple[int, ...]:
    """The shape of the whole output ``tensor`` for the output ``sizes`` (all known)."""
    shape: list[int] = []
    for a in tensor.axes:
        s = sizes.get((tensor.id, a.id))
        if s is None:
            raise ShapeError(f"size of output {tensor.id!r} axis {a.id!r} is not known")
        shape.append(s)
    return tuple(shape)


def allocate_outputs(
    sizes: Mapping[TensorAxis, int | None],
    model: ModelShape,
    dtype: npt.DTypeLike = np.float32,
    factory: Callable[[tuple[int, ...], Any], Any] | None = None,
) -> dict[str, Any]:
    """Preallocate one array per output (``factory(shape, dtype)``, default ``np.empty``)."""
    make = factory or (lambda shape, dt: np.empty(shape, dtype=dt))
    return {t.id: make(output_shape(sizes, t), dtype) for t in model.outputs}
