"""Every file a description references, with a kind so callers fetch only what they need, and
the rule that keeps references inside the description's root."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from bioimageio_core.references import is_http_url, reference_problem
from bioimageio_core.spec.generic import AttachmentsDescr, DatasetDescr, FileDescr
from bioimageio_core.spec.issues import Issue, Loc
from bioimageio_core.spec.model import ModelDescr
from bioimageio_core.spec.processing import CustomKwargs
from bioimageio_core.spec.weights import ArchitectureFromFileDescr, UnknownWeightsDescr


@attrs.frozen
class FileRef:
    """A referenced file as written (relative path or URL), its SHA-256 if given, and its kind.

    Kinds: ``weights:<format>`` (weights file, architecture source and onnx external data — all a
    prediction with that format needs), ``processing`` (the code of a ``custom`` processing step,
    needed by every prediction), ``dependencies``, ``test_tensor``, ``sample_tensor``, ``cover``,
    ``documentation``, ``attachment``, ``icon`` (also a badge's icon that is no URL), ``license``,
    ``source``.
    """

    source: str
    sha256: str | None
    kind: str


def _looks_like_file(value: str) -> bool:
    return len(value) > 2  # an icon of 1-2 characters is an emoji


def _file(value: Any, kind: str) -> FileRef | None:
    """A file field: a ``FileDescr`` (formats 0.3.4 / 0.5.11+) or a plain string (0.2)."""
    if isinstance(value, FileDescr):
        return FileRef(value.source, value.sha256, kind)
    if isinstance(value, str) and value:
        return FileRef(value, None, kind)
    return None


def iter_file_refs(descr: Any) -> Iterator[tuple[Loc, FileRef]]:
    """Yield ``(field path, FileRef)`` for every file ``descr`` references.

    An inline ``training_data`` description's files (relative to the same root) come with the
    prefix ``("training_data", …)``.
    """
    for i, cover in enumerate(getattr(descr, "covers", ())):
        ref = _file(cover, "cover")
        if ref is not None:
            yield ("covers", i), ref
    doc = _file(getattr(descr, "documentation", None), "documentation")
    if doc is not None:
        yield ("documentation",), doc
    icon = getattr(descr, "icon", None)
    if isinstance(icon, FileDescr) or (isinstance(icon, str) and _looks_like_file(icon)):
        ref = _file(icon, "icon")
        if ref is not None:
            yield ("icon",), ref
    license = getattr(descr, "license", None)
    if isinstance(license, FileDescr):
        yield ("license",), FileRef(license.source, license.sha256, "license")
    attachments = getattr(descr, "attachments", None)
    if isinstance(attachments, AttachmentsDescr):
        for i, f in enumerate(attachments.files):
            yield ("attachments", "files", i), FileRef(f, None, "attachment")
    elif isinstance(attachments, tuple):
        for i, fd in enumerate(attachments):
            yield ("attachments", i), FileRef(fd.source, fd.sha256, "attachment")
    for i, badge in enumerate(getattr(descr, "badges", ())):
        if badge.icon and _looks_like_file(badge.icon) and not is_http_url(badge.icon):
            yield ("badges", i, "icon"), FileRef(badge.icon, None, "icon")
    if not isinstance(descr, ModelDescr):
        source = getattr(descr, "source", None)
        if isinstance(source, str) and source:
            yield ("source",), FileRef(source, None, "source")
        return
    if isinstance(descr.training_data, DatasetDescr):
        for inner, ref in iter_file_refs(descr.training_data):
            yield ("training_data", *inner), ref
    for field, tensors in (("inputs", descr.inputs), ("outputs", descr.outputs)):
        for i, t in enumerate(tensors):
            for kind in ("test_tensor", "sample_tensor"):
                fd = getattr(t, kind)
                if isinstance(fd, FileDescr):
                    yield (field, i, kind), FileRef(fd.source, fd.sha256, kind)
            steps_field = "preprocessing" if field == "inputs" else "postprocessing"
            for k, step in enumerate(getattr(t, steps_field)):
                if isinstance(step.kwargs, CustomKwargs):
                    yield (
                        (field, i, steps_field, k, "source"),
                        FileRef(step.kwargs.source, step.kwargs.sha256, "processing"),
                    )
    for name, entry in descr.weights.formats.items():
        kind = f"weights:{name}"
        loc: Loc = ("weights", name)
        if isinstance(entry, UnknownWeightsDescr):
            if entry.source:
                yield (*loc, "source"), FileRef(entry.source, entry.sha256, kind)
            continue
        source = getattr(entry, "source", None)  # a plugin's entry class may differ
        if isinstance(source, str) and source:
            yield (*loc, "source"), FileRef(source, getattr(entry, "sha256", None), kind)
        arch = getattr(entry, "architecture", None)
        if isinstance(arch, ArchitectureFromFileDescr):
            yield (*loc, "architecture", "source"), FileRef(arch.source, arch.sha256, kind)
        ext = getattr(entry, "external_data", None)
        if isinstance(ext, FileDescr):
            yield (*loc, "external_data", "source"), FileRef(ext.source, ext.sha256, kind)
        deps = getattr(entry, "dependencies", None)
        if isinstance(deps, FileDescr):
            yield (
                (*loc, "dependencies", "source"),
                FileRef(deps.source, deps.sha256, "dependencies"),
            )


def check_file_references(descr: Any) -> Iterator[Issue]:
    """An error for every file reference of ``descr`` that could leave its root."""
    for loc, ref in iter_file_refs(descr):
        problem = reference_problem(ref.source)
        if problem is not None:
            yield Issue(
                loc,
                f"file reference {ref.source!r} {problem}: it could point outside the "
                "description's folder or package; reference files inside it by a relative path "
                "('/' between folders), or by an http(s) URL",
                "error",
                "file_outside_root",
            )
