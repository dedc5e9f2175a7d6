"""``build_description``: raw YAML data -> descriptor + issues (never raises for bad input)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from bioimageio_core.spec import legacy
from bioimageio_core.spec._convert import Invalid, converter, structure_value, structuring_context
from bioimageio_core.spec.file_refs import check_file_references
from bioimageio_core.spec.generic import (
    ApplicationDescr,
    ApplicationDescr02,
    DatasetDescr,
    DatasetDescr02,
    GenericDescr,
    GenericDescr02,
    NotebookDescr,
    NotebookDescr02,
)
from bioimageio_core.spec.issues import Issue, loc_to_path
from bioimageio_core.spec.model import ModelDescr
from bioimageio_core.spec.validate import check_model, check_resource

ResourceDescr = (
    ModelDescr
    | DatasetDescr
    | DatasetDescr02
    | ApplicationDescr
    | ApplicationDescr02
    | NotebookDescr
    | NotebookDescr02
    | GenericDescr
    | GenericDescr02
)


@attrs.frozen
class SpecExtensions:
    """Descriptor classes contributed by plugins: weights entries and processing kwargs."""

    weight_formats: Mapping[str, type] = attrs.Factory(dict)
    processing: Mapping[str, tuple[type, ...]] = attrs.Factory(dict)


@attrs.frozen
class BuildResult:
    """The outcome of ``build_description``; ``descr`` is None when any issue is an error."""

    descr: ResourceDescr | None
    issues: tuple[Issue, ...]
    original_format_version: str
    raw: dict[str, Any]

    @property
    def errors(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if i.severity == "error")

    @property
    def warnings(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if i.severity == "warning")


DESCR_CLASSES: dict[str, dict[str, type]] = {
    "model": {"0.5": ModelDescr},
    "dataset": {"0.2": DatasetDescr02, "0.3": DatasetDescr},
    "application": {"0.2": ApplicationDescr02, "0.3": ApplicationDescr},
    "notebook": {"0.2": NotebookDescr02, "0.3": NotebookDescr},
    "generic": {"0.2": GenericDescr02, "0.3": GenericDescr},
}
"""Resource type -> format minor version -> descriptor class. Older models are converted to
0.5 first; any other type is built as a generic description."""
_VERSION = re.compile(r"(\d+)\.(\d+)(\.\d+)?")


def _minor(version: str) -> str | None:
    m = _VERSION.fullmatch(version)
    return None if m is None else f"{m.group(1)}.{m.group(2)}"


SUPPORTED_FORMAT_VERSIONS = ("discover", "latest", "0.5", "0.5.14", "0.3", "0.3.4")
"""What ``build_description(format_version=...)`` accepts (see there)."""
_LATEST = {"0.5": "model", "0.5.14": "model", "0.3": "generic", "0.3.4": "generic"}
_FULL_VERSION = re.compile(r"\d+\.\d+\.\d+")


def build_description(
    raw: Mapping[str, Any],
    *,
    extensions: SpecExtensions | None = None,
    format_version: str = "discover",
) -> BuildResult:
    """Validate raw (YAML-loaded) data and build its descriptor.

    Never raises for bad input: every problem is returned as an ``Issue`` with the field path.

    ``format_version``:

    * ``"discover"`` (default): the description is validated by the rules of the format version
      it declares. Models of every version become model 0.5.14 descriptors (0.3/0.4 are
      converted), generic 0.3.x descriptions become 0.3.4, generic 0.2.x stay 0.2.
    * ``"latest"``: the result must be a description of the current format — generic 0.2.x is
      converted to 0.3.4 too, and rules that older formats did not have apply to converted
      descriptions as well (a ``license`` that is no SPDX id is an error, not a warning).
    * ``"0.5"`` / ``"0.5.14"``: as ``"latest"``, for a model description only;
      ``"0.3"`` / ``"0.3.4"``: as ``"latest"``, for a dataset, application, notebook or
      generic description only.

    Raises:
        ValueError: ``format_version`` is none of these (other versions cannot be produced).
    """
    if format_version not in SUPPORTED_FORMAT_VERSIONS:
        raise ValueError(
            f"format_version={format_version!r} is not supported: descriptions are built in the "
            "current formats (model 0.5.14, generic 0.3.4); use 'discover', 'latest', "
            "'0.5' / '0.5.14' (models) or '0.3' / '0.3.4' (other types)"
        )
    raw_dict = dict(raw) if isinstance(raw, Mapping) else {}
    original = str(raw_dict.get("format_version", ""))
    try:
        descr, issues = _build(raw, extensions, format_version)
    except Exception as e:
        descr = None
        issues = [
            Issue(
                (), f"internal error while validating ({type(e).__name__}: {e}); please report it"
            )
        ]
    if any(i.severity == "error" for i in issues):
        descr = None
    return BuildResult(
        descr=descr, issues=tuple(issues), original_format_version=original, raw=raw_dict
    )


def _build(
    raw: Any, extensions: SpecExtensions | None, requested: str
) -> tuple[ResourceDescr | None, list[Issue]]:
    if not isinstance(raw, Mapping):
        return None, [
            Issue((), f"a description must be a mapping of fields (got {type(raw).__name__})")
        ]
    data, issues = legacy.normalize_raw(raw)
    issues = list(issues)
    rtype = data.get("type")
    fv = data.get("format_version")
    if not isinstance(rtype, str):
        issues.append(
            Issue(
                ("type",), "'type' is required and must be a string such as 'model'", type="missing"
            )
        )
        return None, issues
    if not isinstance(fv, str) or _minor(fv) is None:
        issues.append(
            Issue(
                ("format_version",),
                f"'format_version' must be a version string like '0.5.14' (got {fv!r})",
            )
        )
        return None, issues
    family = "model" if rtype == "model" else "generic"
    wanted = _LATEST.get(requested)
    if wanted is not None and wanted != family:
        issues.append(
            Issue(
                ("type",),
                f"format_version {requested!r} was asked for, which is a "
                f"{'model' if wanted == 'model' else 'dataset/application/notebook/generic'} "
                f"format, but this is a {rtype} description",
            )
        )
        return None, issues
    latest = requested != "discover"
    minor = _minor(fv)
    cls: type
    converted_from: Mapping[str, Any] | None = None
    legacy_rules = False  # declared format predates rules that now are errors
    if rtype == "model":
        if minor in ("0.3", "0.4"):
            converted_from = data
            legacy_rules = not latest
            data, conv_issues = legacy.convert_model_to_v0_5(data)
            issues.extend(conv_issues)
            if any(i.severity == "error" for i in conv_issues):
                return None, issues
            if latest:
                legacy.keep_fixed_batch_sizes(data, converted_from)
        elif minor == "0.5":
            if _FULL_VERSION.fullmatch(fv):
                data, up_issues = legacy.upgrade_model_v0_5(data)
                issues.extend(up_issues)
        else:
            issues.append(
                Issue(
                    ("format_version",),
                    f"unsupported model format_version {fv!r}; supported: 0.3.x, 0.4.x, 0.5.x",
                )
            )
            return None, issues
        cls = ModelDescr
    else:
        table = DESCR_CLASSES.get(rtype, DESCR_CLASSES["generic"])
        if minor == "0.2" and not latest:
            legacy_rules = True
        elif minor == "0.2":
            data, conv_issues = legacy.convert_generic_v0_2(data)
            issues.extend(conv_issues)
            minor = "0.3"
        elif minor == "0.3" and _FULL_VERSION.fullmatch(fv):
            data, up_issues = legacy.upgrade_generic_v0_3(data)
            issues.extend(up_issues)
        if minor not in table:
            issues.append(
                Issue(
                    ("format_version",),
                    f"unsupported {rtype} format_version {fv!r}; supported: 0.2.x, 0.3.x",
                )
            )
            return None, issues
        cls = table[minor]  # type: ignore[index]
    first_after_conversion = len(issues)
    descr = _structure(data, cls, extensions, issues)
    if descr is not None and latest:
        descr = _drop_unknown_top_level_fields(descr, issues)
    if descr is not None:
        issues.extend(check_resource(descr, legacy=legacy_rules))
        issues.extend(check_file_references(descr))
        if isinstance(descr, ModelDescr):
            descr, model_issues = check_model(descr)
            issues.extend(model_issues)
    if converted_from is not None:
        issues[first_after_conversion:] = [
            _at_original_location(i, converted_from) for i in issues[first_after_conversion:]
        ]
    return descr, issues


def _drop_unknown_top_level_fields(descr: Any, issues: list[Issue]) -> Any:
    """The current format forbids unknown top-level fields: drop them, each with a warning."""
    unknown = dict(getattr(descr, "extra", None) or {})
    if not unknown:
        return descr
    version = descr.format_version
    for key in unknown:
        kept = f"unknown field '{key}' (kept as is)"
        issues[:] = [i for i in issues if not (i.loc == (key,) and i.msg == kept)]
        issues.append(
            Issue(
                (key,),
                f"unknown field '{key}' has no place in format {version}; dropped (keep it "
                "under 'config' if it matters)",
                "warning",
            )
        )
    return attrs.evolve(descr, extra={})


def _at_original_location(issue: Issue, original: Mapping[str, Any]) -> Issue:
    """Point an issue found in a converted 0.3/0.4 model at the field the user wrote."""
    loc = legacy.original_location(issue.loc, original)
    if loc == issue.loc:
        return issue
    return attrs.evolve(
        issue, loc=loc, msg=f"{issue.msg} (field {loc_to_path(issue.loc)} after conversion to 0.5)"
    )


def _structure(
    data: Mapping[str, Any], cls: type, extensions: SpecExtensions | None, issues: list[Issue]
) -> Any:
    with structuring_context(extensions or SpecExtensions()) as found:
        try:
            descr = structure_value(data, cls)
        except Invalid:
            descr = None
        issues.extend(found)
    return descr


def dump_description(descr: Any) -> dict[str, Any]:
    """The YAML-ready dict of a descriptor (round-trips through ``build_description``)."""
    result: dict[str, Any] = converter.unstructure(descr)
    return result
