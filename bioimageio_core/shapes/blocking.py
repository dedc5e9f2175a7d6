"""What blocking needs from a model: the halo of each input axis and the input block shape."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from fractions import Fraction

from bioimageio_core.shapes.arguments import BlocksizeParameter, blocksize_n
from bioimageio_core.shapes.sizes import resolve_references, scale_ratio
from bioimageio_core.shapes.types import (
    AxisShape,
    FixedSize,
    ModelShape,
    ParameterizedSize,
    ShapeError,
    SizeReference,
    TensorAxis,
    TensorShape,
)

# --- halo -------------------------------------------------------------------------------------


def _input_refs(
    model: ModelShape,
) -> Iterable[tuple[TensorShape, AxisShape, SizeReference, Fraction]]:
    for t in model.outputs:
        for a in t.axes:
            if isinstance(a.size, SizeReference) and model.is_input(a.size.tensor_id):
                yield t, a, a.size, scale_ratio(model, (t.id, a.id))


def _integral(value: Fraction, what: str) -> int:
    if value.denominator != 1:
        raise ShapeError(
            f"{what} is {float(value):g}, not a whole number of pixels",
            hint="choose a halo that is a multiple of the scale ratio between the axes",
        )
    return int(value)


def input_halos(model: ModelShape) -> dict[TensorAxis, int]:
    """Halo per referenced input axis: ``halo_out * out.scale / ref.scale``, max over outputs.

    Keyed by the REFERENCED input ``(tensor_id, axis_id)``. A halo that does not map to whole
    input pixels raises :class:`ShapeError`.
    """
    halos: dict[TensorAxis, int] = {}
    for t, a, ref, ratio in _input_refs(model):
        if not a.halo:
            continue
        h = _integral(Fraction(a.halo) / ratio, f"halo of output {t.id}.{a.id} in input pixels")
        key = (ref.tensor_id, ref.axis_id)
        halos[key] = max(halos.get(key, 0), h)
    return halos


def block_halos(model: ModelShape) -> dict[TensorAxis, int]:
    """Input context per referenced input axis that blocking needs on each side of a block.

    It is :func:`input_halos` plus, for a negative size-reference offset (an output the model
    already cropped, as "valid" convolutions do), ``ceil(-offset/2)`` output pixels mapped to the
    input (rounded up). An input axis that references another input axis gets the larger of both
    halos (mapped through the reference), so both tensors are cut on the same grid; so do input
    axes of the same id and scale in different inputs.
    """
    halos = dict(input_halos(model))
    for _t, a, ref, ratio in _input_refs(model):
        key = (ref.tensor_id, ref.axis_id)
        base = Fraction(a.halo) / ratio
        crop = (-ref.offset + 1) // 2 if ref.offset < 0 else 0
        total = math.ceil(base + Fraction(crop) / ratio)
        halos[key] = max(halos.get(key, 0), total)
    links = [
        ((t.id, a.id), (a.size.tensor_id, a.size.axis_id), scale_ratio(model, (t.id, a.id)))
        for t in model.inputs
        for a in t.axes
        if isinstance(a.size, SizeReference) and model.is_input(a.size.tensor_id)
    ]
    for key, ref_key, ratio in links:
        h_ref, h = halos.get(ref_key, 0), halos.get(key, 0)
        halos[key] = max(h, math.ceil(h_ref * ratio))
        halos[ref_key] = max(h_ref, math.ceil(h / ratio))
    # inputs with an axis of the same id and scale (y of two images, say) are cut on one grid:
    # give them the same halo, or their inner regions (and so their block counts) would differ
    shared: dict[tuple[str, float], list[TensorAxis]] = {}
    for t in model.inputs:
        for a in t.axes:
            if a.type in ("space", "time", "index"):
                shared.setdefault((a.id, a.scale), []).append((t.id, a.id))
    for keys in shared.values():
        widest = max(halos.get(k, 0) for k in keys)
        for k in keys:
            halos[k] = widest
    return {k: v for k, v in halos.items() if v}


# --- block shapes -----------------------------------------------------------------------------


def block_shape(
    model: ModelShape,
    sample_sizes: Mapping[TensorAxis, int],
    ns: BlocksizeParameter = 10,
    batch_size: int | None = None,
) -> dict[TensorAxis, int]:
    """Input block shape (halo included) for blockwise prediction of one sample.

    Parameterized axes use ``ns`` but never more than the smallest valid size that holds the
    whole axis plus its halo in one block; axes that may not be split get the smallest valid
    size >= the sample. Batch axes use ``batch_size`` (default: the sample's batch size).
    """
    halos = block_halos(model)
    shape: dict[TensorAxis, int] = {}
    for t in model.inputs:
        for a in t.axes:
            key = (t.id, a.id)
            if isinstance(a.size, SizeReference):
                continue
            s = sample_sizes.get(key)
            if s is None:
                raise ShapeError(f"no size given for input {t.id!r} axis {a.id!r}")
            if a.type == "batch":
                b = s if batch_size is None else batch_size
                if isinstance(a.size, FixedSize):
                    b = a.size.size
                shape[key] = b
            elif isinstance(a.size, FixedSize):
                shape[key] = a.size.size
            elif isinstance(a.size, ParameterizedSize):
                whole = max(0, a.size.get_n(s + 2 * halos.get(key, 0)))
                n = whole if not a.splittable else min(blocksize_n(ns, key), whole)
                shape[key] = a.size.size(n)
    shape.update(resolve_references(model, shape, model.inputs))
    return shape
