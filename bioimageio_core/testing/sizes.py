"""Parameterized input sizes: which cases to run, inputs resized to them, and the check that the
outputs have the sizes the description predicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bioimageio_core.shapes import (
    DataDependentSize,
    FixedSize,
    ModelShape,
    ParameterizedSize,
    output_sizes,
)
from bioimageio_core.spec.issues import Issue
from bioimageio_core.tensor import Tensor
from bioimageio_core.testing.report import error_at


def check_output_sizes(
    spec: ModelShape,
    input_sizes: Mapping[tuple[str, str], int],
    outputs: Mapping[str, Mapping[str, int]],
    batch_size: int | None = None,
) -> list[Issue]:
    """Errors for outputs (``{tensor id: {axis id: size}}``) whose sizes the description does not
    predict for these input sizes: a known size must match, a data dependent one lie in its range.
    """
    expected = output_sizes(spec, input_sizes, batch_size)
    issues: list[Issue] = []
    for i, t in enumerate(spec.outputs):
        actual = outputs.get(t.id)
        if actual is None:
            issues.append(error_at(("outputs", i), f"the model returned no output {t.id!r}"))
            continue
        for j, a in enumerate(t.axes):
            problem = _size_problem(a.size, actual.get(a.id), expected.get((t.id, a.id)))
            if problem:
                issues.append(
                    error_at(("outputs", i, "axes", j), f"output {t.id!r} axis {a.id!r}: {problem}")
                )
    return issues


def _size_problem(size: Any, got: int | None, want: int | None) -> str | None:
    if got is None:
        return "missing in the output"
    if want is not None:
        return None if got == want else f"size {got}, expected {want}"
    if isinstance(size, DataDependentSize):
        if got < size.min or (size.max is not None and got > size.max):
            return f"size {got} is outside [{size.min}, {size.max}]"
    return None


def size_cases(spec: Any) -> list[tuple[int, int]]:
    """``(batch size, blocksize parameter n)`` pairs to run, as bioimageio.core chooses them.

    ``n`` in 0, 1, 2 when an input axis is parameterized (else 0); batch sizes: the fixed batch
    sizes present, else 1 and 2 when there are batch axes, else 1.
    """
    axes = [a for t in spec.inputs for a in t.axes]
    ns = [0, 1, 2] if any(isinstance(a.size, ParameterizedSize) for a in axes) else [0]
    batch_axes = [a for t in (*spec.inputs, *spec.outputs) for a in t.axes if a.type == "batch"]
    fixed = sorted({a.size.size for a in batch_axes if isinstance(a.size, FixedSize)})
    batches = fixed or ([1, 2] if batch_axes else [1])
    return [(b, n) for b in batches for n in ns]


def resize_to(tensor: Tensor, sizes: Mapping[str, int]) -> Tensor:
    """Centre-crop or symmetrically pad (left gets ``d // 2``) each axis to ``sizes``."""
    crop: dict[str, tuple[int, int]] = {}
    pad: dict[str, tuple[int, int]] = {}
    for axis, target in sizes.items():
        if axis not in tensor.dims:
            continue
        current = tensor.sizes[axis]
        if target < current:
            start = (current - target) // 2
            crop[axis] = (start, start + target)
        elif target > current:
            d = target - current
            pad[axis] = (d // 2, d - d // 2)
    if crop:
        tensor = tensor.crop(crop)
    if pad:
        tensor = tensor.pad(pad, mode="symmetric")
    return tensor
