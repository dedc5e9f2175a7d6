"""0.4 tensor shapes (axis letters, fixed / parameterized / implicit shapes, halo) as 0.5 axes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from bioimageio_core.spec.issues import Loc
from bioimageio_core.spec.legacy._common import IssueLog, is_int, is_number

AXIS_LETTERS = "btczyxi"
AXIS_IDS = {"b": "batch", "t": "time", "c": "channel", "i": "index", "z": "z", "y": "y", "x": "x"}
_TYPES = {
    "b": "batch",
    "t": "time",
    "c": "channel",
    "i": "index",
    "z": "space",
    "y": "space",
    "x": "space",
}


@attrs.frozen
class AxisSize:
    """Size of one axis of a converted tensor: fixed (step 0) or min + n*step."""

    letter: str
    min: int
    step: int = 0

    @property
    def id(self) -> str:
        return AXIS_IDS[self.letter]

    @property
    def fixed(self) -> int | None:
        return self.min if self.step == 0 else None


TensorSizes = Mapping[str, Sequence[AxisSize]]


def axis_id(letter: str) -> str:
    return AXIS_IDS.get(letter, letter)


def parse_axes(value: object, loc: Loc, log: IssueLog) -> str | None:
    """Validate a 0.4 ``axes`` string (unique letters from ``btczyxi``)."""
    if not isinstance(value, str) or not value:
        log.error(
            loc, f"'axes' must be a string of axis letters from {AXIS_LETTERS!r} (got {value!r})"
        )
        return None
    bad = sorted({a for a in value if a not in AXIS_LETTERS})
    if bad:
        log.error(
            loc,
            f"unknown axis letter(s) {''.join(bad)!r} in {value!r}; "
            f"use letters from {AXIS_LETTERS!r}",
        )
        return None
    if len(set(value)) != len(value):
        log.error(loc, f"axis letters must be unique (got {value!r})")
        return None
    return value


def _int_list(value: object, n: int, loc: Loc, log: IssueLog, what: str) -> list[int] | None:
    if not isinstance(value, list) or not all(is_int(v) for v in value):
        log.error(loc, f"{what} must be a list of {n} integers (got {value!r})")
        return None
    if len(value) != n:
        log.error(loc, f"{what} has {len(value)} entries but the tensor has {n} axes")
        return None
    return list(value)


def input_sizes(axes: str, shape: object, loc: Loc, log: IssueLog) -> list[AxisSize] | None:
    """Sizes of a 0.4 input tensor from ``shape`` (a list or ``{min, step}``)."""
    n = len(axes)
    if isinstance(shape, Mapping):
        mins = _int_list(shape.get("min"), n, (*loc, "min"), log, "shape.min")
        steps = _int_list(shape.get("step"), n, (*loc, "step"), log, "shape.step")
        if mins is None or steps is None:
            return None
    else:
        fixed = _int_list(shape, n, loc, log, "shape")
        if fixed is None:
            return None
        mins, steps = fixed, [0] * n
    sizes: list[AxisSize] = []
    ok = True
    for j, (letter, lo, step) in enumerate(zip(axes, mins, steps, strict=True)):
        where = (*loc, "min", j) if isinstance(shape, Mapping) else (*loc, j)
        if lo < 1:
            log.error(where, f"size of axis {letter!r} must be at least 1 (got {lo})")
            ok = False
        elif step < 0:
            log.error((*loc, "step", j), f"step of axis {letter!r} must not be negative")
            ok = False
        elif letter == "b" and lo != 1:
            log.error(where, f"the batch axis of an input must have size 1 (got {lo})")
            ok = False
        elif letter == "c" and step != 0:
            log.error((*loc, "step", j), "the channel axis cannot have a parameterized size")
            ok = False
        sizes.append(AxisSize(letter, lo, step))
    return sizes if ok else None


def input_axes(sizes: Sequence[AxisSize]) -> list[dict[str, Any]]:
    """0.5 input axes for converted sizes (batch without size, as the format's batch is free)."""
    out: list[dict[str, Any]] = []
    for size in sizes:
        if size.letter == "b":
            out.append({"type": "batch"})
        elif size.letter == "c":
            out.append({"type": "channel", "channel_names": _channel_names(size.min)})
        else:
            value: Any = size.min if size.step == 0 else {"min": size.min, "step": size.step}
            out.append({"type": _TYPES[size.letter], "id": size.id, "size": value})
    return out


def _channel_names(n: int) -> list[str]:
    return [f"channel{k}" for k in range(n)]


@attrs.frozen
class OutputAxes:
    axes: list[dict[str, Any]]
    sizes: list[AxisSize]


def output_axes(
    name: str,
    axes: str,
    tensor: Mapping[str, Any],
    known: TensorSizes,
    loc: Loc,
    log: IssueLog,
) -> OutputAxes | None:
    """0.5 output axes of a 0.4 output tensor; ``known`` holds the sizes of referable tensors."""
    n = len(axes)
    halo = _halo(tensor.get("halo"), n, (*loc, "halo"), log)
    if halo is None:
        return None
    shape = tensor.get("shape")
    if isinstance(shape, Mapping):
        return _implicit_axes(name, axes, shape, halo, known, (*loc, "shape"), loc, log)
    fixed = _int_list(shape, n, (*loc, "shape"), log, "shape")
    if fixed is None:
        return None
    return _fixed_axes(axes, fixed, halo, known, loc, log)


def _halo(value: object, n: int, loc: Loc, log: IssueLog) -> list[int] | None:
    if value is None:
        return [0] * n
    halo = _int_list(value, n, loc, log, "halo")
    if halo is None:
        return None
    if any(h < 0 for h in halo):
        log.error(loc, f"halo must not be negative (got {halo})")
        return None
    return halo


def _fixed_axes(
    axes: str, fixed: list[int], halo: list[int], known: TensorSizes, loc: Loc, log: IssueLog
) -> OutputAxes | None:
    out: list[dict[str, Any]] = []
    ok = True
    for j, (letter, size, h) in enumerate(zip(axes, fixed, halo, strict=True)):
        if size < 1:
            log.error(
                (*loc, "shape", j), f"size of axis {letter!r} must be at least 1 (got {size})"
            )
            ok = False
            continue
        if letter == "b":
            out.append({"type": "batch"})
        elif letter == "c":
            out.append({"type": "channel", "channel_names": _channel_names(size)})
        elif h == 0 or letter == "i":
            out.append({"type": _TYPES[letter], "id": axis_id(letter), "size": size})
        else:
            match = _same_size_input_axis(letter, size, known)
            if match is None:
                log.error(
                    (*loc, "halo", j),
                    f"axis {letter!r} has a fixed size ({size}) and a halo ({h}); a halo needs a "
                    f"size relative to an input, and no input has an axis {letter!r} of size "
                    f"{size}. Describe the shape relative to the input "
                    "({reference_tensor, scale, offset})",
                )
                ok = False
                continue
            ref, exact = match
            out.append(
                {
                    "type": _TYPES[letter],
                    "id": axis_id(letter),
                    "size": {"tensor_id": ref, "axis_id": axis_id(letter)},
                }
            )
            same = "the same size" if exact else "this size as its minimal size"
            log.warn(
                (*loc, "shape", j),
                f"axis {letter!r} has a fixed size and a halo; described as the size of axis "
                f"{letter!r} of {ref!r}, which has {same} ({size})",
            )
        if h and letter in "bci":
            log.error((*loc, "halo", j), f"a halo is not allowed on axis {letter!r}")
            ok = False
        elif h:
            if size - 2 * h < 1:
                log.error(
                    (*loc, "halo", j), f"size {size} of axis {letter!r} is too small for halo {h}"
                )
                ok = False
            out[-1]["halo"] = h
    if not ok:
        return None
    return OutputAxes(out, [AxisSize(a, s) for a, s in zip(axes, fixed, strict=True)])


def _same_size_input_axis(letter: str, size: int, known: TensorSizes) -> tuple[str, bool] | None:
    """A tensor whose axis ``letter`` has this fixed size, else one whose minimal size it is.

    The flag says whether the match is exact (fixed size) or by minimal size.
    """
    for exact in (True, False):
        for tensor_id, sizes in known.items():
            for axis in sizes:
                if axis.letter == letter and (axis.fixed if exact else axis.min) == size:
                    return tensor_id, exact
    return None


def _implicit_axes(
    name: str,
    axes: str,
    shape: Mapping[str, Any],
    halo: list[int],
    known: TensorSizes,
    loc: Loc,
    tensor_loc: Loc,
    log: IssueLog,
) -> OutputAxes | None:
    n = len(axes)
    ref = shape.get("reference_tensor")
    if not isinstance(ref, str) or ref not in known:
        if ref == name:
            log.error((*loc, "reference_tensor"), "an output cannot reference itself")
        else:
            names = ", ".join(repr(k) for k in known) or "none"
            log.error(
                (*loc, "reference_tensor"),
                f"reference_tensor {ref!r} is not an input or fixed-shape output (known: {names})",
            )
        return None
    ref_sizes = known[ref]
    scale = shape.get("scale")
    offset = shape.get("offset")
    if (
        not isinstance(scale, list)
        or len(scale) != n
        or not all(s is None or is_number(s) for s in scale)
    ):
        log.error((*loc, "scale"), f"scale must be a list of {n} numbers or nulls (got {scale!r})")
        return None
    if not isinstance(offset, list) or len(offset) != n or not all(is_number(o) for o in offset):
        log.error((*loc, "offset"), f"offset must be a list of {n} numbers (got {offset!r})")
        return None
    # axes with scale null are new axes; the others pair with the referenced axes by position
    paired = sum(s is not None for s in scale)
    if paired != len(ref_sizes):
        log.error(
            (*loc, "reference_tensor"),
            f"referenced tensor {ref!r} has {len(ref_sizes)} axes but output {name!r} has "
            f"{paired} axes with a scale (axes with scale null are new); they pair by position",
        )
        return None
    pairs = iter(ref_sizes)
    refs = [None if s is None else next(pairs) for s in scale]
    out: list[dict[str, Any]] = []
    sizes: list[AxisSize] = []
    ok = True
    for j, letter in enumerate(axes):
        axis = _implicit_axis(
            ref, refs[j], letter, scale[j], offset[j], halo[j], loc, tensor_loc, j, log
        )
        if axis is None:
            ok = False
            continue
        out.append(axis[0])
        sizes.append(axis[1])
    return OutputAxes(out, sizes) if ok else None


def _implicit_axis(
    ref: str,
    ref_size: AxisSize | None,
    letter: str,
    scale: float | None,
    offset: float,
    halo: int,
    loc: Loc,
    tensor_loc: Loc,
    j: int,
    log: IssueLog,
) -> tuple[dict[str, Any], AxisSize] | None:
    twice = 2 * offset
    if not math.isfinite(twice) or twice != int(twice):
        log.error((*loc, "offset", j), f"offset must be a multiple of 0.5 (got {offset})")
        return None
    extra = int(twice)
    if scale is not None and (not math.isfinite(scale) or scale < 0):
        log.error((*loc, "scale", j), f"scale must be a non-negative number (got {scale})")
        return None
    if halo and letter in "bci":
        log.error((*tensor_loc, "halo", j), f"a halo is not allowed on axis {letter!r}")
        return None
    if letter == "b":
        if scale != 1 or extra != 0:
            log.warn(
                (*loc, "scale", j),
                f"scale {scale} and offset {offset} of the batch axis are ignored: "
                "the output batch size is the input batch size",
            )
        return {"type": "batch"}, AxisSize("b", 1)
    if not scale or ref_size is None:
        # a new axis: its size is 2*offset
        if extra < 1:
            log.error(
                (*loc, "offset", j),
                f"axis {letter!r} has scale {scale} so its size is 2*offset, which must be "
                f"at least 1 (got {extra})",
            )
            return None
        if halo:
            log.error(
                (*tensor_loc, "halo", j), f"axis {letter!r} has a fixed size; no halo allowed"
            )
            return None
        if letter == "c":
            return {"type": "channel", "channel_names": _channel_names(extra)}, AxisSize("c", extra)
        return {"type": _TYPES[letter], "id": axis_id(letter), "size": extra}, AxisSize(
            letter, extra
        )
    lo = scale * ref_size.min + extra
    step = scale * ref_size.step
    if lo != int(lo) or step != int(step):
        log.error(
            (*loc, "scale", j),
            f"size of axis {letter!r} (= {scale} * size of {ref!r} axis "
            f"{ref_size.letter!r} + {extra}) is not a whole number",
        )
        return None
    size = AxisSize(letter, int(lo), int(step))
    if size.min - 2 * halo < 1:
        where = (*tensor_loc, "halo", j) if halo else (*loc, "offset", j)
        log.error(
            where,
            f"minimal size {size.min} of axis {letter!r} is too small"
            + (f" for halo {halo}" if halo else ""),
        )
        return None
    if letter in "ci":
        if step != 0:
            log.error(
                (*loc, "scale", j),
                f"axis {letter!r} would change size with the parameterized axis "
                f"{ref_size.letter!r} of {ref!r}; this cannot be described",
            )
            return None
        if letter == "c":
            return {"type": "channel", "channel_names": _channel_names(size.min)}, size
        return {"type": "index", "id": "index", "size": size.min}, size
    if ref_size.letter in "bc" or (ref_size.letter == "i"):
        if step == 0:
            return {"type": _TYPES[letter], "id": axis_id(letter), "size": size.min}, size
        log.error(
            (*loc, "reference_tensor"),
            f"axis {letter!r} is paired with axis {ref_size.letter!r} of {ref!r}, "
            "which cannot size it",
        )
        return None
    if ref_size.letter != letter:
        log.warn(
            (*loc, "scale", j),
            f"axis {letter!r} is sized by axis {ref_size.letter!r} of {ref!r} "
            "(0.4 pairs axes by position)",
        )
    axis: dict[str, Any] = {
        "type": _TYPES[letter],
        "id": axis_id(letter),
        "size": {"tensor_id": ref, "axis_id": ref_size.id, "offset": extra},
    }
    if scale != 1:
        axis["scale"] = 1 / scale
    if halo:
        mapped = halo / scale
        if mapped != int(mapped):
            log.error(
                (*tensor_loc, "halo", j),
                f"halo {halo} of axis {letter!r} maps to {mapped} pixels of {ref!r}, "
                "which is not a whole number",
            )
            return None
        axis["halo"] = halo
    return axis, size
