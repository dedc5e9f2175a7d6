"""Repairs of unambiguous oddities found in published descriptions (any type, any version).

Each repair leaves a warning at the field path where it applied. Values whose meaning is not clear
are left untouched so that structuring reports them as errors.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping
from typing import Any

from bioimageio_core.spec.issues import Issue, Loc
from bioimageio_core.spec.legacy._common import (
    IssueLog,
    as_mapping,
    is_number,
    parse_format_version,
)

_VERSION_KEYS_IN_WEIGHTS = ("pytorch_version", "tensorflow_version")
_INFINITY_WORDS = {
    "inf": math.inf,
    "+inf": math.inf,
    ".inf": math.inf,
    "+.inf": math.inf,
    "infinity": math.inf,
    "+infinity": math.inf,
    "-inf": -math.inf,
    "-.inf": -math.inf,
    "-infinity": -math.inf,
}
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)
_DOI = re.compile(r"^10\.[0-9]{4}.+$")
#: a number as YAML 1.2 reads it but YAML 1.1 (PyYAML) leaves as a string, e.g. ``1e-06``
_NUMBER_TEXT = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")
_NUMERIC_KWARGS = (
    "eps",
    "min_percentile",
    "max_percentile",
    "gain",
    "offset",
    "mean",
    "std",
    "threshold",
    "min",
    "max",
)
_NUMERIC_TOLERANCE = ("relative_tolerance", "absolute_tolerance", "mismatched_elements_per_million")


def normalize_raw(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[Issue]]:
    """Repair unambiguous oddities found in published files (any type, any version).

    Returns a new dictionary (the input is never modified) and one warning per repair.
    """
    log = IssueLog()
    copied = _plain_copy(raw, (), log)
    data: dict[str, Any] = copied if isinstance(copied, dict) else {}
    fv = parse_format_version(data.get("format_version"))
    _fix_type(data, fv, log)
    _fix_timestamp(data, log)
    _fix_name(data, log)
    _fix_authors(data, log)
    _fix_cite(data, log)
    _fix_versions(data, log)
    _fix_run_mode(data, log)
    _fix_weights(data, log)
    _fix_tensors(data, fv, log)
    _fix_tolerances(data, log)
    if fv is not None and fv >= (0, 5, 0):
        _fix_attachments_v0_5(data, log)
    return data, log.issues


# --- generic copy ---------------------------------------------------------------------------------


def _plain_copy(value: Any, loc: Loc, log: IssueLog) -> Any:
    """Copy nested mappings/sequences; dates become ISO strings and keys become strings."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, str):
                name = key
            else:
                name = _key_text(key)
                if name in value or name in out:
                    log.warn(
                        loc, f"key {key!r} is not a string and collides with {name!r}; dropped"
                    )
                    continue
                log.warn(
                    (*loc, name),
                    f"key {key!r} was read as {type(key).__name__}; used as the string {name!r} "
                    "(quote keys in YAML)",
                )
            out[name] = _plain_copy(item, (*loc, name), log)
        return out
    if isinstance(value, list | tuple):
        return [_plain_copy(item, (*loc, i), log) for i, item in enumerate(value)]
    if isinstance(value, datetime.date):
        text = value.isoformat()
        log.warn(loc, f"date/time was read as a YAML timestamp; kept as the ISO string {text!r}")
        return text
    return value


def _key_text(key: object) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, datetime.date):
        return key.isoformat()
    return str(key)


# --- top level ------------------------------------------------------------------------------------


def _fix_type(data: dict[str, Any], fv: tuple[int, int, int] | None, log: IssueLog) -> None:
    if "type" in data or fv is None or not ((0, 3, 0) <= fv < (0, 5, 0)):
        return
    if all(k in data for k in ("inputs", "outputs", "weights")):
        data["type"] = "model"
        log.warn(
            ("type",),
            "missing 'type'; the description has inputs, outputs and weights, "
            "so it is read as a model (add 'type: model')",
        )


_LOOSE_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})[T ](\d{1,2}):(\d{1,2})(?::(\d{1,2}))?(\.\d+)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


