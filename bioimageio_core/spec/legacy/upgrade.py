"""Bring raw descriptions to the current format versions: model 0.5.14 and generic 0.3.4.

* Model 0.5.x: file fields written as plain strings (``documentation``, ``covers[i]``, a file
  ``icon``) become file descriptions ``{source: …}`` when the declared version is before 0.5.11;
  from 0.5.11 on they must be written that way (structuring reports plain strings). The format
  version becomes 0.5.14.
* Generic 0.3.x (dataset, application, notebook and any other type): the same wrapping before
  0.3.4; the format version becomes 0.3.4.
* Generic 0.2.x: :func:`convert_generic_v0_2` (attachments, covers, dropped fields) then as 0.3.

All functions work on copies of raw dictionaries, never raise for bad input, and report issues at
the fields as the user wrote them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from bioimageio_core.spec.issues import Issue
from bioimageio_core.spec.legacy._common import (
    IssueLog,
    attachment_files,
    move_nicknames,
    parse_format_version,
    suffix_of,
)

MODEL_FORMAT_VERSION = "0.5.14"
GENERIC_FORMAT_VERSION = "0.3.4"
MODEL_FILE_OBJECTS_SINCE = (0, 5, 11)
"""Model format version from which covers, documentation and icon files are ``{source, sha256}``."""
GENERIC_FILE_OBJECTS_SINCE = (0, 3, 4)
"""Generic format version from which covers, documentation and icon files are ``{source, sha256}``."""

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_+\- ()]")
_COVER_IMAGE_SUFFIXES = (".gif", ".jpeg", ".jpg", ".png", ".svg")


def wrap_file_fields(data: dict[str, Any]) -> None:
    """``documentation``, ``covers[i]`` and an ``icon`` longer than 2 characters written as plain
    strings become ``{source: <string>}`` (in place). A 1-2 character icon is an emoji and stays."""
    doc = data.get("documentation")
    if isinstance(doc, str):
        data["documentation"] = {"source": doc}
    covers = data.get("covers")
    if isinstance(covers, list):
        data["covers"] = [{"source": c} if isinstance(c, str) else c for c in covers]
    icon = data.get("icon")
    if isinstance(icon, str) and len(icon) > 2:
        data["icon"] = {"source": icon}


def upgrade_model_v0_5(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[Issue]]:
    """A raw model 0.5.x description in format 0.5.14 (a copy; ``raw`` is not changed)."""
    data = copy.deepcopy(dict(raw))
    log = IssueLog()
    declared = parse_format_version(data.get("format_version"))
    if declared is None or declared[:2] != (0, 5):
        return data, log.issues
    if declared < MODEL_FILE_OBJECTS_SINCE:
        wrap_file_fields(data)
    data["format_version"] = MODEL_FORMAT_VERSION
    _upgrade_inline_training_data(data, log)
    return data, log.issues


def upgrade_generic_v0_3(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[Issue]]:
    """A raw generic 0.3.x description in format 0.3.4 (a copy)."""
    data = copy.deepcopy(dict(raw))
    declared = parse_format_version(data.get("format_version"))
    if declared is None or declared[:2] != (0, 3):
        return data, []
    if declared < GENERIC_FILE_OBJECTS_SINCE:
        wrap_file_fields(data)
    data["format_version"] = GENERIC_FORMAT_VERSION
    return data, []


def convert_generic_v0_2(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[Issue]]:
    """A raw generic 0.2.x description converted to format 0.3.4 (a copy).

    ``attachments: {files: [...]}`` becomes a list of file descriptions (other keys are dropped
    with a warning); ``download_url``, ``rdf_source`` and ``version_number`` have no place in 0.3
    and are dropped with a warning; ``config.bioimageio.nickname`` / ``nickname_icon`` become
    ``id`` / ``id_emoji``; characters that 0.3 names do not allow become spaces; covers that are
    not images a browser shows (``.tif``) move to the attachments.
    """
    data = copy.deepcopy(dict(raw))
    log = IssueLog()
    declared = parse_format_version(data.get("format_version"))
    if declared is None or declared[:2] != (0, 2):
        return data, log.issues
    _attachments_v0_2(data, log)
    _covers_v0_2(data, log)
    for key, why in (
        ("download_url", "packages are found through the id or the description's own location"),
        ("rdf_source", "the description's location is where it was read from"),
        ("version_number", "use 'version' (a version string such as '1.2.0')"),
    ):
        if key in data:
            del data[key]
            log.warn((key,), f"'{key}' has no place in format 0.3; dropped ({why})")
    name = data.get("name")
    if isinstance(name, str):
        fixed = " ".join(_NAME_CHARS.sub(" ", name).split())[:128]
        if fixed != name:
            data["name"] = fixed
            log.warn(
                ("name",),
                f"name {name!r} written as {fixed!r}: 0.3 names use letters, "
                "digits, spaces and _+-()",
            )
    move_nicknames(data)
    wrap_file_fields(data)
    data["format_version"] = GENERIC_FORMAT_VERSION
    return data, log.issues


def _attachments_v0_2(data: dict[str, Any], log: IssueLog) -> None:
    attachments = data.get("attachments")
    if not isinstance(attachments, Mapping):
        return
    files = attachments.get("files", [])
    converted = attachment_files(attachments, files if isinstance(files, list) else [], log, "0.3")
    if isinstance(files, list):
        data["attachments"] = converted


def _covers_v0_2(data: dict[str, Any], log: IssueLog) -> None:
    covers = data.get("covers")
    if not isinstance(covers, list):
        return
    kept: list[Any] = []
    for i, cover in enumerate(covers):
        if isinstance(cover, str) and suffix_of(cover) not in _COVER_IMAGE_SUFFIXES:
            attachments = data.setdefault("attachments", [])
            if isinstance(attachments, list):
                attachments.append({"source": cover})
                log.warn(
                    ("covers", i),
                    f"cover {cover!r} is no image format 0.3 allows "
                    f"({', '.join(_COVER_IMAGE_SUFFIXES)}); moved to the attachments",
                )
                continue
        kept.append(cover)
    data["covers"] = kept


def _upgrade_inline_training_data(data: dict[str, Any], log: IssueLog) -> None:
    """An inline dataset description in ``training_data`` gets the generic upgrade, too."""
    inline = data.get("training_data")
    if not isinstance(inline, Mapping) or "format_version" not in inline:
        return
    declared = parse_format_version(inline.get("format_version"))
    if declared is not None and declared[:2] == (0, 3):
        upgraded, issues = upgrade_generic_v0_3(inline)
        data["training_data"] = upgraded
        for issue in issues:
            log.issues.append(
                Issue(("training_data", *issue.loc), issue.msg, issue.severity, issue.type)
            )
