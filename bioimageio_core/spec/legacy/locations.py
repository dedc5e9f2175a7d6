"""Map field paths of a converted (0.5) model back to the 0.4 fields they were made from.

Issues found while structuring a converted model carry 0.5 paths (``inputs[0].axes[2].size``);
``original_location`` turns them into the path the user wrote (``inputs[0].shape[2]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bioimageio_core.spec.issues import Loc

_FILES = {
    ("inputs", "test_tensor"): "test_inputs",
    ("outputs", "test_tensor"): "test_outputs",
    ("inputs", "sample_tensor"): "sample_inputs",
    ("outputs", "sample_tensor"): "sample_outputs",
}
_PROCESSING = {"inputs": "preprocessing", "outputs": "postprocessing"}


def original_location(loc: Loc, raw: Mapping[str, Any]) -> Loc:
    """The 0.4 location of a field of the 0.5 model converted from ``raw`` (a 0.3/0.4 model).

    Locations without a 0.4 counterpart are returned unchanged.
    """
    loc = tuple(loc)
    if len(loc) >= 2 and loc[0] in ("inputs", "outputs") and isinstance(loc[1], int):
        return _tensor_location(loc, raw)
    if len(loc) >= 3 and loc[0] == "weights":
        return _weights_location(loc)
    if loc[:1] == ("attachments",):
        return ("attachments",)
    if loc[:1] in (("documentation",), ("icon",)) or (len(loc) >= 2 and loc[0] == "covers"):
        # 0.4 wrote these files as plain strings; 0.5 as {source, sha256}
        return loc[:2] if loc[0] == "covers" else loc[:1]
    return loc


def _tensor_location(loc: Loc, raw: Mapping[str, Any]) -> Loc:
    kind, i = str(loc[0]), loc[1]
    if not isinstance(i, int):
        return loc
    rest = loc[2:]
    tensors = raw.get(kind)
    tensor = tensors[i] if isinstance(tensors, Sequence) and 0 <= i < len(tensors) else None
    tensor = tensor if isinstance(tensor, Mapping) else {}
    head: Loc = (kind, i)
    if not rest:
        return head
    field = rest[0]
    if field == "id":
        return (*head, "name")
    if (kind, field) in _FILES:
        return (_FILES[(kind, str(field))], i)
    if field == "data":
        return (*head, "data_range" if "range" in rest else "data_type")
    if field == "axes":
        return _axis_location(head, rest[1:], tensor)
    if field == _PROCESSING.get(kind):
        return _step_location(head, str(field), rest[1:], tensor, kind)
    return loc


def _axis_location(head: Loc, rest: Loc, tensor: Mapping[str, Any]) -> Loc:
    if not rest or not isinstance(rest[0], int):
        return (*head, "axes")
    j = rest[0]
    detail = rest[1] if len(rest) > 1 else None
    if detail == "halo":
        return (*head, "halo", j)
    if detail in ("size", "channel_names", "scale"):
        shape = tensor.get("shape")
        if isinstance(shape, list):
            return (*head, "shape", j)
        if isinstance(shape, Mapping) and "min" in shape:
            return (*head, "shape", "min", j)
        if isinstance(shape, Mapping):
            return (*head, "shape", "scale", j)
        return (*head, "shape")
    return (*head, "axes")


def _step_location(head: Loc, field: str, rest: Loc, tensor: Mapping[str, Any], kind: str) -> Loc:
    steps = tensor.get(field)
    n = len(steps) if isinstance(steps, list) else 0
    if not rest or not isinstance(rest[0], int):
        return (*head, field)
    # inputs: ensure_dtype(data_type) was put first and ensure_dtype(float32) last;
    # outputs: ensure_dtype(data_type) may have been appended
    k = rest[0] - 1 if kind == "inputs" else rest[0]
    if not 0 <= k < n:
        return (*head, "data_type")
    step = steps[k] if isinstance(steps, list) else None
    out: Loc = (*head, field, k)
    if len(rest) < 2:
        return out
    if rest[1] == "id":
        return (*out, "name")
    if rest[1] == "kwargs":
        kwargs = step.get("kwargs") if isinstance(step, Mapping) else None
        key = rest[2] if len(rest) > 2 else None
        if isinstance(kwargs, Mapping) and key in kwargs:
            return (*out, "kwargs", str(key))
        return (*out, "kwargs")
    return out


def _weights_location(loc: Loc) -> Loc:
    fmt, field = loc[1], loc[2]
    rest = loc[3:]
    if field == "architecture":
        if rest[:1] == ("sha256",):
            return ("weights", fmt, "architecture_sha256")
        if rest[:1] == ("kwargs",):
            return ("weights", fmt, *rest)
        return ("weights", fmt, "architecture")
    if field == "dependencies":
        return ("weights", fmt, "dependencies")
    return loc
