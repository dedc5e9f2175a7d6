"""Raw model description 0.3.x / 0.4.x → raw 0.5 model description."""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from typing import Any

from bioimageio_core.spec.issues import Issue, Loc
from bioimageio_core.spec.legacy._common import (
    TARGET_FORMAT_VERSION,
    IssueLog,
    attachment_files,
    is_number,
    parse_format_version,
    suffix_of,
)
from bioimageio_core.spec.legacy.axes import (
    AxisSize,
    input_axes,
    input_sizes,
    output_axes,
    parse_axes,
)
from bioimageio_core.spec.legacy.processing import convert_steps
from bioimageio_core.spec.legacy.upgrade import wrap_file_fields
from bioimageio_core.spec.legacy.upgrade_v0_4 import upgrade_to_v0_4
from bioimageio_core.spec.legacy.weights import convert_weights

#: 0.4-only top-level fields with no place in 0.5 (informational; dropped)
_DROPPED = ("download_url", "rdf_source", "version_number")
#: top-level fields rebuilt by the conversion
_REBUILT = (
    "format_version",
    "inputs",
    "outputs",
    "weights",
    "test_inputs",
    "test_outputs",
    "sample_inputs",
    "sample_outputs",
    "attachments",
    "parent",
    "training_data",
    "name",
)
_INPUT_DTYPES_V0_4 = ("float32", "uint8", "uint16")
_OUTPUT_DTYPES = (
    "float32",
    "float64",
    "uint8",
    "int8",
    "uint16",
    "int16",
    "uint32",
    "int32",
    "uint64",
    "int64",
    "bool",
)
_SAMPLE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".gif")
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_+\- ()]")


def convert_model_to_v0_5(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[Issue]]:
    """Convert a raw model description of format 0.3.x/0.4.x to a raw 0.5 description.

    0.5 descriptions are returned as a copy, unchanged. Problems are returned as issues located
    at the fields of ``raw``; the result is only meaningful when no issue is an error.
    """
    log = IssueLog()
    try:
        data = convert(raw, log)
    except Exception as e:  # a safety net: conversion reports, it never raises
        log.error((), f"the description could not be converted ({type(e).__name__}: {e})")
        data = dict(raw) if isinstance(raw, Mapping) else {}
    return data, log.issues


def convert(raw: Mapping[str, Any], log: IssueLog) -> dict[str, Any]:
    """The conversion proper (may raise on bugs; used directly by tests)."""
    data: dict[str, Any] = copy.deepcopy(dict(raw))
    fv = parse_format_version(data.get("format_version"))
    if fv is None:
        log.error(
            ("format_version",),
            f"format_version must be a version string such as "
            f"'0.4.10' (got {data.get('format_version')!r})",
        )
        return data
    if fv >= (0, 5, 0):
        return data
    if fv < (0, 3, 0):
        log.error(
            ("format_version",),
            f"model descriptions of format {data['format_version']} "
            "are not supported; update the description to format 0.4 or 0.5",
        )
        return data
    if data.get("type", "model") != "model":
        log.error(("type",), f"only model descriptions can be converted (got {data.get('type')!r})")
        return data
    upgrade_to_v0_4(data, fv, log)
    return _convert_v0_4(data, log)


def _convert_v0_4(data: dict[str, Any], log: IssueLog) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in data.items() if k not in _REBUILT + _DROPPED}
    out["format_version"] = TARGET_FORMAT_VERSION
    out["type"] = "model"
    if "name" in data:
        out["name"] = _name(data["name"], log)
    attachments = _attachments(data.get("attachments"), log)
    for field in ("parent", "training_data"):
        if field in data:
            out[field] = _linked(data[field])
    inputs, sizes = _inputs(data, log)
    outputs = _outputs(data, sizes, log)
    weights = convert_weights(data.get("weights"), ("weights",), log)
    samples = _move_test_and_sample_files(data, inputs, outputs, log)
    attachments.extend(samples)
    if weights is not None:
        out["weights"] = weights.weights
        attachments.extend(a for a in weights.attachments if a not in attachments)
    else:
        out["weights"] = {}
    out["inputs"] = inputs
    out["outputs"] = outputs
    if attachments:
        out["attachments"] = attachments
    wrap_file_fields(out)  # format 0.5.11+: covers, documentation, icon files are {source}
    return out


def _name(value: object, log: IssueLog) -> object:
    if not isinstance(value, str):
        return value
    fixed = " ".join(_NAME_CHARS.sub(" ", value).split())
    if fixed != value:
        log.warn(
            ("name",),
            f"name {value!r} written as {fixed!r}: 0.5 names use letters, digits, spaces and _+-()",
        )
    return fixed


def _attachments(value: object, log: IssueLog) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return [{"source": f} if isinstance(f, str) else f for f in value]
    if not isinstance(value, Mapping):
        log.error(("attachments",), "attachments must be a mapping {files: [...]}")
        return []
    files = value.get("files", [])
    if not isinstance(files, list):
        log.error(("attachments", "files"), "attachments.files must be a list of files")
        return []
    return attachment_files(value, files, log, "0.5")