def _fix_timestamp(data: dict[str, Any], log: IssueLog) -> None:
    """``2022-10-23T0:0:0`` (fields without zero padding) -> ``2022-10-23T00:00:00``."""
    value = data.get("timestamp")
    if not isinstance(value, str):
        return
    match = _LOOSE_TIMESTAMP.match(value.strip())
    if match is None:
        return
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if all(len(part) == 2 for part in (month, day, hour, minute, second or "00")):
        return
    text = (
        f"{year}-{int(month):02d}-{int(day):02d}T{int(hour):02d}:{int(minute):02d}"
        f":{int(second or 0):02d}{fraction or ''}{zone or ''}"
    )
    try:
        datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return
    data["timestamp"] = text
    log.warn(("timestamp",), f"timestamp {value!r} read as {text!r} (ISO 8601 pads with zeros)")


def _fix_name(data: dict[str, Any], log: IssueLog) -> None:
    """Model names lost their slashes in format 0.4.5; other resource types may keep them."""
    if data.get("type") != "model":
        return
    name = data.get("name")
    if isinstance(name, str) and ("/" in name or "\\" in name):
        fixed = name.replace("/", "").replace("\\", "")
        if fixed.strip():
            data["name"] = fixed
            log.warn(("name",), f"slashes are not allowed in names; {name!r} read as {fixed!r}")


def _fix_authors(data: dict[str, Any], log: IssueLog) -> None:
    for field in ("authors", "maintainers", "packaged_by"):
        _fix_author_list(data, (field,), log)
    weights = as_mapping(data.get("weights"))
    if weights is not None:
        for fmt, entry in weights.items():
            if isinstance(entry, dict):
                _fix_author_list(entry, ("weights", fmt, "authors"), log, key="authors")


def _fix_author_list(container: dict[str, Any], loc: Loc, log: IssueLog, key: str = "") -> None:
    key = key or str(loc[-1])
    authors = container.get(key)
    if not isinstance(authors, list):
        return
    for i, author in enumerate(authors):
        if isinstance(author, str) and author.strip():
            authors[i] = {"name": author}
            log.warn((*loc, i), f"author given as a plain string; read as {{name: {author!r}}}")


def _fix_cite(data: dict[str, Any], log: IssueLog) -> None:
    cite = data.get("cite")
    if not isinstance(cite, list):
        return
    for i, entry in enumerate(cite):
        if not isinstance(entry, dict):
            continue
        doi = entry.get("doi")
        if not isinstance(doi, str) or _DOI.match(doi):
            continue
        stripped = _DOI_PREFIX.sub("", doi.strip())
        if _DOI.match(stripped):
            entry["doi"] = stripped
            log.warn(("cite", i, "doi"), f"DOI written as a link; {doi!r} read as {stripped!r}")
        elif doi.startswith(("http://", "https://")) and not entry.get("url"):
            del entry["doi"]
            entry["url"] = doi
            log.warn(("cite", i, "doi"), f"{doi!r} is a URL, not a DOI; moved to 'url'")


def _fix_versions(data: dict[str, Any], log: IssueLog) -> None:
    _version_to_text(data, "version", ("version",), log)
    for field in ("parent", "training_data"):
        linked = data.get(field)
        if isinstance(linked, dict):
            _version_to_text(linked, "version", (field, "version"), log)
    weights = as_mapping(data.get("weights"))
    if weights is not None:
        for fmt, entry in weights.items():
            if isinstance(entry, dict):
                for key in _VERSION_KEYS_IN_WEIGHTS:
                    _version_to_text(entry, key, ("weights", fmt, key), log)


def _version_to_text(container: dict[str, Any], key: str, loc: Loc, log: IssueLog) -> None:
    value = container.get(key)
    if isinstance(value, bool) or not is_number(value):
        return
    text = str(value)
    container[key] = text
    if isinstance(value, float):
        log.warn(
            loc,
            f"version written as a number and read as {value!r}; used as {text!r}. Trailing zeros "
            f"are lost this way (1.10 reads as 1.1): quote it in YAML ({key}: '1.10')",
        )


