"""0.4 weights entries as 0.5 entries (architecture strings, dependencies, default versions).

Unlike the format's reference conversion, the weights ``sha256`` is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from bioimageio_core.spec.issues import Loc
from bioimageio_core.spec.legacy._common import IssueLog, is_identifier, kwargs_of, suffix_of

#: versions assumed when a 0.4 entry does not name one (as the format's reference conversion does)
DEFAULT_VERSIONS = {
    "pytorch_state_dict": ("pytorch_version", "1.10"),
    "torchscript": ("pytorch_version", "1.10"),
    "onnx": ("opset_version", 15),
    "tensorflow_saved_model_bundle": ("tensorflow_version", "1.15"),
    "keras_hdf5": ("tensorflow_version", "1.15"),
    "tensorflow_js": ("tensorflow_version", "1.15"),
}
_COMMON = ("source", "sha256", "authors", "parent", "comment")
_CONDA_SUFFIXES = (".yaml", ".yml")


@attrs.frozen
class ConvertedWeights:
    weights: dict[str, Any]
    #: files that 0.5 has no field for (pip requirements, per-entry attachments), kept as attachments
    attachments: list[Any]


def convert_weights(raw: object, loc: Loc, log: IssueLog) -> ConvertedWeights | None:
    if not isinstance(raw, Mapping) or not raw:
        log.error(
            loc, "'weights' must be a mapping from weight format to entry, with at least one entry"
        )
        return None
    out: dict[str, Any] = {}
    attachments: list[Any] = []
    ok = True
    for fmt, entry in raw.items():
        eloc: Loc = (*loc, fmt)
        if not isinstance(entry, Mapping):
            log.error(eloc, "a weights entry must be a mapping with at least 'source'")
            ok = False
            continue
        converted = _convert_entry(str(fmt), entry, eloc, log, attachments)
        if converted is None:
            ok = False
        else:
            out[str(fmt)] = converted
    return ConvertedWeights(out, attachments) if ok else None


def _convert_entry(
    fmt: str, entry: Mapping[str, Any], loc: Loc, log: IssueLog, attachments: list[Any]
) -> dict[str, Any] | None:
    if fmt not in DEFAULT_VERSIONS:
        return dict(entry)
    out = {k: entry[k] for k in _COMMON if entry.get(k) is not None}
    version_key, default = DEFAULT_VERSIONS[fmt]
    version = entry.get(version_key)
    if version is None:
        out[version_key] = default
        log.warn((*loc, version_key), f"{version_key} missing; assumed {default}")
    else:
        out[version_key] = version
    files = _attachment_files(entry.get("attachments"), (*loc, "attachments"), log)
    attachments.extend(files)
    ok = True
    if fmt == "pytorch_state_dict":
        architecture = convert_architecture(entry, loc, log)
        if architecture is None:
            ok = False
        else:
            out["architecture"] = architecture
    elif entry.get("architecture") is not None:
        log.warn((*loc, "architecture"), f"'architecture' has no meaning for {fmt}; ignored")
    if fmt in ("pytorch_state_dict", "tensorflow_saved_model_bundle"):
        deps = entry.get("dependencies")
        if deps is not None:
            converted = _dependencies(deps, (*loc, "dependencies"), log)
            if isinstance(converted, _Attachment):
                attachments.append({"source": converted.source})
            elif converted is None:
                ok = False
            else:
                out["dependencies"] = converted
    elif entry.get("dependencies") is not None:
        log.warn((*loc, "dependencies"), f"0.5 has no dependencies for {fmt}; kept as attachment")
        deps = entry["dependencies"]
        if isinstance(deps, str) and ":" in deps:
            attachments.append({"source": deps.split(":", 1)[1]})
    return out if ok else None


def _attachment_files(value: object, loc: Loc, log: IssueLog) -> list[Any]:
    if value is None:
        return []
    files = value.get("files") if isinstance(value, Mapping) else None
    if not isinstance(files, list):
        return []
    if files:
        log.warn(
            loc,
            "0.5 has no attachments per weights entry; "
            "these files are kept as attachments of the model",
        )
    return [{"source": f} if isinstance(f, str) else f for f in files]


@attrs.frozen
class _Attachment:
    source: str


def _dependencies(value: object, loc: Loc, log: IssueLog) -> dict[str, Any] | _Attachment | None:
    if not isinstance(value, str) or ":" not in value:
        log.error(
            loc, f"dependencies must be 'conda:<environment.yaml>' or 'pip:<file>' (got {value!r})"
        )
        return None
    manager, source = value.split(":", 1)
    source = source.strip()
    if manager == "conda" and source and suffix_of(source) in _CONDA_SUFFIXES:
        return {"source": source}
    if manager == "pip" and source:
        log.warn(
            loc,
            f"pip requirements ({source!r}) cannot be a 0.5 dependency (a conda "
            "environment file); kept as attachment",
        )
        return _Attachment(source)
    log.error(
        loc, f"dependencies must be 'conda:<environment.yaml>' or 'pip:<file>' (got {value!r})"
    )
    return None


def convert_architecture(
    entry: Mapping[str, Any], loc: Loc, log: IssueLog
) -> dict[str, Any] | None:
    """``"file.py:Callable"`` / ``"https://…/file.py/content:Callable"`` / ``"pkg.mod.Callable"``."""
    value = entry.get("architecture")
    aloc: Loc = (*loc, "architecture")
    kwargs = kwargs_of(entry, loc, log)
    if kwargs is None:
        return None
    if not isinstance(value, str) or not value.strip():
        log.error(
            aloc,
            "pytorch_state_dict weights need an architecture: 'file.py:Callable' or "
            f"'package.module.Callable' (got {value!r})",
        )
        return None
    value = value.strip()
    sha256 = entry.get("architecture_sha256")
    source, sep, name = value.rpartition(":")
    if sep and source and is_identifier(name) and source.lower() not in ("http", "https", "file"):
        out: dict[str, Any] = {"source": source, "callable": name}
        if sha256 is not None:
            out["sha256"] = sha256
        out["kwargs"] = dict(kwargs)
        return out
    module, dot, name = value.rpartition(".")
    if (
        dot
        and module
        and ":" not in value
        and "/" not in value
        and is_identifier(name)
        and all(is_identifier(part) for part in module.split("."))
    ):
        if sha256 is not None:
            log.warn(
                (*loc, "architecture_sha256"),
                "architecture_sha256 applies to an architecture file, not an importable "
                f"callable ({value!r}); ignored",
            )
        return {"import_from": module, "callable": name, "kwargs": dict(kwargs)}
    log.error(
        aloc, f"architecture {value!r} is neither 'file.py:Callable' nor 'package.module.Callable'"
    )
    return None
