"""Reading a model's test tensors, fitted to the axes of their descriptions."""

from __future__ import annotations

from collections.abc import Sequence

from bioimageio_core.io import load_tensor
from bioimageio_core.io.axes import fit_to_axes
from bioimageio_core.sources import Root, open_file
from bioimageio_core.spec import InputTensorDescr, ModelDescr, OutputTensorDescr
from bioimageio_core.spec.issues import Issue, Loc
from bioimageio_core.tensor import Tensor
from bioimageio_core.testing.report import error_at, one_line

TensorsById = dict[str, Tensor]
"""Tensor id → test tensor."""


def load_test_tensors(
    model: ModelDescr, root: Root
) -> tuple[TensorsById, TensorsById, list[Issue]]:
    """The test inputs and outputs of ``model`` (files relative to ``root``) and an error for each
    one that is missing (unless optional) or cannot be read."""
    issues: list[Issue] = []
    loaded: list[TensorsById] = [{}, {}]
    sides: list[tuple[str, Sequence[InputTensorDescr | OutputTensorDescr]]] = [
        ("inputs", model.inputs),
        ("outputs", model.outputs),
    ]
    for k, (field, tensors) in enumerate(sides):
        for i, t in enumerate(tensors):
            loc: Loc = (field, i, "test_tensor")
            if t.test_tensor is None:
                if getattr(t, "optional", False):
                    continue
                issues.append(error_at(loc, f"{field[:-1]} {t.id!r} has no test tensor"))
                continue
            axes = tuple(a.id for a in t.axes)
            try:
                path = open_file(root, t.test_tensor.source, t.test_tensor.sha256)
                tensor = load_tensor(path, expected_axes=axes)
                loaded[k][t.id] = fit_to_axes(tensor, axes, name=f"test {field[:-1]} {t.id!r}")
            except Exception as e:
                issues.append(
                    error_at(loc, f"cannot read test tensor {t.test_tensor.source}: {one_line(e)}")
                )
    return loaded[0], loaded[1], issues