def _fix_run_mode(data: dict[str, Any], log: IssueLog) -> None:
    run_mode = data.get("run_mode")
    if isinstance(run_mode, list) and len(run_mode) == 1 and isinstance(run_mode[0], dict):
        data["run_mode"] = run_mode[0]
        log.warn(("run_mode",), "run_mode given as a list of one entry; read as that entry")


# --- weights --------------------------------------------------------------------------------------


def _fix_weights(data: dict[str, Any], log: IssueLog) -> None:
    weights = data.get("weights")
    if not isinstance(weights, dict):
        return
    for fmt in [k for k, v in weights.items() if v is None]:
        del weights[fmt]
        log.warn(("weights", fmt), f"empty weights entry {fmt!r} (null) ignored")
    if "pytorch_script" in weights:
        if "torchscript" in weights:
            log.warn(
                ("weights", "pytorch_script"),
                "'pytorch_script' is the old name of 'torchscript', which is also given; "
                "'pytorch_script' is kept as an unknown weight format",
            )
        else:
            renamed = {
                ("torchscript" if k == "pytorch_script" else k): v for k, v in weights.items()
            }
            data["weights"] = weights = renamed
            log.warn(("weights", "pytorch_script"), "'pytorch_script' renamed to 'torchscript'")
    sources = {
        entry.get("source"): fmt
        for fmt, entry in weights.items()
        if isinstance(entry, dict) and isinstance(entry.get("source"), str)
    }
    for fmt, entry in weights.items():
        if not isinstance(entry, dict):
            continue
        parent = entry.get("parent")
        if parent == "pytorch_script" and "torchscript" in weights:
            entry["parent"] = "torchscript"
            log.warn(("weights", fmt, "parent"), "'pytorch_script' renamed to 'torchscript'")
        elif isinstance(parent, str) and parent not in weights and parent in sources:
            entry["parent"] = sources[parent]
            log.warn(
                ("weights", fmt, "parent"),
                f"parent given as the source of the {sources[parent]!r} weights; "
                f"read as {sources[parent]!r}",
            )


# --- tensors --------------------------------------------------------------------------------------


def _fix_tensors(data: dict[str, Any], fv: tuple[int, int, int] | None, log: IssueLog) -> None:
    for kind in ("inputs", "outputs"):
        tensors = data.get(kind)
        if not isinstance(tensors, list):
            continue
        for i, tensor in enumerate(tensors):
            if not isinstance(tensor, dict):
                continue
            loc: Loc = (kind, i)
            if "data_range" in tensor:
                _fix_data_range_v0_4(tensor, (*loc, "data_range"), log)
            shape = tensor.get("shape")
            if isinstance(shape, dict) and "reference_input" in shape:
                if "reference_tensor" in shape:
                    log.warn(
                        (*loc, "shape", "reference_input"),
                        "'reference_input' (old name) ignored: 'reference_tensor' is given",
                    )
                    del shape["reference_input"]
                else:
                    shape["reference_tensor"] = shape.pop("reference_input")
                    log.warn(
                        (*loc, "shape", "reference_input"),
                        "'reference_input' renamed to 'reference_tensor'",
                    )
            for field in ("preprocessing", "postprocessing"):
                steps = tensor.get(field)
                for k, step in enumerate(steps if isinstance(steps, list) else ()):
                    kwargs = step.get("kwargs") if isinstance(step, dict) else None
                    if isinstance(kwargs, dict):
                        _numbers_from_text(kwargs, _NUMERIC_KWARGS, (*loc, field, k, "kwargs"), log)
            tensor_data = tensor.get("data")
            if isinstance(tensor_data, dict):
                _fix_range_v0_5(tensor_data, (*loc, "data", "range"), log)
            elif isinstance(tensor_data, list):
                for j, entry in enumerate(tensor_data):
                    if isinstance(entry, dict):
                        _fix_range_v0_5(entry, (*loc, "data", j, "range"), log)


