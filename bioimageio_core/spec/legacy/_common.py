"""Small helpers shared by the legacy modules: issue collection and tolerant raw-data access."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from bioimageio_core.references import file_name, file_suffix
from bioimageio_core.spec.issues import Issue, Loc

#: format version written by the 0.4 -> 0.5 conversion
TARGET_FORMAT_VERSION = "0.5.14"

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")


@attrs.define
class IssueLog:
    """Collects issues while a raw description is repaired or converted."""

    issues: list[Issue] = attrs.field(factory=list)
    #: fields moved by an upgrade step: new location -> where the user wrote it
    moved: dict[Loc, Loc] = attrs.field(factory=dict)

    def warn(self, loc: Loc, msg: str) -> None:
        self.issues.append(Issue(loc=self.original(loc), msg=msg, severity="warning"))

    def error(self, loc: Loc, msg: str) -> None:
        self.issues.append(Issue(loc=self.original(loc), msg=msg, severity="error"))

    def original(self, loc: Loc) -> Loc:
        """The location as the user wrote it, following recorded moves."""
        loc = tuple(loc)
        for n in range(len(loc), 0, -1):
            origin = self.moved.get(loc[:n])
            if origin is not None:
                return (*origin, *loc[n:])
        return loc

    @property
    def has_errors(self) -> bool:
        return any(i.severity == "error" for i in self.issues)


def attachment_files(
    attachments: Mapping[Any, Any], files: list[Any], log: IssueLog, fmt: str
) -> list[Any]:
    """``{source: ...}`` entries of the ``files`` of an ``attachments: {files: [...]}`` mapping
    (a plain file name becomes ``{source: name}``); other entries are dropped with a warning
    that they have no place in format ``fmt``."""
    others = sorted(str(k) for k in attachments if k != "files")
    if others:
        log.warn(
            ("attachments",),
            f"attachment entries other than 'files' ({', '.join(others)}) have no place in "
            f"format {fmt}; dropped",
        )
    return [{"source": f} if isinstance(f, str) else f for f in files]


def kwargs_of(entry: Mapping[str, Any], loc: Loc, log: IssueLog) -> Mapping[str, Any] | None:
    """The ``kwargs`` mapping of a processing step or weights entry (absent or null: empty);
    None, with an error logged, when it is not a mapping."""
    kwargs = entry.get("kwargs", {})
    if kwargs is None:
        return {}
    if not isinstance(kwargs, Mapping):
        log.error((*loc, "kwargs"), "'kwargs' must be a mapping")
        return None
    return kwargs


def is_identifier(value: object) -> bool:
    return isinstance(value, str) and bool(_IDENTIFIER.match(value))


def is_number(value: object) -> bool:
    """True for int and float but not bool (YAML ``true`` is not a number)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def as_mapping(value: object) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def parse_format_version(value: object) -> tuple[int, int, int] | None:
    """``"0.4.10" -> (0, 4, 10)``; None when the value is not a version string."""
    if not isinstance(value, str):
        return None
    match = _VERSION.match(value.strip())
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def move_nicknames(data: dict[str, Any]) -> None:
    """``config.bioimageio.nickname`` / ``nickname_icon`` (formats before model 0.5 and generic
    0.3) become the top-level ``id`` / ``id_emoji`` unless those are given."""
    config = data.get("config")
    bioimageio = config.get("bioimageio") if isinstance(config, dict) else None
    if isinstance(bioimageio, dict):
        for old, new in (("nickname", "id"), ("nickname_icon", "id_emoji")):
            if old in bioimageio and new not in data:
                data[new] = bioimageio.pop(old)


def file_name_of(source: object) -> str:
    """:func:`~bioimageio_core.references.file_name` of a raw YAML value ('' for a
    non-string)."""
    return file_name(source) if isinstance(source, str) else ""


def suffix_of(source: object) -> str:
    """:func:`~bioimageio_core.references.file_suffix` of a raw YAML value ('' for a
    non-string)."""
    return file_suffix(source) if isinstance(source, str) else ""
