"""Hypothesis strategies shared by the test suite."""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import attrs
import numpy as np
from hypothesis import strategies as st

from bioimageio_core.shapes import (
    AxisShape,
    FixedSize,
    ModelShape,
    ParameterizedSize,
    SizeReference,
    TensorShape,
)
from bioimageio_core.tensor import PAD_MODES

pad_modes = st.sampled_from(PAD_MODES)
parameterized_sizes = st.builds(ParameterizedSize, min=st.integers(1, 64), step=st.integers(1, 32))


@st.composite
def small_arrays(draw: st.DrawFn, max_dims: int = 3, max_side: int = 6) -> np.ndarray[Any, Any]:
    """Float arrays with 1..max_dims axes of length 1..max_side."""
    shape = draw(st.lists(st.integers(1, max_side), min_size=1, max_size=max_dims))
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).normal(size=shape)


@st.composite
def axis_split_cases(draw: st.DrawFn) -> tuple[int, int, int]:
    """``(size, block_size, halo)`` with a non-empty inner block region."""
    halo = draw(st.integers(0, 4))
    block = draw(st.integers(2 * halo + 1, 2 * halo + 12))
    size = draw(st.integers(1, 40))
    return size, block, halo


@attrs.frozen
class AxisCase:
    """One spatial axis of a :class:`ConvCase`: conv radius ``k`` (input pixels), output/input
    scale ratio ``r``, output crop ``c`` per side (offset ``-2c``; ``c < 0`` pads), output halo
    ``halo``."""

    id: str
    size: int
    k: int
    r: Fraction
    c: int
    halo: int
    unit: int  # multiple that sizes and blocks must be (2 when downsampling by 2)


@attrs.frozen
class ConvCase:
    """A model that correlates, resamples and crops, plus a sample for it."""

    model: ModelShape
    batch: int
    channels: int
    axes: tuple[AxisCase, ...]
    kernel: np.ndarray[Any, Any]
    data: np.ndarray[Any, Any]
    ns: int
    block_batch: int

    @property
    def input_dims(self) -> tuple[str, ...]:
        return ("batch", "channel", *(a.id for a in self.axes))

    def run(
        self, array: np.ndarray[Any, Any], border: str = "mirror"
    ) -> np.ndarray[Any, Any]:
        """The "model": correlate (``border``: scipy's mode at the array edge, e.g. "mirror" or
        "constant" for the zero padding of typical networks), resample by ``r``, crop ``c`` per
        side."""
        from scipy import ndimage

        out = ndimage.correlate(array, self.kernel, mode=border)
        for i, a in enumerate(self.axes, start=2):
            if a.r == 2:
                out = np.repeat(out, 2, axis=i)
            elif a.r == Fraction(1, 2):
                out = np.take(out, np.arange(0, out.shape[i] - 1, 2), axis=i)
            if a.c > 0:
                out = np.take(out, np.arange(a.c, out.shape[i] - a.c), axis=i)
            elif a.c < 0:
                widths = [(0, 0)] * out.ndim
                widths[i] = (-a.c, -a.c)
                out = np.pad(out, widths, mode="reflect")
        return out


