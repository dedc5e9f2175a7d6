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

Modules: ``regions`` (value types), ``split`` (cutting a sample), ``data`` (reading and writing
block data), ``outputs`` (output blocks of an input block), ``batching``.
"""

from bioimageio_core.blocks.batching import batched
from bioimageio_core.blocks.data import (
    allocate_outputs,
    block_data,
    inner_data,
    output_shape,
    sample_block_data,
    write_block,
    write_blocks,
    write_inner,
)
from bioimageio_core.blocks.outputs import OutputBlockMapper, map_axis_block, map_output_blocks
from bioimageio_core.blocks.regions import (
    AxisBlock,
    Block,
    SampleBlock,
    SampleShape,
    SupportsSetItem,
)
from bioimageio_core.blocks.split import (
    AxisSplit,
    BorderMode,
    SampleGrid,
    axis_split,
    count_blocks,
    model_sample_blocks,
    model_sample_grid,
    padded_sample_block,
    padded_sample_grid,
    sample_grid,
    split_axis,
    split_sample_shape,
)

__all__ = [
    "AxisBlock",
    "AxisSplit",
    "Block",
    "BorderMode",
    "OutputBlockMapper",
    "SampleBlock",
    "SampleGrid",
    "SampleShape",
    "SupportsSetItem",
    "allocate_outputs",
    "axis_split",
    "batched",
    "block_data",
    "count_blocks",
    "inner_data",
    "map_axis_block",
    "map_output_blocks",
    "output_shape",
    "model_sample_blocks",
    "model_sample_grid",
    "padded_sample_block",
    "padded_sample_grid",
    "sample_block_data",
    "sample_grid",
    "split_axis",
    "split_sample_shape",
    "write_block",
    "write_blocks",
    "write_inner",
]