def _linked(value: object) -> object:
    if not isinstance(value, Mapping):
        return value
    out = {k: v for k, v in value.items() if k != "version_number"}
    number = value.get("version_number")
    if number is not None and isinstance(out.get("id"), str):
        out["id"] = f"{out['id']}/{number}"
    return out


def _data(
    dtype: object, bounds: object, loc: Loc, allowed: tuple[str, ...], log: IssueLog
) -> dict[str, Any] | None:
    if dtype not in allowed:
        log.error(
            (*loc, "data_type"), f"data_type must be one of {', '.join(allowed)} (got {dtype!r})"
        )
        return None
    if dtype == "bool":
        return {"type": "bool", "values": [False, True]}
    out: dict[str, Any] = {"type": dtype}
    if bounds is None:
        return out
    if not isinstance(bounds, list) or len(bounds) != 2 or not all(is_number(b) for b in bounds):
        log.error((*loc, "data_range"), f"data_range must be two numbers (got {bounds!r})")
        return None
    lo, hi = (float(b) if math.isfinite(b) else None for b in bounds)
    if lo is not None and hi is not None and lo > hi:
        log.error((*loc, "data_range"), f"data_range lower bound {lo} exceeds upper bound {hi}")
        return None
    out["range"] = [lo, hi]
    return out


def _tensor_list(data: Mapping[str, Any], kind: str, log: IssueLog) -> list[Any]:
    tensors = data.get(kind)
    if not isinstance(tensors, list) or not tensors:
        log.error((kind,), f"'{kind}' must be a non-empty list of tensor descriptions")
        return []
    return tensors


def _tensor_name(tensor: Mapping[str, Any], loc: Loc, seen: set[str], log: IssueLog) -> str | None:
    name = tensor.get("name")
    if not isinstance(name, str) or not name:
        log.error((*loc, "name"), f"tensor name must be a non-empty string (got {name!r})")
        return None
    if name in seen:
        log.error(
            (*loc, "name"),
            f"duplicate tensor name {name!r} (names must be unique across inputs and outputs)",
        )
        return None
    seen.add(name)
    return name


def _inputs(data: Mapping[str, Any], log: IssueLog) -> tuple[list[Any], dict[str, list[AxisSize]]]:
    out: list[Any] = []
    sizes: dict[str, list[AxisSize]] = {}
    seen: set[str] = set()
    for i, tensor in enumerate(_tensor_list(data, "inputs", log)):
        loc: Loc = ("inputs", i)
        if not isinstance(tensor, Mapping):
            log.error(loc, "a tensor description must be a mapping")
            continue
        name = _tensor_name(tensor, loc, seen, log)
        axes = parse_axes(tensor.get("axes"), (*loc, "axes"), log)
        tensor_sizes = (
            input_sizes(axes, tensor.get("shape"), (*loc, "shape"), log) if axes else None
        )
        dtype = tensor.get("data_type")
        if dtype in _OUTPUT_DTYPES and dtype not in _INPUT_DTYPES_V0_4 and dtype != "bool":
            log.warn(
                (*loc, "data_type"),
                f"format 0.4 allows inputs of type {', '.join(_INPUT_DTYPES_V0_4)} only; "
                f"{dtype!r} is accepted as format 0.5 allows it",
            )
        allowed = tuple(t for t in _OUTPUT_DTYPES if t != "bool")
        data_descr = _data(dtype, tensor.get("data_range"), loc, allowed, log)
        steps = (
            convert_steps(tensor.get("preprocessing"), axes or "", (*loc, "preprocessing"), log)
            if axes
            else None
        )
        if name is None or tensor_sizes is None:
            continue
        sizes[name] = tensor_sizes
        if data_descr is None or steps is None:
            continue
        converted: dict[str, Any] = {"id": name}
        if tensor.get("description"):
            converted["description"] = tensor["description"]
        converted["axes"] = input_axes(tensor_sizes)
        converted["data"] = data_descr
        converted["preprocessing"] = [
            {"id": "ensure_dtype", "kwargs": {"dtype": data_descr["type"]}},
            *steps,
            {"id": "ensure_dtype", "kwargs": {"dtype": "float32"}},
        ]
        out.append(converted)
    return out, sizes


