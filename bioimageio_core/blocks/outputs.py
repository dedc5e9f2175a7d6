"""Output blocks of an input block: how each output axis follows the inputs it references."""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction

import attrs

from bioimageio_core.blocks.regions import AxisBlock, Block, SampleBlock
from bioimageio_core.shapes import ModelShape, ShapeError, SizeReference, TensorAxis, scale_ratio


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
