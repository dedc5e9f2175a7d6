"""Completion markers of stores (HDF5 datasets, zarr arrays) and the check readers make."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

from bioimageio_core.errors import IncompleteOutputError
from bioimageio_core.io.staging._names import (
    PathLike,
    parse_temporary_name,
    writer_id,
    writer_is_gone,
)

COMPLETE_ATTR = "bioimageio_run_complete"
"""Store attribute: False while bioimageio-run writes the store, True once it is complete."""
WRITER_ATTR = "bioimageio_run_writer"
"""Store attribute naming the process writing an incomplete store (``<host>-<pid>``)."""


def mark_incomplete(attrs: MutableMapping[str, Any]) -> None:
    """Mark a store (its attributes) as being written by this process."""
    attrs[COMPLETE_ATTR] = False
    attrs[WRITER_ATTR] = writer_id()


def mark_complete(attrs: MutableMapping[str, Any]) -> None:
    """Mark a store complete (call after its last block is written)."""
    attrs[COMPLETE_ATTR] = True
    if WRITER_ATTR in attrs:
        del attrs[WRITER_ATTR]


def incomplete_writer(attrs: Mapping[str, Any]) -> str | None:
    """The writer (``<host>-<pid>``, or ``""`` if unknown) of a store marked incomplete; None
    for a complete store or one bioimageio-run did not write."""
    value = attrs.get(COMPLETE_ATTR)
    if value is None or bool(value):
        return None
    writer = attrs.get(WRITER_ATTR, "")
    return writer.decode() if isinstance(writer, bytes) else str(writer)


def check_complete(attrs: Mapping[str, Any], location: str) -> None:
    """Raise :class:`IncompleteOutputError` when the store at ``location`` is marked incomplete."""
    writer = incomplete_writer(attrs)
    if writer is None:
        return
    raise incomplete_error(location, writer)


def incomplete_error(location: str, writer: str) -> IncompleteOutputError:
    """The error for reading a store that is marked incomplete by ``writer``."""
    if writer and not writer_is_gone(writer):
        return IncompleteOutputError(
            f"{location} is incomplete: bioimageio-run is still writing it (process "
            f"{writer.partition('-')[2]})",
            hint="wait for that run to finish",
        )
    return IncompleteOutputError(
        f"{location} is incomplete: the run writing it was interrupted",
        hint="run the command again (it replaces the incomplete data) or delete it",
    )


def check_not_temporary(path: PathLike) -> None:
    """Refuse to read a temporary output (:class:`IncompleteOutputError`)."""
    parsed = parse_temporary_name(Path(path).name)
    if parsed is None:
        return
    raise incomplete_error(str(path), f"{parsed.host}-{parsed.pid}")
