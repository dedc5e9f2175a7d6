"""Stitch: from a block's model outputs to the inner regions it owns in each output.

Only the inner region of an output block is kept (blocks overlap by their halo; each output
element is owned by exactly one block), so it is cropped first; postprocessing that runs per block
(:mod:`~bioimageio_core.execution.pointwise`) then runs on the inner region only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bioimageio_core.blocks import Block, OutputBlockMapper, SampleBlock, inner_data
from bioimageio_core.errors import PluginError
from bioimageio_core.execution.read import Array
from bioimageio_core.ops import BoundOp, apply_ops
from bioimageio_core.shapes import ModelShape, ShapeError, TensorAxis, fill_data_dependent_sizes
from bioimageio_core.stats import Measure, MeasureValue
from bioimageio_core.tensor import Tensor

Piece = tuple[Block, Array]
"""An output block and the data of its inner region."""


class Stitcher:
    """Maps each block's outputs to their place in the whole outputs.

    ``io_shape``: the outputs as the model returns them; ``output_sizes``: of the whole outputs
    (data dependent sizes, None, are taken from the first block's outputs). ``postprocessing``
    (with the statistics ``stat``) runs on every inner region: give it only when it may run per
    block. ``reshaped``: ids of outputs whose postprocessing changes their shape (for errors).
    """

    def __init__(
        self,
        io_shape: ModelShape,
        output_sizes: Mapping[TensorAxis, int | None],
        *,
        weights_format: str,
        postprocessing: Sequence[BoundOp] = (),
        stat: Mapping[Measure, MeasureValue] | None = None,
        reshaped: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.io_shape = io_shape
        self.output_sizes: dict[TensorAxis, int | None] = dict(output_sizes)
        self.weights_format = weights_format
        self.postprocessing = tuple(postprocessing)
        self.stat: Mapping[Any, Any] = stat or {}
        self.reshaped = dict(reshaped or {})
        self.output_axes = {t.id: t.axis_ids for t in io_shape.outputs}
        self._mapper: OutputBlockMapper | None = None

    def __call__(self, block: SampleBlock, outputs: Mapping[str, Array]) -> dict[str, Piece]:
        """The output blocks of the input ``block`` and the inner regions of ``outputs`` (the
        model's outputs of that block, by output id), postprocessed if asked for."""
        mapper = self._mapper or self._make_mapper(outputs)
        out_blocks = mapper(block)
        inner = {oid: self._inner(oid, data, out_blocks[oid]) for oid, data in outputs.items()}
        if self.postprocessing:
            processed = apply_ops(
                self.postprocessing,
                {oid: Tensor(d, self.output_axes[oid]) for oid, d in inner.items()},
                self.stat,
            )
            inner = {oid: t.data for oid, t in processed.items() if oid in inner}
        return {oid: (out_blocks[oid], data) for oid, data in inner.items()}

    def _make_mapper(self, outputs: Mapping[str, Array]) -> OutputBlockMapper:
        """The mapper, once every output size is known (data dependent ones from ``outputs``)."""
        if any(v is None for v in self.output_sizes.values()):
            self.output_sizes = dict(
                fill_data_dependent_sizes(
                    self.io_shape, self.output_sizes, {o: d.shape for o, d in outputs.items()}
                )
            )
        self._mapper = OutputBlockMapper(self.io_shape, self.output_sizes)
        return self._mapper

    def _inner(self, output_id: str, data: Array, block: Block) -> Array:
        """The inner region of a raw output block; a clear error when the shape is wrong."""
        try:
            return inner_data(data, block)
        except ShapeError as e:
            steps = self.reshaped.get(output_id)
            reason = f" (the input of its postprocessing {', '.join(steps)})" if steps else ""
            raise PluginError(
                f"the {self.weights_format} model returned output {output_id!r} with shape "
                f"{tuple(data.shape)}, expected {block.shape}{reason}: {e.message}",
                hint="check the output's axes in the description (and the kwargs of its "
                "postprocessing) against what the model returns",
            ) from None


__all__ = ["Piece", "Stitcher"]
