"""Fields shared by every resource description, and the generic, dataset, application and notebook
descriptions (format 0.2.x and 0.3.x)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

import attrs

from bioimageio_core.spec import _validators as v
from bioimageio_core.spec._convert import (
    ALWAYS,
    EXTRA,
    INTERNAL,
    KIND,
    attrs_structure_hook,
    converter,
    describe,
    register_union,
)
from bioimageio_core.spec.issues import Loc


def internal(default: Any = None) -> Any:
    """A field that is not part of the YAML (e.g. ``root``)."""
    return attrs.field(default=default, metadata={INTERNAL: True}, eq=False, repr=False)


def extra(severity: str | None) -> Any:
    """Unknown keys kept as is (``severity`` "warning" reports each one)."""
    return attrs.field(factory=dict, metadata={INTERNAL: True, EXTRA: severity})


def tag(value: str) -> Any:
    """A discriminator field (always dumped)."""
    return attrs.field(default=value, metadata={ALWAYS: True})


def version_field(*, default: Any = attrs.NOTHING, min_major: int | None = None) -> Any:
    """An attrs field for a version string (e.g. the framework version of a weights entry).

    It parses like every version field of the format: a number written in YAML (``3.10``) is
    read as text with a warning to quote it; a JSON Schema ``string``. ``default`` makes the
    field optional (e.g. ``default=None``); ``min_major`` requires a PEP 440 version whose major
    version is at least that. Use it for version fields of a plugin's weights-entry class::

        @attrs.frozen(kw_only=True)
        class MyWeightsDescr(WeightsEntryDescrBase):
            my_framework_version: str = version_field(min_major=2)
    """
    validator = None if min_major is None else v.version_at_least(min_major)
    return attrs.field(default=default, validator=validator, metadata={KIND: "version"})


@attrs.frozen(kw_only=True)
class FileDescr:
    """A referenced file: a relative path or URL, and optionally its SHA-256."""

    source: str = attrs.field(validator=v.length(min=1))
    sha256: str | None = attrs.field(default=None, validator=v.SHA256)


_file_descr_hook = attrs_structure_hook(FileDescr)


def _file_descr(raw: Any, tp: Any) -> FileDescr:
    if isinstance(raw, str):
        raise TypeError(
            f"must be a file description such as {{source: {raw!r}}} (got the plain string "
            f"{describe(raw)}); plain file names are the form of model formats before 0.5.11 and "
            "generic formats before 0.3.4"
        )
    result: FileDescr = _file_descr_hook(raw, tp)
    return result


converter.register_structure_hook(FileDescr, _file_descr)

TextOrFile = str | FileDescr
"""``icon`` (an emoji of 1-2 characters) and ``license`` (an SPDX id): a string or a file."""


def _text_or_file(raw: Any) -> TextOrFile:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, Mapping):
        result: FileDescr = converter.structure(raw, FileDescr)
        return result
    raise TypeError(f"must be a string or a file description {{source: ...}} (got {describe(raw)})")


register_union(TextOrFile, _text_or_file)


def _emoji_or_file(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, str) and not 1 <= len(value) <= 2:
        raise ValueError(
            f"'{attribute.name}' must be an emoji of 1 or 2 characters or a file description "
            f"{{source: icon.png}} (got {describe(value)})"
        )


setattr(_emoji_or_file, v.JSON_SCHEMA, {"string": {"minLength": 1, "maxLength": 2}})


@attrs.frozen(kw_only=True)
class Author:
    name: str
    affiliation: str | None = None
    email: str | None = None
    github_user: str | None = None
    orcid: str | None = None


@attrs.frozen(kw_only=True)
class Maintainer:
    github_user: str
    name: str | None = None
    affiliation: str | None = None
    email: str | None = None
    orcid: str | None = None


@attrs.frozen(kw_only=True)
class CiteEntry:
    text: str
    doi: str | None = None
    url: str | None = None


@attrs.frozen(kw_only=True)
class BadgeDescr:
    label: str
    url: str
    icon: str | None = None


@attrs.frozen(kw_only=True)
class Uploader:
    email: str
    name: str | None = None


@attrs.frozen(kw_only=True)
class LinkedResource:
    """Reference to a bioimage.io resource by id (``version`` in 0.3/0.5, ``version_number`` in 0.2)."""

    id: str = attrs.field(validator=v.length(min=1))
    version: str | None = version_field(default=None)
    version_number: int | None = None


@attrs.frozen(kw_only=True)
class AttachmentsDescr:
    """Format 0.2 attachments: a list of files plus free-form extra keys."""

    files: tuple[str, ...] = ()
    extra: Mapping[str, Any] = extra(None)


NAME_CHARS = r"[A-Za-z0-9_+\- ()]+"


@attrs.frozen(kw_only=True)
class _ResourceBase:
    """Fields every 0.3-style description (and model 0.5) has."""

    format_version: str = attrs.field(
        validator=v.matches(r"\d+\.\d+\.\d+", "a version like '0.3.0'")
    )
    type: str
    name: str = attrs.field(validator=v.length(min=5, max=128))
    description: str = ""
    authors: tuple[Author, ...] = ()
    cite: tuple[CiteEntry, ...] = ()
    license: TextOrFile | None = None
    """An SPDX license id, or a file description of a custom license."""
    covers: tuple[FileDescr, ...] = ()
    attachments: tuple[FileDescr, ...] = ()
    maintainers: tuple[Maintainer, ...] = ()
    links: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    version: str | None = version_field(default=None)
    version_comment: str | None = attrs.field(default=None, validator=v.length(max=512))
    git_repo: str | None = None
    icon: TextOrFile | None = attrs.field(default=None, validator=_emoji_or_file)
    """An emoji (1-2 characters) or a file description of an image."""
    id: str | None = None
    id_emoji: str | None = attrs.field(default=None, validator=v.length(min=1, max=2))
    parent: LinkedResource | None = None
    uploader: Uploader | None = None
    documentation: FileDescr | None = None
    extra: Mapping[str, Any] = extra("warning")
    root: Any = internal()


@attrs.frozen(kw_only=True)
class GenericDescr(_ResourceBase):
    """Any resource type without a dedicated description (format 0.3.x)."""

    parent: str | LinkedResource | None = None  # type: ignore[assignment]
    """Id of the description this one derives from (``{id, version}`` is accepted too)."""
    badges: tuple[BadgeDescr, ...] = ()
    config: Mapping[str, Any] = attrs.Factory(dict)
    source: str | None = None


@attrs.frozen(kw_only=True)
class DatasetDescr(GenericDescr):
    type: Literal["dataset"] = tag("dataset")


@attrs.frozen(kw_only=True)
class ApplicationDescr(GenericDescr):
    type: Literal["application"] = tag("application")


@attrs.frozen(kw_only=True)
class NotebookDescr(GenericDescr):
    type: Literal["notebook"] = tag("notebook")
    source: str = attrs.field(validator=v.length(min=1))  # type: ignore[assignment]


@attrs.frozen(kw_only=True)
class GenericDescr02:
    """Any resource type without a dedicated description (format 0.2.x)."""

    format_version: str = attrs.field(
        validator=v.matches(r"\d+\.\d+\.\d+", "a version like '0.2.4'")
    )
    type: str
    name: str = attrs.field(validator=v.length(min=1))
    description: str
    authors: tuple[Author, ...] = ()
    cite: tuple[CiteEntry, ...] = ()
    license: str | None = None
    covers: tuple[str, ...] = ()
    badges: tuple[BadgeDescr, ...] = ()
    attachments: AttachmentsDescr | None = None
    maintainers: tuple[Maintainer, ...] = ()
    links: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    version: str | None = version_field(default=None)
    version_number: int | None = None
    git_repo: str | None = None
    icon: str | None = None
    id: str | None = None
    id_emoji: str | None = attrs.field(default=None, validator=v.length(min=1, max=2))
    uploader: Uploader | None = None
    documentation: str | None = None
    download_url: str | None = None
    rdf_source: str | None = None
    source: str | None = None
    config: Mapping[str, Any] = attrs.Factory(dict)
    extra: Mapping[str, Any] = extra("warning")
    root: Any = internal()


@attrs.frozen(kw_only=True)
class DatasetDescr02(GenericDescr02):
    type: Literal["dataset"] = tag("dataset")


@attrs.frozen(kw_only=True)
class ApplicationDescr02(GenericDescr02):
    type: Literal["application"] = tag("application")


@attrs.frozen(kw_only=True)
class NotebookDescr02(GenericDescr02):
    type: Literal["notebook"] = tag("notebook")
    source: str = attrs.field(validator=v.length(min=1))  # type: ignore[assignment]


def _parent_id(raw: Any) -> str | LinkedResource:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, Mapping):
        result: LinkedResource = converter.structure(raw, LinkedResource)
        return result
    raise TypeError(f"must be the id of a description (got {describe(raw)})")


register_union(str | LinkedResource, _parent_id)

AnyDatasetDescr = DatasetDescr | DatasetDescr02


def _training_data(raw: Any) -> LinkedResource | DatasetDescr | DatasetDescr02:
    if not isinstance(raw, Mapping):
        raise TypeError(
            f"must be a dataset reference {{id: ...}} or a dataset description (got {describe(raw)})"
        )
    if "type" not in raw and "format_version" not in raw:
        linked: LinkedResource = converter.structure(raw, LinkedResource)
        return linked
    fv = str(raw.get("format_version", ""))
    cls: type[DatasetDescr | DatasetDescr02] = (
        DatasetDescr02 if fv.startswith("0.2") else DatasetDescr
    )
    dataset: DatasetDescr | DatasetDescr02 = converter.structure(raw, cls)
    return dataset


TrainingData = LinkedResource | DatasetDescr | DatasetDescr02
register_union(TrainingData, _training_data)


def iter_cite_issues(cite: tuple[CiteEntry, ...]) -> Iterator[tuple[Loc, str]]:
    for i, entry in enumerate(cite):
        if entry.doi is None and entry.url is None:
            yield ("cite", i), "a citation needs a 'doi' or a 'url'"
