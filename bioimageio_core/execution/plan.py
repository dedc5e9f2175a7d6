"""Plan: the blocks a sample is cut into, how many go through the model per call, output sizes.

Three ways to cut a sample (:class:`Blocking`):

* whole (neither a blocksize parameter nor a block shape): one block padded up to valid sizes (and
  by the halo with ``border="pad"``); an axis larger than a fixed model size is tiled with blocks
  of that size;
* a blocksize parameter ``n``: blocks of ``min + n*step`` on parameterized axes;
* an input block shape: blocks of exactly that shape (axes left out as for the default ``n``).

Every size problem of the sample is an :class:`~bioimageio_core.errors.InputError` here, before
anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from bioimageio_core.blocks import (
    BorderMode,
    SampleGrid,
    SampleShape,
    model_sample_grid,
    padded_sample_grid,
    sample_grid,
)
from bioimageio_core.digest import BlockShapeArg, check_input_sizes, normalize_block_shape
from bioimageio_core.errors import InputError
from bioimageio_core.shapes import (
    BlocksizeParameter,
    FixedSize,
    ModelShape,
    SizeReference,
    TensorAxis,
    as_input_error,
    block_halos,
    block_shape,
    check_batch_size,
    check_blocksize_parameter,
    output_sizes,
    resolve_references,
    valid_size,
)


@attrs.frozen
class Blocking:
    """How to cut a sample: ``input_block_shape`` wins over ``blocksize_parameter``; with neither
    the sample runs whole. ``batch_size``: blocks per forward call when cut into blocks (None,
    and always for a whole sample: the pipeline's)."""

    blocksize_parameter: BlocksizeParameter | None = None
    input_block_shape: BlockShapeArg | None = None
    batch_size: int | None = None

    @property
    def whole(self) -> bool:
        return self.blocksize_parameter is None and self.input_block_shape is None

    def for_upstream(self) -> Blocking:
        """How an upstream model (``output_of``) cuts the sample it computes inputs from: whole
        when this blocking is, else blockwise with an int blocksize parameter (or its default)."""
        if self.whole:
            return self
        n = self.blocksize_parameter if isinstance(self.blocksize_parameter, int) else None
        return Blocking(blocksize_parameter=n, batch_size=self.batch_size, input_block_shape=None)


@attrs.frozen
class ModelLayout:
    """What planning needs of a model: its inputs and outputs as described (``shape``) and as the
    model returns them (``io_shape``: before postprocessing that changes shapes), and where blocks
    take their context from at the sample border."""

    shape: ModelShape
    io_shape: ModelShape
    border: BorderMode

    def present(self, sample_shape: SampleShape) -> ModelShape:
        """The model without the optional inputs the sample lacks."""
        inputs = tuple(t for t in self.shape.inputs if t.id in sample_shape)
        return ModelShape(inputs=inputs, outputs=self.io_shape.outputs)

    @property
    def can_batch(self) -> bool:
        """Whether blocks may be stacked along the batch axis of every input and output."""
        for t in self.shape.inputs:
            batch = [a for a in t.axes if a.type == "batch"]
            if not batch or batch[0].size is not None:
                return False
        return all(any(a.type == "batch" for a in t.axes) for t in self.shape.outputs)


@attrs.frozen(eq=False)
class BlockPlan:
    """The blocks of one sample and how they go through the model.

    ``output_sizes``: of the whole outputs as the model returns them (None where data
    dependent: known after the first block). ``batch_size``: blocks per forward call;
    ``fill_to``: a short last batch is filled up to this many blocks with copies of its last
    block, so that the model sees one input shape only.
    """

    grid: SampleGrid
    output_sizes: Mapping[TensorAxis, int | None]
    batch_size: int
    fill_to: int

    @property
    def n_blocks(self) -> int:
        return len(self.grid)


def flat_sizes(sample_shape: SampleShape) -> dict[TensorAxis, int]:
    """``{(tensor_id, axis_id): size}`` of a sample shape."""
    return {(m, a): s for m, axes in sample_shape.items() for a, s in axes.items()}


def plan(
    layout: ModelLayout,
    sample_shape: SampleShape,
    blocking: Blocking,
    *,
    default_blocksize_parameter: BlocksizeParameter,
    default_batch_size: int,
) -> BlockPlan:
    """The plan for a sample of ``sample_shape`` (present members only) cut as ``blocking`` says.

    Raises:
        InputError: the sample or the block shape does not fit the model, or a model with data
            dependent output sizes would have to run blockwise.
    """
    if blocking.input_block_shape is not None:
        grid = _fixed_blocks(
            layout, sample_shape, blocking.input_block_shape, default_blocksize_parameter
        )
    elif blocking.blocksize_parameter is not None:
        n = check_blocksize_parameter(blocking.blocksize_parameter, layout.shape)
        grid = _parameterized_blocks(layout, sample_shape, n)
    else:
        grid = _whole_sample(layout, sample_shape)
    # a whole sample (tiled only beyond fixed sizes) runs with the pipeline's batch size
    batch = blocking.batch_size
    if batch is None or blocking.whole:
        batch = default_batch_size
    return _finish(layout, sample_shape, grid, check_batch_size(batch))


def _finish(
    layout: ModelLayout, sample_shape: SampleShape, grid: SampleGrid, batch_size: int
) -> BlockPlan:
    sizes = output_sizes(layout.io_shape, flat_sizes(sample_shape))
    n_blocks = len(grid)
    if any(v is None for v in sizes.values()) and n_blocks > 1:
        raise InputError(
            "this model's outputs have data dependent sizes, so it cannot predict blockwise",
            hint="predict without blocking (a sample the model accepts as a whole)",
        )
    b = batch_size if layout.can_batch else 1
    return BlockPlan(grid, sizes, b, b if n_blocks > b else 1)


def _parameterized_blocks(
    layout: ModelLayout, sample_shape: SampleShape, n: BlocksizeParameter
) -> SampleGrid:
    present = layout.present(sample_shape)
    with as_input_error():
        bs = block_shape(present, flat_sizes(sample_shape), n, batch_size=1)
    return _model_grid(layout, sample_shape, bs)


def _fixed_blocks(
    layout: ModelLayout,
    sample_shape: SampleShape,
    input_block_shape: BlockShapeArg,
    default_n: BlocksizeParameter,
) -> SampleGrid:
    given = normalize_block_shape(layout.shape, input_block_shape)
    missing = sorted({t for t, _ in given} - set(sample_shape))
    if missing:
        raise InputError(f"input block shape given for input(s) {missing} that the sample lacks")
    present = layout.present(sample_shape)
    with as_input_error():
        default = block_shape(present, flat_sizes(sample_shape), default_n, batch_size=1)
        bs = {
            k: v
            for k, v in default.items()
            if k in given or not isinstance(layout.shape.axis(k).size, SizeReference)
        }
        bs.update(given)
        resolved = resolve_references(present, bs, present.inputs)
    bs.update({k: v for k, v in resolved.items() if k not in given})
    check_input_sizes(present, bs)
    return _model_grid(layout, sample_shape, bs)


def _model_grid(
    layout: ModelLayout, sample_shape: SampleShape, bs: Mapping[TensorAxis, int]
) -> SampleGrid:
    bs = {k: v for k, v in bs.items() if k[0] in sample_shape}
    with as_input_error():
        return model_sample_grid(layout.io_shape, sample_shape, bs, border=layout.border)


def _whole_sample(layout: ModelLayout, sample_shape: SampleShape) -> SampleGrid:
    """One padded block, or blocks of a fixed model size along the axes that exceed it."""
    sizes = flat_sizes(sample_shape)
    present = layout.present(sample_shape)
    with as_input_error():
        halos = block_halos(present) if layout.border == "pad" else {}
        tiled = _exceeding_fixed_sizes(layout.shape, sizes, halos)
        if not tiled:
            return padded_sample_grid(present, sample_shape, halos)
        return _tile_fixed_axes(layout, sample_shape, sizes, tiled, halos)


def _exceeding_fixed_sizes(
    shape: ModelShape, sizes: Mapping[TensorAxis, int], halos: Mapping[TensorAxis, int]
) -> set[TensorAxis]:
    """Input axes that may be split and are larger than the model's fixed size (with the
    ``halos`` padded on both sides)."""
    out: set[TensorAxis] = set()
    for t in shape.inputs:
        for a in t.axes:
            key = (t.id, a.id)
            s = sizes.get(key)
            if s is None or not isinstance(a.size, FixedSize) or not a.splittable:
                continue
            if s + 2 * halos.get(key, 0) > a.size.size:
                out.add(key)
    return out


def _tile_fixed_axes(
    layout: ModelLayout,
    sample_shape: SampleShape,
    sizes: Mapping[TensorAxis, int],
    tiled: set[TensorAxis],
    border_halos: Mapping[TensorAxis, int],
) -> SampleGrid:
    """Blocks that cut only the ``tiled`` axes (with halo); other axes whole, padded to valid
    sizes (and by ``border_halos`` on both sides)."""
    bs: dict[TensorAxis, int] = {}
    for t in layout.shape.inputs:
        for a in t.axes:
            key = (t.id, a.id)
            if key not in sizes or isinstance(a.size, SizeReference):
                continue
            if key in tiled and isinstance(a.size, FixedSize):
                bs[key] = a.size.size
                continue
            wanted = sizes[key] + 2 * border_halos.get(key, 0)
            v = valid_size(a.size, wanted)
            bs[key] = wanted if v is None else v
    present = layout.present(sample_shape)
    bs.update(resolve_references(present, bs, present.inputs))
    halos = {
        k: h for k, h in block_halos(layout.io_shape).items() if k in tiled or k in border_halos
    }
    return sample_grid(
        sample_shape,
        bs,
        halos,
        splittable=lambda key: layout.shape.axis(key).splittable,
        border=layout.border,
    )


__all__ = ["BlockPlan", "Blocking", "ModelLayout", "flat_sizes", "plan"]
