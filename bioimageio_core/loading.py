"""Public loading API: load, validate, dump and save descriptions.

``load_description`` and ``validate_format`` read a source (path, folder, ``.zip``, URL or dict)
through :mod:`bioimageio_core.sources`, build the descriptor with :mod:`bioimageio_core.spec` and,
with io checks, make sure every referenced file exists and matches its sha256.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import yaml

from bioimageio_core.errors import (
    HashMismatchError,
    InputError,
    SettingsError,
    SourceError,
    ValidationError,
    loc_to_path,
)
from bioimageio_core.io.staging import write_text
from bioimageio_core.io_checks import check_model_files
from bioimageio_core.plugins import spec_extensions
from bioimageio_core.settings import get_settings
from bioimageio_core.sources import (
    FolderRoot,
    RawDescription,
    Root,
    Source,
    UrlRoot,
    check_file,
    open_file,
    read_description,
    root_of,
    source_name,
)
from bioimageio_core.sources.resolvers import Resolution
from bioimageio_core.spec import (
    DatasetDescr,
    DatasetDescr02,
    ModelDescr,
    ResourceDescr,
    build_description,
    iter_file_refs,
)
from bioimageio_core.spec import dump_description as spec_dump
from bioimageio_core.spec.build import SUPPORTED_FORMAT_VERSIONS
from bioimageio_core.spec.chaining import check_output_of, upstream_references
from bioimageio_core.spec.issues import Issue
from bioimageio_core.summary import ValidationDetail, ValidationSummary

FORMAT_CHECK = "format"
IO_CHECK = "io checks"


def load_description(
    source: Source,
    *,
    perform_io_checks: bool | None = None,
    format_version: str = "discover",
) -> ResourceDescr:
    """Load a description; raise :class:`ValidationError` (with ``.summary``) if it is invalid.

    ``source``: a path to ``rdf.yaml`` / ``bioimageio.yaml`` / ``*.bioimageio.yaml``, a folder
    holding one, a ``.zip`` package, an http(s) URL to any of these, a dict, or a source string
    a resolver understands: a bioimage.io id (``affable-shark``, ``affable-shark/1.2``,
    ``affable-shark/draft``), a DOI the collection lists, ``huggingface/<user>/<repo>[/<v>]``.
    An id resolved once is recorded in the cache and opens again offline
    (``BIOIMAGEIO_OFFLINE=1``).
    ``perform_io_checks``: check that referenced files exist and match their sha256 (default:
    ``BIOIMAGEIO_PERFORM_IO_CHECKS``). ``format_version``: ``"discover"`` validates by the
    rules of the version the file declares and gives a model 0.5.14 / generic 0.3.4 descriptor
    (generic 0.2 stays 0.2); ``"latest"`` converts everything to the current formats and applies
    today's rules to older files; ``"0.5"``/``"0.5.14"`` (models) and ``"0.3"``/``"0.3.4"``
    (other types) are ``"latest"`` for one family. Other values raise ``ValueError``.
    """
    descr, summary = load_description_and_summary(
        source, perform_io_checks=perform_io_checks, format_version=format_version
    )
    if descr is None:
        raise ValidationError(summary)
    return descr


def load_model_description(
    source: Source,
    *,
    perform_io_checks: bool | None = None,
    format_version: str = "discover",
) -> ModelDescr:
    """:func:`load_description` of a model; any other type raises :class:`ValidationError`."""
    descr = _load_typed(source, "model", perform_io_checks, format_version)
    assert isinstance(descr, ModelDescr)
    return descr


def load_dataset_description(
    source: Source,
    *,
    perform_io_checks: bool | None = None,
    format_version: str = "discover",
) -> DatasetDescr | DatasetDescr02:
    """:func:`load_description` of a dataset; any other type raises :class:`ValidationError`."""
    descr = _load_typed(source, "dataset", perform_io_checks, format_version)
    assert isinstance(descr, (DatasetDescr, DatasetDescr02))
    return descr


def _load_typed(
    source: Source, expected: str, perform_io_checks: bool | None, format_version: str
) -> ResourceDescr:
    _check_format_version(format_version)
    summary, descr = _validate(source, _io_checks(perform_io_checks), format_version)
    if descr is None:
        raise ValidationError(summary)
    found = getattr(descr, "type", None)
    if found != expected:
        issue = _issue(
            ("type",),
            f"expected a {expected} description, got type {found!r}",
            "type_error",
        )
        summary.add_detail(ValidationDetail.from_issues(f"is a {expected}", [issue], kind="format"))
        raise ValidationError(summary)
    return descr


def load_description_and_validate_format_only(
    source: Source,
    *,
    perform_io_checks: bool | None = None,
    format_version: str = "discover",
) -> ValidationSummary:
    """The summary of validating ``source`` (bioimageio.core's name of :func:`validate_format`)."""
    return validate_format(
        source, perform_io_checks=perform_io_checks, format_version=format_version
    )


def load_description_and_summary(
    source: Source,
    *,
    perform_io_checks: bool | None = None,
    format_version: str = "discover",
) -> tuple[ResourceDescr | None, ValidationSummary]:
    """Like :func:`load_description`, but returns the descriptor (None when invalid) together with
    the validation summary (warnings included) instead of raising for an invalid description."""
    _check_format_version(format_version)
    summary, descr = _validate(source, _io_checks(perform_io_checks), format_version)
    return descr, summary


def _check_format_version(format_version: str) -> None:
    if format_version not in SUPPORTED_FORMAT_VERSIONS:
        raise ValueError(
            f"format_version={format_version!r} is not supported: descriptions are loaded in the "
            "current formats (model 0.5.14, generic 0.3.4); use 'discover', 'latest', "
            "'0.5' / '0.5.14' (models) or '0.3' / '0.3.4' (other types)"
        )


def validate_format(
    source: Source,
    *,
    perform_io_checks: bool | None = None,
    format_version: str = "discover",
) -> ValidationSummary:
    """Validate a description and return the summary; never raises for bad input.

    (A malformed ``BIOIMAGEIO_*`` setting or an unsupported ``format_version`` is not bad
    input: it raises ``ValueError``.)
    """
    _check_format_version(format_version)
    io_checks = _io_checks(perform_io_checks)
    try:
        summary, _ = _validate(source, io_checks, format_version)
    except SettingsError:
        raise  # the environment is wrong, not the description
    except Exception as e:  # a bug must not turn a report into a crash
        name = source_name(source)
        issue = _issue(
            (),
            f"internal error while validating: {type(e).__name__}: {e} "
            "(please report this together with the description)",
            "internal_error",
        )
        summary = ValidationSummary(name=name, source=name)
        summary.add_detail(ValidationDetail.from_issues(FORMAT_CHECK, [issue], kind="format"))
    return summary


def dump_description(descr: ResourceDescr) -> dict[str, Any]:
    """The YAML-ready dict of a descriptor (round-trips through :func:`load_description`)."""
    return spec_dump(descr)


def save_bioimageio_yaml_only(
    descr: ResourceDescr, path: str | Path, *, overwrite: bool = True
) -> Path:
    """Write the description as YAML to ``path`` (complete or not at all); referenced files are
    not copied.

    Relative file references stay as they are, so keep the file next to them. ``overwrite=False``
    refuses an existing file (:class:`~bioimageio_core.errors.OutputExistsError`).
    """
    return write_text(path, dump_yaml(dump_description(descr)), overwrite=overwrite)


def dump_yaml(data: Mapping[str, Any]) -> str:
    """YAML text of a dumped description, keys in description order (tuples become lists)."""
    class _Dumper(yaml.SafeDumper):
        pass

    _Dumper.add_representer(tuple, lambda d, v: d.represent_list(list(v)))
    return yaml.dump(dict(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def _io_checks(perform_io_checks: bool | None) -> bool:
    return get_settings().perform_io_checks if perform_io_checks is None else perform_io_checks


def _validate(
    source: Source, io_checks: bool, format_version: str
) -> tuple[ValidationSummary, ResourceDescr | None]:
    try:
        raw = read_description(source)
    except SourceError as e:
        name = source_name(source)
        summary = ValidationSummary(name=name, source=name)
        message = e.message if not e.hint else f"{e.message} ({e.hint})"
        issue = _issue((), message, "source_error")
        summary.add_detail(ValidationDetail.from_issues("read source", [issue], kind="format"))
        return summary, None

    result = build_description(
        raw.data, extensions=spec_extensions(), format_version=format_version
    )
    descr = result.descr
    data = raw.data
    summary = ValidationSummary(
        name=str(data.get("name") or raw.file_name),
        source=raw.source_name,
        type=str(data["type"]) if data.get("type") is not None else None,
        id=str(data["id"]) if data.get("id") is not None else None,
        format_version=result.original_format_version or None,
        converted_format_version=getattr(descr, "format_version", None),
    )
    if raw.resolution is not None:
        summary.add_detail(_resolution_detail(raw.resolution))
    issues = list(result.issues)
    if descr is not None:
        descr = attrs.evolve(descr, root=raw.root)
        issues.extend(check_upstream_models(descr))
    summary.add_detail(ValidationDetail.from_issues(FORMAT_CHECK, issues, kind="format"))
    if descr is None or any(i.severity == "error" for i in issues):
        return summary, None
    if io_checks:
        checked: list[tuple[str, str]] = []
        io_issues = list(check_files(descr, checked=checked))
        if not any(i.severity == "error" for i in io_issues):
            io_issues.extend(check_file_contents(descr))
        io_detail = ValidationDetail.from_issues(IO_CHECK, io_issues, kind="format")
        io_detail = attrs.evolve(io_detail, note=describe_checked(checked))
        summary.add_detail(io_detail)
        if io_detail.status == "failed":
            return summary, None
    return summary, descr


def _resolution_detail(resolution: Resolution) -> ValidationDetail:
    """What a source string resolved to (with notes such as "used the cached resolution")."""
    notes = tuple(Issue((), note, "warning", "resolution") for note in resolution.notes)
    name = f"resolve {resolution.source!r} ({resolution.resolver}): {resolution.url}"
    return ValidationDetail(name, "passed", warnings=notes, kind="format")


def check_file_contents(descr: ResourceDescr) -> list[Issue]:
    """Issues in what a model's files hold (test and sample tensor sizes, tolerances against the
    test outputs, the documentation); see :mod:`bioimageio_core.io_checks`."""
    if not isinstance(descr, ModelDescr):
        return []
    root = root_of(descr)
    return list(check_model_files(descr, root))


def check_upstream_models(descr: ResourceDescr) -> list[Issue]:
    """Errors for ``inputs[i].output_of`` references whose model lacks the named output.

    Runs with or without io checks (the reference is part of the format): each referenced
    description is read with :func:`read_upstream` (only the YAML, no other file).
    """
    if not isinstance(descr, ModelDescr) or not upstream_references(descr):
        return []
    root = descr.root

    def load(reference: str) -> Mapping[str, Any]:
        return read_upstream(root, reference).data

    return check_output_of(descr, load, extensions=spec_extensions())


def read_upstream(root: Root | None, reference: str) -> RawDescription:
    """Read the description an ``output_of`` names, relative to the referencing model's ``root``.

    A reference naming an existing file or folder next to the description (or a ``.yaml`` /
    ``.zip`` relative to a URL root) is read from there; anything else is passed to
    :func:`bioimageio_core.sources.read_description` as is (URLs, paths, resource ids).
    Raises :class:`SourceError` when it cannot be read.
    """
    return read_description(upstream_source(root, reference))


def upstream_source(root: Root | None, reference: str) -> Path | str:
    """The source (path or URL) of the description ``reference`` names, relative to ``root``.

    The one rule for validation (:func:`read_upstream`) and prediction
    (:func:`bioimageio_core.chain.resolve_upstreams`): an existing file or folder next to the
    description, a ``.yaml`` / ``.zip`` next to a URL description, else the reference itself (a
    path, URL or resource id for the source resolvers).
    """
    if isinstance(root, FolderRoot):
        local = root.path / reference
        if local.exists():
            return local
    elif isinstance(root, UrlRoot) and reference.lower().endswith((".yaml", ".yml", ".zip")):
        return root.join(reference)
    return reference


EXISTENCE_ONLY_KINDS = ("cover", "source", "documentation", "icon", "attachment")
"""File kinds that validation only checks for existence (no download) unless a sha256 pins them:
covers, a dataset's or application's data (``source``), documentation, icons and attachments."""


def check_files(
    descr: ResourceDescr,
    kinds: tuple[str, ...] | None = None,
    *,
    checked: list[tuple[str, str]] | None = None,
) -> Iterator[Issue]:
    """Issues for referenced files that are missing or differ from their sha256.

    ``kinds`` limits the check to file references of these kinds (prefix match, e.g.
    ``("weights", "test_tensor")``); None checks every file. Files of
    :data:`EXISTENCE_ONLY_KINDS` without a sha256 are only looked up (a HEAD request for a URL),
    never downloaded; the others are fetched and their sha256 compared. ``checked`` (if given)
    receives ``(kind, how)`` for every file found.
    """
    root = root_of(descr)
    for loc, ref in iter_file_refs(descr):
        if kinds is not None and not ref.kind.startswith(kinds):
            continue
        where = f"(referenced at {loc_to_path(loc)})"
        try:
            if ref.sha256 is None and ref.kind in EXISTENCE_ONLY_KINDS:
                how = check_file(root, ref.source)
            else:
                open_file(root, ref.source, ref.sha256)
                how = "sha256 matches" if ref.sha256 else "fetched"
        except HashMismatchError as e:
            yield _issue(
                loc,
                f"sha256 mismatch for {ref.source}: expected {e.expected}, got {e.actual} {where}; "
                "fix the sha256 in the description or replace the file",
                "hash_mismatch",
            )
        except SourceError as e:
            yield _issue(loc, f"{e.message} {where}", "file_error")
        else:
            if checked is not None:
                checked.append((ref.kind, how))


def describe_checked(checked: list[tuple[str, str]]) -> str:
    """``"2 cover(s): HEAD request; 1 weights:onnx: sha256 matches"`` for a :func:`check_files`
    record (kinds in order of appearance)."""
    if not checked:
        return "no referenced files"
    counts: dict[tuple[str, str], int] = {}
    for item in checked:
        counts[item] = counts.get(item, 0) + 1
    return "; ".join(f"{n} {kind}: {how}" for (kind, how), n in counts.items())


def _issue(loc: tuple[str | int, ...], msg: str, type_: str) -> Issue:
    return Issue(loc, msg, "error", type_)


def as_model_description(model: Any) -> ModelDescr:
    """``model`` if it is a ``ModelDescr``, else the model ``load_description(model)`` loads.

    Referenced files are not checked here: each is fetched and checked when it is used, so a
    model whose other weight formats are unreachable still runs.
    """
    from bioimageio_core.spec import ModelDescr

    if isinstance(model, ModelDescr):
        return model
    # files are fetched (and their sha256 checked) when used: only the chosen weight format's
    descr = load_description(model, perform_io_checks=False)
    if not isinstance(descr, ModelDescr):
        raise InputError(
            f"{model!r} describes a {getattr(descr, 'type', type(descr).__name__)}, not a model",
            hint="give the description of a model",
        )
    return descr
