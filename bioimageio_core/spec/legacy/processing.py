"""0.4 pre/postprocessing steps (``name`` + ``kwargs``) as 0.5 steps (``id`` + ``kwargs``).

Differences from the format's reference conversion: ``mode: per_dataset`` is kept by adding the
batch axis to ``axes`` (0.5's way of asking for dataset statistics), ``scale_range`` keeps its
``reference_tensor``, and a scalar ``scale_linear`` with ``axes`` stays a scalar step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from bioimageio_core.spec.issues import Loc
from bioimageio_core.spec.legacy._common import IssueLog, is_number, kwargs_of
from bioimageio_core.spec.legacy.axes import axis_id

_DEFAULT_EPS = 1e-6
_MODES = ("fixed", "per_dataset", "per_sample")


def convert_steps(
    steps: object, tensor_axes: str, loc: Loc, log: IssueLog
) -> list[dict[str, Any]] | None:
    """Convert a 0.4 processing list; None (with errors logged) if any step cannot be converted."""
    if steps is None:
        return []
    if not isinstance(steps, list):
        log.error(loc, f"processing must be a list of steps (got {type(steps).__name__})")
        return None
    out: list[dict[str, Any]] = []
    ok = True
    for k, step in enumerate(steps):
        converted = _convert_step(step, tensor_axes, (*loc, k), log)
        if converted is None:
            ok = False
        else:
            out.append(converted)
    return out if ok else None


def _convert_step(step: object, axes: str, loc: Loc, log: IssueLog) -> dict[str, Any] | None:
    if not isinstance(step, Mapping):
        log.error(loc, "a processing step must be a mapping with 'name' and 'kwargs'")
        return None
    name = step.get("name", step.get("id"))
    if not isinstance(name, str) or not name:
        log.error((*loc, "name"), "processing step without a 'name'")
        return None
    kwargs = kwargs_of(step, loc, log)
    if kwargs is None:
        return None
    kw = dict(kwargs)
    kloc: Loc = (*loc, "kwargs")
    if name in ("binarize", "clip", "sigmoid"):
        return {"id": name, "kwargs": kw} if kw else {"id": name}
    if name == "scale_linear":
        return _scale_linear(kw, axes, kloc, log)
    if name == "zero_mean_unit_variance":
        return _zero_mean_unit_variance(kw, axes, kloc, log)
    if name == "scale_range":
        return _scale_range(kw, axes, kloc, log)
    if name == "scale_mean_variance":
        return _scale_mean_variance(kw, axes, kloc, log)
    log.warn((*loc, "name"), f"processing step {name!r} is not a 0.4 step; kept as given")
    return {"id": name, "kwargs": kw}


def _mode(kw: Mapping[str, Any], loc: Loc, log: IssueLog, default: str | None) -> str | None:
    mode = kw.get("mode", default)
    if mode not in _MODES:
        log.error((*loc, "mode"), f"mode must be one of {', '.join(_MODES)} (got {mode!r})")
        return None
    return str(mode)


def _statistics_mode(kw: Mapping[str, Any], op: str, loc: Loc, log: IssueLog) -> str | None:
    """The ``mode`` of an op that computes statistics: per_sample or per_dataset."""
    mode = _mode(kw, loc, log, default=None)
    if mode == "fixed":
        log.error((*loc, "mode"), f"{op} supports mode per_sample or per_dataset")
        return None
    return mode


def _axis_ids(
    value: object, tensor_axes: str, loc: Loc, log: IssueLog, required: bool
) -> list[str] | None:
    """Letters of a kwargs ``axes`` string as 0.5 axis ids; [] when absent and not required."""
    if value is None and not required:
        return []
    if not isinstance(value, str) or (required and not value):
        log.error(loc, f"'axes' must be a string of axis letters of this tensor (got {value!r})")
        return None
    if "b" in value:
        log.error(
            loc,
            "'axes' may not contain the batch axis 'b'; "
            "use mode: per_dataset for statistics over the whole dataset",
        )
        return None
    missing = sorted({a for a in value if a not in tensor_axes})
    if missing or len(set(value)) != len(value):
        log.error(
            loc, f"'axes' {value!r} must be unique letters of the tensor axes {tensor_axes!r}"
        )
        return None
    return [axis_id(a) for a in value]


def _scope(mode: str, tensor_axes: str, loc: Loc, log: IssueLog) -> list[str] | None:
    """Axes to add for the statistics scope: the batch axis for dataset statistics."""
    if mode != "per_dataset":
        return []
    if "b" not in tensor_axes:
        log.error(
            (*loc, "mode"),
            "mode per_dataset needs a batch axis 'b' in the tensor axes "
            "to be expressed in format 0.5",
        )
        return None
    return ["batch"]


def _statistics_axes(
    kw: Mapping[str, Any],
    mode: str,
    tensor_axes: str,
    loc: Loc,
    log: IssueLog,
    *,
    default: list[str] | None = None,
) -> list[str] | None:
    """0.5 ``axes`` of a statistics op: the scope axis (see :func:`_scope`) and the axes of
    ``kw["axes"]`` (required unless a ``default`` is given)."""
    if default is not None and kw.get("axes") is None:
        ids: list[str] | None = default
    else:
        ids = _axis_ids(kw.get("axes"), tensor_axes, (*loc, "axes"), log, required=True)
    if ids is None:
        return None
    scope = _scope(mode, tensor_axes, loc, log)
    if scope is None:
        return None
    return scope + ids


def _complement(tensor_axes: str, ids: list[str]) -> list[str]:
    return [axis_id(a) for a in tensor_axes if a != "b" and axis_id(a) not in ids]


def _scalar(value: object) -> float | None:
    """A number, or the single number of a one-element list."""
    if is_number(value):
        return float(value)  # type: ignore[arg-type]
    if isinstance(value, list) and len(value) == 1 and is_number(value[0]):
        return float(value[0])
    return None


def _numbers(value: object) -> bool:
    return isinstance(value, list) and len(value) > 0 and all(is_number(v) for v in value)


def _list_axis(kw: Mapping[str, Any], axes: str, loc: Loc, log: IssueLog, lists: str) -> str | None:
    """The one axis per-channel ``lists`` run along: the axis that ``kw["axes"]`` leaves out."""
    ids = _axis_ids(kw.get("axes"), axes, (*loc, "axes"), log, required=True)
    if ids is None:
        return None
    along = _complement(axes, ids)
    if len(along) != 1:
        log.error(
            (*loc, "axes"),
            f"with per-channel {lists} lists, 'axes' must name all axes "
            f"but one (the axis the lists run along); left: {along}",
        )
        return None
    return along[0]


def _scale_linear(kw: dict[str, Any], axes: str, loc: Loc, log: IssueLog) -> dict[str, Any] | None:
    gain, offset = kw.get("gain", 1.0), kw.get("offset", 0.0)
    scalar_gain, scalar_offset = _scalar(gain), _scalar(offset)
    if scalar_gain is not None and scalar_offset is not None:
        return {"id": "scale_linear", "kwargs": {"gain": scalar_gain, "offset": scalar_offset}}
    for key, value, scalar in (("gain", gain, scalar_gain), ("offset", offset, scalar_offset)):
        if scalar is None and not _numbers(value):
            log.error((*loc, key), f"{key} must be a number or a list of numbers (got {value!r})")
            return None
    along = _list_axis(kw, axes, loc, log, "gain/offset")
    if along is None:
        return None
    kwargs: dict[str, Any] = {"axis": along}
    kwargs["gain"] = gain if scalar_gain is None else scalar_gain
    kwargs["offset"] = offset if scalar_offset is None else scalar_offset
    lengths = {len(v) for v in (kwargs["gain"], kwargs["offset"]) if isinstance(v, list)}
    if len(lengths) > 1:
        log.error(loc, f"gain and offset lists differ in length ({sorted(lengths)})")
        return None
    return {"id": "scale_linear", "kwargs": kwargs}


def _eps(kw: Mapping[str, Any], out: dict[str, Any]) -> None:
    if "eps" in kw:
        out["eps"] = kw["eps"]


def _zero_mean_unit_variance(
    kw: dict[str, Any], axes: str, loc: Loc, log: IssueLog
) -> dict[str, Any] | None:
    mode = _mode(kw, loc, log, default="fixed")
    if mode is None:
        return None
    if mode == "fixed":
        return _fixed_zmuv(kw, axes, loc, log)
    stat_axes = _statistics_axes(kw, mode, axes, loc, log)
    if stat_axes is None:
        return None
    out: dict[str, Any] = {"axes": stat_axes}
    _eps(kw, out)
    return {"id": "zero_mean_unit_variance", "kwargs": out}


def _fixed_zmuv(kw: dict[str, Any], axes: str, loc: Loc, log: IssueLog) -> dict[str, Any] | None:
    mean, std = kw.get("mean"), kw.get("std")
    eps = kw.get("eps", _DEFAULT_EPS)
    if is_number(eps) and not math.isclose(float(eps), _DEFAULT_EPS):
        log.warn(
            (*loc, "eps"),
            f"eps {eps} of a fixed normalization is not kept; "
            f"0.5 uses (x - mean) / (std + {_DEFAULT_EPS})",
        )
    scalar_mean, scalar_std = _scalar(mean), _scalar(std)
    if scalar_mean is not None and scalar_std is not None:
        return {
            "id": "fixed_zero_mean_unit_variance",
            "kwargs": {"mean": scalar_mean, "std": scalar_std},
        }
    for key, value, scalar in (("mean", mean, scalar_mean), ("std", std, scalar_std)):
        if scalar is None and not _numbers(value):
            log.error(
                (*loc, key),
                f"mode 'fixed' needs {key} as a number or list of numbers (got {value!r})",
            )
            return None
    along = _list_axis(kw, axes, loc, log, "mean/std")
    if along is None:
        return None
    means = mean if isinstance(mean, list) else [mean]
    stds = std if isinstance(std, list) else [std]
    n = max(len(means), len(stds))
    if len(means) == 1:
        means = means * n
    if len(stds) == 1:
        stds = stds * n
    if len(means) != len(stds):
        log.error(loc, f"mean and std lists differ in length ({len(means)} and {len(stds)})")
        return None
    return {
        "id": "fixed_zero_mean_unit_variance",
        "kwargs": {"axis": along, "mean": means, "std": stds},
    }


def _scale_range(kw: dict[str, Any], axes: str, loc: Loc, log: IssueLog) -> dict[str, Any] | None:
    mode = _statistics_mode(kw, "scale_range", loc, log)
    if mode is None:
        return None
    stat_axes = _statistics_axes(kw, mode, axes, loc, log)
    if stat_axes is None:
        return None
    out: dict[str, Any] = {"axes": stat_axes}
    for key in ("min_percentile", "max_percentile", "eps", "reference_tensor"):
        if kw.get(key) is not None:
            out[key] = kw[key]
    return {"id": "scale_range", "kwargs": out}


def _scale_mean_variance(
    kw: dict[str, Any], axes: str, loc: Loc, log: IssueLog
) -> dict[str, Any] | None:
    mode = _statistics_mode(kw, "scale_mean_variance", loc, log)
    if mode is None:
        return None
    all_axes = [axis_id(a) for a in axes if a != "b"]
    stat_axes = _statistics_axes(kw, mode, axes, loc, log, default=all_axes)
    if stat_axes is None:
        return None
    out: dict[str, Any] = {"reference_tensor": kw.get("reference_tensor"), "axes": stat_axes}
    _eps(kw, out)
    return {"id": "scale_mean_variance", "kwargs": out}