def _fix_tolerances(data: dict[str, Any], log: IssueLog) -> None:
    config = data.get("config")
    bioimageio = config.get("bioimageio") if isinstance(config, dict) else None
    entries = bioimageio.get("reproducibility_tolerance") if isinstance(bioimageio, dict) else None
    for k, entry in enumerate(entries if isinstance(entries, list) else ()):
        if isinstance(entry, dict):
            loc: Loc = ("config", "bioimageio", "reproducibility_tolerance", k)
            _numbers_from_text(entry, _NUMERIC_TOLERANCE, loc, log)


def _numbers_from_text(
    container: dict[str, Any], keys: tuple[str, ...], loc: Loc, log: IssueLog
) -> None:
    """Numbers such as ``1e-06`` that YAML 1.1 reads as strings, in numeric fields."""
    for key in keys:
        value = container.get(key)
        if isinstance(value, str) and _NUMBER_TEXT.match(value.strip()):
            container[key] = float(value)
            log.warn(
                (*loc, key),
                f"number read as the string {value!r} (YAML 1.1 needs a dot "
                f"in floats: write 1.0e-6); used as {float(value)}",
            )
        elif isinstance(value, list):
            for j, item in enumerate(value):
                if isinstance(item, str) and _NUMBER_TEXT.match(item.strip()):
                    value[j] = float(item)
                    log.warn(
                        (*loc, key, j), f"number read as the string {item!r}; used as {float(item)}"
                    )


def parse_bound(value: object) -> float | None:
    """A bound written as text (``'-inf'``, ``'.inf'``, ``'1e3'``) as a float; None if not one."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    if text in _INFINITY_WORDS:
        return _INFINITY_WORDS[text]
    try:
        number = float(text)
    except ValueError:
        return None
    return None if math.isnan(number) else number


_LIST_TEXT = re.compile(r"^\s*[\[(]\s*([^,\[\]()]+?)\s*,\s*([^,\[\]()]+?)\s*[\])]\s*$")


def _fix_data_range_v0_4(tensor: dict[str, Any], loc: Loc, log: IssueLog) -> None:
    bounds = tensor.get("data_range")
    if isinstance(bounds, str):
        match = _LIST_TEXT.match(bounds)
        parsed = [parse_bound(g) for g in match.groups()] if match else None
        if parsed is None or None in parsed:
            return
        tensor["data_range"] = parsed
        log.warn(loc, f"data_range written as the string {bounds!r}; read as {parsed}")
        return
    if not isinstance(bounds, list) or len(bounds) != 2:
        return
    defaults = (-math.inf, math.inf)
    for j, bound in enumerate(bounds):
        if bound is None:
            bounds[j] = defaults[j]
            log.warn((*loc, j), f"null bound read as {defaults[j]} (unbounded)")
        elif isinstance(bound, str):
            number = parse_bound(bound)
            if number is not None:
                bounds[j] = number
                log.warn((*loc, j), f"bound written as the string {bound!r}; read as {number}")


def _fix_range_v0_5(entry: dict[str, Any], loc: Loc, log: IssueLog) -> None:
    bounds = entry.get("range")
    if not isinstance(bounds, list) or len(bounds) != 2:
        return
    for j, bound in enumerate(bounds):
        number: float | None = None
        if isinstance(bound, str):
            number = parse_bound(bound)
            if number is None:
                continue
        elif is_number(bound) and not isinstance(bound, bool):
            number = float(bound)
            if math.isfinite(number):
                continue
        else:
            continue
        bounds[j] = number if math.isfinite(number) else None
        log.warn((*loc, j), f"bound {bound!r} read as {bounds[j]!r} (null means unbounded)")


def _fix_attachments_v0_5(data: dict[str, Any], log: IssueLog) -> None:
    attachments = data.get("attachments")
    if not isinstance(attachments, dict):
        return
    files = attachments.get("files", [])
    others = sorted(k for k in attachments if k != "files")
    if not isinstance(files, list) or others:
        return
    data["attachments"] = [{"source": f} if isinstance(f, str) else f for f in files]
    log.warn(
        ("attachments",),
        "attachments given in the 0.4 form {files: [...]}; read as a list of file descriptions",
    )
