"""Every file a description references, with a kind so callers fetch only what they need."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from bioimageio_core.spec.generic import AttachmentsDescr, FileDescr
from bioimageio_core.spec.issues import Loc
from bioimageio_core.spec.model import ModelDescr
from bioimageio_core.spec.weights import ArchitectureFromFileDescr, UnknownWeightsDescr


@attrs.frozen
class FileRef:
    """A referenced file as written (relative path or URL), its SHA-256 if given, and its kind.

    Kinds: ``weights:<format>`` (weights file, architecture source and onnx external data — all a
    prediction with that format needs), ``dependencies``, ``test_tensor``, ``sample_tensor``,
    ``cover``, ``documentation``, ``attachment``, ``icon``, ``source``.
    """

    source: str
    sha256: str | None
    kind: str


def _looks_like_file(value: str) -> bool:
    return len(value) > 2  # an icon of 1-2 characters is an emoji


def iter_file_refs(descr: Any) -> Iterator[tuple[Loc, FileRef]]:
    """Yield ``(field path, FileRef)`` for every file ``descr`` references."""
    for i, cover in enumerate(getattr(descr, "covers", ())):
        yield ("covers", i), FileRef(cover, None, "cover")
    doc = getattr(descr, "documentation", None)
    if doc:
        yield ("documentation",), FileRef(doc, None, "documentation")
    icon = getattr(descr, "icon", None)
    if icon and _looks_like_file(icon):
        yield ("icon",), FileRef(icon, None, "icon")
    attachments = getattr(descr, "attachments", None)
    if isinstance(attachments, AttachmentsDescr):
        for i, f in enumerate(attachments.files):
            yield ("attachments", "files", i), FileRef(f, None, "attachment")
    elif isinstance(attachments, tuple):
        for i, fd in enumerate(attachments):
            yield ("attachments", i), FileRef(fd.source, fd.sha256, "attachment")
    if not isinstance(descr, ModelDescr):
        source = getattr(descr, "source", None)
        if isinstance(source, str) and source:
            yield ("source",), FileRef(source, None, "source")
        return
    for field, tensors in (("inputs", descr.inputs), ("outputs", descr.outputs)):
        for i, t in enumerate(tensors):
            for kind in ("test_tensor", "sample_tensor"):
                fd = getattr(t, kind)
                if isinstance(fd, FileDescr):
                    yield (field, i, kind), FileRef(fd.source, fd.sha256, kind)
    for name, entry in descr.weights.formats.items():
        kind = f"weights:{name}"
        loc: Loc = ("weights", name)
        if isinstance(entry, UnknownWeightsDescr):
            if entry.source:
                yield (*loc, "source"), FileRef(entry.source, entry.sha256, kind)
            continue
        yield (*loc, "source"), FileRef(entry.source, entry.sha256, kind)
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