def _outputs(data: Mapping[str, Any], sizes: dict[str, list[AxisSize]], log: IssueLog) -> list[Any]:
    tensors = _tensor_list(data, "outputs", log)
    seen = {str(k) for k in sizes}
    known: dict[str, list[AxisSize]] = dict(sizes)
    converted_by_index: dict[int, dict[str, Any]] = {}
    names: dict[int, str] = {}
    for i, tensor in enumerate(tensors):
        loc: Loc = ("outputs", i)
        if not isinstance(tensor, Mapping):
            log.error(loc, "a tensor description must be a mapping")
            continue
        name = _tensor_name(tensor, loc, seen, log)
        if name is not None:
            names[i] = name
    # fixed-shape outputs first, so implicit shapes may reference them
    order = sorted(names, key=lambda i: isinstance(tensors[i].get("shape"), Mapping))
    for i in order:
        tensor, name, loc = tensors[i], names[i], ("outputs", i)
        axes = parse_axes(tensor.get("axes"), (*loc, "axes"), log)
        data_descr = _data(
            tensor.get("data_type"), tensor.get("data_range"), loc, _OUTPUT_DTYPES, log
        )
        if axes is None:
            continue
        converted_axes = output_axes(name, axes, tensor, known, loc, log)
        steps = convert_steps(tensor.get("postprocessing"), axes, (*loc, "postprocessing"), log)
        if converted_axes is None or data_descr is None or steps is None:
            continue
        if not isinstance(tensor.get("shape"), Mapping):
            known[name] = converted_axes.sizes
        converted: dict[str, Any] = {"id": name}
        if tensor.get("description"):
            converted["description"] = tensor["description"]
        converted["axes"] = converted_axes.axes
        converted["data"] = data_descr
        if not steps or steps[-1]["id"] not in ("binarize", "ensure_dtype"):
            steps.append({"id": "ensure_dtype", "kwargs": {"dtype": data_descr["type"]}})
        converted["postprocessing"] = steps
        converted_by_index[i] = converted
    return [converted_by_index[i] for i in sorted(converted_by_index)]


def _move_test_and_sample_files(
    data: Mapping[str, Any], inputs: list[Any], outputs: list[Any], log: IssueLog
) -> list[Any]:
    """test_inputs/outputs → test_tensor, sample_inputs/outputs → sample_tensor.

    Returns sample files that 0.5 cannot hold as sample tensors (kept as attachments).
    """
    extra: list[Any] = []
    n_in = len(data["inputs"]) if isinstance(data.get("inputs"), list) else 0
    n_out = len(data["outputs"]) if isinstance(data.get("outputs"), list) else 0
    for field, tensors, n, required in (
        ("test_inputs", inputs, n_in, True),
        ("test_outputs", outputs, n_out, True),
        ("sample_inputs", inputs, n_in, False),
        ("sample_outputs", outputs, n_out, False),
    ):
        files = data.get(field)
        if files is None or files == []:
            if required:
                log.warn((field,), f"'{field}' missing: the model cannot be tested")
            continue
        if not isinstance(files, list) or not all(isinstance(f, str) and f for f in files):
            log.error((field,), f"'{field}' must be a list of file names or URLs")
            continue
        if len(files) != n:
            if required:
                log.error((field,), f"'{field}' lists {len(files)} files for {n} tensors")
                continue
            log.warn(
                (field,), f"'{field}' lists {len(files)} files for {n} tensors; kept as attachments"
            )
            extra.extend({"source": f} for f in files)
            continue
        by_id = {t["id"]: t for t in tensors}
        kind = "inputs" if field.endswith("inputs") else "outputs"
        for j, source in enumerate(files):
            tensor = data[kind][j]
            name = tensor.get("name") if isinstance(tensor, Mapping) else None
            target = by_id.get(name) if isinstance(name, str) else None
            if required:
                if suffix_of(source) != ".npy":
                    log.error((field, j), f"test tensors must be .npy files (got {source!r})")
                elif target is not None:
                    target["test_tensor"] = {"source": source}
            elif suffix_of(source) in _SAMPLE_SUFFIXES:
                if target is not None:
                    target["sample_tensor"] = {"source": source}
            else:
                log.warn((field, j), f"sample {source!r} is not an image file; kept as attachment")
                extra.append({"source": source})
    return extra


def keep_fixed_batch_sizes(converted: dict[str, Any], raw_v0_4: Mapping[str, Any]) -> None:
    """Give converted input batch axes ``size: 1`` where the 0.4 shape fixed the batch at 1.

    The conversion leaves batch axes free (0.4 descriptions often wrote batch 1 for "any batch",
    and running one block per call is the safe fallback). A description *written* in the current
    format must not claim more than the 0.4 file stated, so writers call this (in place).
    """
    inputs_v0_4 = raw_v0_4.get("inputs")
    if not isinstance(inputs_v0_4, list):
        return
    by_name = {t.get("name"): t for t in inputs_v0_4 if isinstance(t, Mapping)}
    for tensor in converted.get("inputs") or ():
        old = by_name.get(tensor.get("id"))
        axes = old.get("axes") if old is not None else None
        if not isinstance(axes, str) or "b" not in axes:
            continue
        shape = old.get("shape") if old is not None else None
        b = axes.index("b")
        if isinstance(shape, Mapping):
            steps = shape.get("step")
            fixed = isinstance(steps, list) and len(steps) > b and steps[b] == 0
        else:
            fixed = isinstance(shape, list)
        if fixed:
            for axis in tensor.get("axes") or ():
                if isinstance(axis, dict) and axis.get("type") == "batch":
                    axis["size"] = 1
