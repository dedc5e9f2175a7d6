"""Checks of a model description that read its files (part of the io checks of loading).

* Test tensors (``.npy``) have one dimension per axis and sizes the axes allow. An input may be
  stored padded by its halo or not, an output cropped by its halo or not (format 0.5.14): the
  candidate sizes of an input axis are ``{n, n + 2·halo}`` (halo mapped to that input axis), of an
  output axis with a halo ``{n, max(0, n − 2·halo)}``; a size reference is computed from the
  referenced tensor's stored size and must be one of the candidates.
* Sample tensors (images) have as many non-singleton dimensions as the axes allow.
* A float test output is not so small that the ``absolute_tolerance`` that applies to it hides
  every mismatch (> 1 % of its largest absolute value): a warning.
* The documentation (when local) has a heading about validation: a warning otherwise.

Only headers are read where that is enough (``.npy``, TIFF); files come through
:func:`bioimageio_core.sources.open_file` (cached, sha256 checked).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from bioimageio_core import shapes
from bioimageio_core.io import open_array
from bioimageio_core.references import file_name, is_http_url
from bioimageio_core.sources import Root, UrlRoot, open_file
from bioimageio_core.spec import (
    BatchAxis,
    ContinuousReproducibilityTolerance,
    DataDependentSize,
    DiscreteReproducibilityTolerance,
    FileDescr,
    InputTensorDescr,
    ModelDescr,
    OutputTensorDescr,
    ParameterizedSize,
    SizeReference,
    output_kind,
)
from bioimageio_core.spec.issues import Issue, Loc

_VALIDATION_HEADING = re.compile(r"^#.*[vV]alidation", re.MULTILINE)


def check_model_files(model: ModelDescr, root: Root) -> Iterator[Issue]:
    """Issues found in the test tensors, sample tensors and documentation of ``model``."""
    stored = dict(_test_tensor_shapes(model, root))
    yield from _check_test_tensor_sizes(model, stored)
    yield from _check_sample_tensors(model, root)
    yield from _check_tolerances_against_test_outputs(model, root)
    yield from _check_documentation(model, root)


def _open(root: Root, fd: FileDescr) -> Path:
    return open_file(root, fd.source, fd.sha256)


def _err(loc: Loc, msg: str) -> Issue:
    return Issue(loc, msg, "error", "io_value_error")


def _warn(loc: Loc, msg: str) -> Issue:
    return Issue(loc, msg, "warning", "io_warning")


def _tensors(
    model: ModelDescr,
) -> Iterator[tuple[str, int, InputTensorDescr | OutputTensorDescr]]:
    for i, t in enumerate(model.inputs):
        yield "inputs", i, t
    for i, o in enumerate(model.outputs):
        yield "outputs", i, o


def _test_tensor_shapes(
    model: ModelDescr, root: Root
) -> Iterator[tuple[str, tuple[Loc, tuple[int, ...]]]]:
    for field, i, t in _tensors(model):
        if t.test_tensor is not None:
            loc: Loc = (field, i, "test_tensor")
            try:
                array = np.load(_open(root, t.test_tensor), mmap_mode="r", allow_pickle=False)
            except Exception:  # missing or unreadable files are reported by the file checks
                continue
            yield t.id, (loc, tuple(int(s) for s in array.shape))


# --- test tensor sizes -----------------------------------------------------------------------------


def _check_test_tensor_sizes(
    model: ModelDescr, stored: Mapping[str, tuple[Loc, tuple[int, ...]]]
) -> Iterator[Issue]:
    spec = shapes.model_shape(model)
    try:
        halos = shapes.input_halos(spec)
    except shapes.ShapeError:
        halos = {}  # a halo that maps to no whole input pixel is a format error reported elsewhere
    sizes: dict[tuple[str, str], int] = {}
    for tensor_id, (loc, shape) in stored.items():
        tensor = spec.tensor(tensor_id)
        if len(shape) != len(tensor.axes):
            yield _err(
                loc,
                f"test tensor of '{tensor_id}' has {len(shape)} dimensions {shape}, but the "
                f"tensor has {len(tensor.axes)} axes ({', '.join(tensor.axis_ids)})",
            )
            continue
        for axis, size in zip(tensor.axes, shape, strict=True):
            sizes[(tensor_id, axis.id)] = size
    for tensor_id, (loc, shape) in stored.items():
        tensor = spec.tensor(tensor_id)
        if len(shape) != len(tensor.axes):
            continue
        is_input = spec.is_input(tensor_id)
        for axis in tensor.axes:
            actual = sizes[(tensor_id, axis.id)]
            if is_input:
                candidates = {actual, actual + 2 * halos.get((tensor_id, axis.id), 0)}
            else:
                candidates = {actual, max(0, actual - 2 * axis.halo)}
            problem = _size_problem(spec, (tensor_id, axis.id), candidates, sizes)
            if problem is not None:
                yield _err(loc, f"test tensor of '{tensor_id}', axis '{axis.id}': {problem}")


def _size_problem(
    spec: shapes.ModelShape,
    key: tuple[str, str],
    candidates: set[int],
    sizes: Mapping[tuple[str, str], int],
) -> str | None:
    axis = spec.axis(key)
    size = axis.size
    shown = " or ".join(str(c) for c in sorted(candidates))
    if size is None:
        return None
    if isinstance(size, shapes.FixedSize):
        return None if size.size in candidates else f"size {shown} is not {size.size}"
    if isinstance(size, shapes.ParameterizedSize):
        if any(size.is_valid(c) for c in candidates):
            return None
        return f"size {shown} is not a valid size {size}"
    if isinstance(size, shapes.DataDependentSize):
        if any(c >= size.min and (size.max is None or c <= size.max) for c in candidates):
            return None
        return f"size {shown} is outside [{size.min}, {size.max}]"
    if isinstance(size, shapes.SizeReference):
        ref_size = sizes.get((size.tensor_id, size.axis_id))
        if ref_size is None:
            return None  # the referenced tensor has no (readable) test tensor
        expected = shapes.referenced_size(
            ref_size, Fraction(shapes.scale_ratio(spec, key)), size.offset
        )
        if expected in candidates:
            return None
        return (
            f"size {shown} does not follow the reference to {size.tensor_id}.{size.axis_id} "
            f"(size {ref_size} there gives {expected})"
        )
    return None


# --- sample tensors -------------------------------------------------------------------------------


def _check_sample_tensors(model: ModelDescr, root: Root) -> Iterator[Issue]:
    for field, i, t in _tensors(model):
        if t.sample_tensor is not None:
            loc: Loc = (field, i, "sample_tensor")
            try:
                with open_array(_open(root, t.sample_tensor)) as opened:
                    shape = tuple(int(s) for s in opened.shape)
            except ImportError as e:
                yield _warn(loc, f"the sample tensor could not be checked: {e}")
                continue
            except Exception:  # missing files are reported by the file checks
                continue
            n_dims = sum(1 for s in shape if s != 1)
            n_max = n_min = len(t.axes)
            for axis in t.axes:
                size = getattr(axis, "size", None)
                if isinstance(axis, BatchAxis):
                    n_min -= 1
                elif isinstance(size, int):
                    n_min -= size == 1
                elif isinstance(size, ParameterizedSize | DataDependentSize):
                    n_min -= size.min == 1
                elif isinstance(size, SizeReference):
                    if size.axis_id != axis.id:
                        yield _warn(
                            loc,
                            f"axis '{axis.id}' of '{t.id}' has its size from axis "
                            f"'{size.axis_id}': the sample tensor's dimensions cannot be matched "
                            "to the axes by name",
                        )
                    n_min -= size.offset < 2
            n_min = max(0, n_min)
            if not n_min <= n_dims <= n_max:
                yield _err(
                    loc,
                    f"sample tensor of '{t.id}' has {n_dims} dimensions that are not 1 (shape "
                    f"{shape}); its axes allow {n_min} to {n_max}",
                )


# --- tolerances ----------------------------------------------------------------------------------


def _check_tolerances_against_test_outputs(model: ModelDescr, root: Root) -> Iterator[Issue]:
    """Each output against the first tolerance entry assigned to it (weight formats ignored)."""
    entries = model.config.bioimageio.reproducibility_tolerance
    assigned: dict[str, int] = {}
    for k, entry in enumerate(entries):
        for o in model.outputs:
            if o.id in assigned:
                continue
            if isinstance(entry, ContinuousReproducibilityTolerance):
                applies = output_kind(o.dtype) == "continuous"
            elif isinstance(entry, DiscreteReproducibilityTolerance):
                applies = output_kind(o.dtype) == "discrete"
            else:
                applies = not entry.output_ids or o.id in entry.output_ids
            if applies:
                assigned[o.id] = k
    for i, o in enumerate(model.outputs):
        if o.id not in assigned or o.test_tensor is None:
            continue
        entry = entries[assigned[o.id]]
        if entry.absolute_tolerance <= 0:
            continue
        try:
            data = np.load(_open(root, o.test_tensor), mmap_mode="r", allow_pickle=False)
            largest = float(np.max(np.abs(data))) if data.size else 0.0
        except Exception:
            continue
        if entry.absolute_tolerance > 0.01 * largest:
            yield _warn(
                ("config", "bioimageio", "reproducibility_tolerance", assigned[o.id],
                 "absolute_tolerance"),
                f"absolute_tolerance {entry.absolute_tolerance:g} is more than 1 % of the largest "
                f"absolute value ({largest:g}) of the test output of '{o.id}' (outputs[{i}]): "
                "a reproduction could be wrong everywhere and still pass; give a smaller "
                "absolute_tolerance for this output",
            )  # fmt: skip


# --- documentation ------------------------------------------------------------------------------


def _check_documentation(model: Any, root: Root) -> Iterator[Issue]:
    doc = getattr(model, "documentation", None)
    if doc is None or not hasattr(doc, "source") or not file_name(doc.source).endswith(".md"):
        return
    if is_http_url(doc.source) or isinstance(root, UrlRoot):
        return  # validation never downloads documentation (only looks it up)
    try:
        text = _open(root, doc).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        yield _warn(("documentation",), "the documentation is not UTF-8 text")
        return
    except Exception:
        return
    if _VALIDATION_HEADING.search(text) is None:
        yield _warn(
            ("documentation",),
            "the documentation has no heading about validation (a line starting with '#' that "
            "mentions 'validation'); say how the model was validated",
        )