@st.composite
def conv_cases(draw: st.DrawFn, grow: bool = False) -> ConvCase:
    """With ``grow``, the last axis has a positive offset (the model pads its output)."""
    n_axes = draw(st.integers(1, 2))
    axis_ids = ("y", "x")[2 - n_axes :]
    axes: list[AxisCase] = []
    for axis_id in axis_ids:
        grow_here = grow and axis_id == "x"
        r = (
            Fraction(1)
            if grow_here
            else draw(st.sampled_from([Fraction(1), Fraction(2), Fraction(1, 2)]))
        )
        unit = 2 if r < 1 else 1
        k = 0 if grow_here else draw(st.integers(0, 2))
        # a model that grows its output (c < 0, positive offset) is compared with the whole
        # image only where the padding it adds does not depend on the block (no conv, r = 1)
        c = -1 if grow_here else draw(st.integers(-1 if k == 0 and r == 1 else 0, 2))
        halo = max(0, math.ceil(k * r) - c) + draw(st.integers(0, 1))
        if r == 2 and halo % 2:
            halo += 1
        min_size = max(1, math.ceil(Fraction(2 * c + 1) / r))
        size = unit * draw(st.integers(math.ceil(min_size / unit), 14))
        axes.append(AxisCase(axis_id, size, k, r, c, halo, unit))
    batch = draw(st.integers(1, 2))
    channels = draw(st.integers(1, 2))
    in_axes = [
        AxisShape("batch", "batch", None),
        AxisShape("channel", "channel", FixedSize(channels)),
    ]
    out_axes = list(in_axes)
    for a in axes:
        e = int(a.halo / a.r) + math.ceil(Fraction(max(a.c, 0)) / a.r)
        in_axes.append(AxisShape(a.id, "space", ParameterizedSize(2 * e + 2 * a.unit, 2 * a.unit)))
        out_axes.append(
            AxisShape(
                a.id,
                "space",
                SizeReference("raw", a.id, -2 * a.c),
                scale=float(1 / a.r),
                halo=a.halo,
            )
        )
    model = ModelShape(inputs=(TensorShape("raw", in_axes),), outputs=(TensorShape("out", out_axes),))
    kernel_shape = (1, 1, *(2 * a.k + 1 for a in axes))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kernel = rng.normal(size=kernel_shape)
    data = rng.normal(size=(batch, channels, *(a.size for a in axes)))
    return ConvCase(
        model=model,
        batch=batch,
        channels=channels,
        axes=tuple(axes),
        kernel=kernel,
        data=data,
        ns=draw(st.integers(0, 4)),
        block_batch=draw(st.integers(1, batch)),
    )


@st.composite
def identity_cases(
    draw: st.DrawFn,
) -> tuple[ModelShape, dict[str, np.ndarray[Any, Any]], dict[tuple[str, str], int]]:
    """A two-input model whose outputs are its inputs (halo and all), sample data and a block
    shape (halo included) per input axis."""
    axis_ids = draw(st.sampled_from([("x",), ("y", "x"), ("z", "y", "x")]))
    sizes = {a: draw(st.integers(1, 12)) for a in axis_ids}
    halos = {a: draw(st.integers(0, 3)) for a in axis_ids}
    inputs, outputs = [], []
    data: dict[str, np.ndarray[Any, Any]] = {}
    block_shape: dict[tuple[str, str], int] = {}
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    blocks = {a: 2 * halos[a] + draw(st.integers(1, 8)) for a in axis_ids}
    for i in range(2):
        in_id, out_id = f"in{i}", f"out{i}"
        in_axes = [AxisShape("channel", "channel", FixedSize(1 + i))]
        out_axes = [AxisShape("channel", "channel", SizeReference(in_id, "channel"))]
        for a in axis_ids:
            in_axes.append(AxisShape(a, "space", ParameterizedSize(1, 1)))
            out_axes.append(AxisShape(f"o{a}", "space", SizeReference(in_id, a), halo=halos[a]))
            block_shape[(in_id, a)] = blocks[a]
        inputs.append(TensorShape(in_id, in_axes))
        outputs.append(TensorShape(out_id, out_axes))
        data[in_id] = rng.normal(size=(1 + i, *(sizes[a] for a in axis_ids)))
    return ModelShape(inputs, outputs), data, block_shape


def scales() -> st.SearchStrategy[Fraction]:
    """Positive scales with small numerators and denominators."""
    return st.builds(Fraction, st.integers(1, 12), st.integers(1, 12))


ArrayFn = Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]]


def key_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (dict keys, list indices) into the nested dicts and lists ``node``, parents
    before children; the empty path of ``node`` itself is left out."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(key_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(key_paths(value, (*prefix, i)))
    return found


def parent_at(node: Any, path: tuple[Any, ...]) -> Any:
    """The dict or list in ``node`` that holds the value at ``path`` (a :func:`key_paths` path)."""
    for key in path[:-1]:
        node = node[key]
    return node
