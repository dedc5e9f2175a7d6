"""Cross-field validation rules of descriptions (what a single field cannot check on its own)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import attrs

from bioimageio_core.references import file_name, file_suffix, is_http_url
from bioimageio_core.spec.axes import (
    BatchAxis,
    ChannelAxis,
    DataDependentSize,
    ParameterizedSize,
    SizeReference,
    SpaceOutputAxisWithHalo,
    TimeOutputAxisWithHalo,
)
from bioimageio_core.spec.data import NominalOrOrdinalDataDescr
from bioimageio_core.spec.generic import (
    FileDescr,
    GenericDescr02,
    LinkedResource,
    _ResourceBase,
    iter_cite_issues,
)
from bioimageio_core.spec.issues import Issue, Loc, loc_to_path
from bioimageio_core.spec.licenses import DEPRECATED_SPDX_LICENSE_IDS, SPDX_LICENSE_IDS
from bioimageio_core.spec.model import (
    MODEL_ID_PATTERN,
    InputTensorDescr,
    ModelDescr,
    OutputTensorDescr,
)
from bioimageio_core.spec.processing import (
    POSTPROCESSING_ONLY,
    EnsureDtypeKwargs,
    ProcessingStep,
    kwargs_axes,
)
from bioimageio_core.spec.tolerance import ReproducibilityTolerance, output_kind


def _err(loc: Loc, msg: str, type: str = "value_error") -> Issue:
    return Issue(loc=loc, msg=msg, severity="error", type=type)


def _warn(loc: Loc, msg: str, type: str = "warning") -> Issue:
    return Issue(loc=loc, msg=msg, severity="warning", type=type)


COVER_SUFFIXES = (".gif", ".jpeg", ".jpg", ".png", ".svg")


def check_resource(descr: Any, *, legacy: bool = False) -> Iterator[Issue]:
    """Rules for every description type: name, license, citations, icon, covers, documentation.

    ``legacy``: the description declares a format that predates two rules (model 0.3/0.4,
    generic 0.2): a ``license`` that is no SPDX id and ``documentation`` that is no ``.md`` file
    are then warnings, not errors.
    """
    name = getattr(descr, "name", "")
    if isinstance(descr, _ResourceBase):
        bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c in "_+- ()"))})
        if bad:
            yield _err(
                ("name",),
                f"'name' may only use letters, digits, '_', '+', '-', ' ', '(' and ')' (got {bad!r} in {name!r})",
            )
        if len(name) > 64:
            yield _warn(
                ("name",),
                f"'name' is longer than 64 characters ({len(name)}); consider shortening it",
            )
        if name != name.strip():
            yield _warn(("name",), f"'name' starts or ends with whitespace (got {name!r}); trim it")
        for loc, msg in iter_cite_issues(descr.cite):
            yield _err(loc, msg)
        yield from _file_fields(descr, legacy)
        yield from _ids_and_links(descr, legacy)
    yield from _license(descr, strict=not legacy and isinstance(descr, _ResourceBase))


def _license(descr: Any, strict: bool) -> Iterator[Issue]:
    license = getattr(descr, "license", None)
    if license is None:
        if isinstance(descr, _ResourceBase | GenericDescr02):
            yield _warn(
                ("license",),
                "no 'license' given; add an SPDX license id such as 'CC-BY-4.0' or 'MIT'",
            )
    elif isinstance(license, FileDescr):
        yield _warn(
            ("license",),
            f"a custom license file ({license.source}); consider an SPDX license id from "
            "https://spdx.org/licenses/ so that others can tell what they may do",
        )
    elif license in DEPRECATED_SPDX_LICENSE_IDS:
        yield _warn(
            ("license",),
            f"'license' {license!r} is a deprecated SPDX license id; use its current form "
            "from https://spdx.org/licenses/ (e.g. 'GPL-3.0-only' for 'GPL-3.0')",
        )
    elif license not in SPDX_LICENSE_IDS:
        text = (
            f"'license' must be an SPDX license id from https://spdx.org/licenses/ (e.g. "
            f"'CC-BY-4.0', 'MIT') or a file description {{source: LICENSE.txt}} "
            f"(got {license!r})"
        )
        if strict:
            yield _err(("license",), text)
        else:
            yield _warn(("license",), f"{text}; format 0.5 / 0.3 descriptions require it")


_RESOURCE_ID = re.compile(MODEL_ID_PATTERN)
_DOI = re.compile(r"10\.[0-9]{4}.+")


def _ids_and_links(descr: _ResourceBase, legacy: bool) -> Iterator[Issue]:
    """Resource ids (own, parent, training data), citation DOIs and URLs (format 0.5 / 0.3 rules;
    warnings for descriptions that declare an older format)."""

    def issue(loc: Loc, msg: str) -> Issue:
        return (
            _warn(loc, f"{msg}; format 0.5 / 0.3 descriptions require it")
            if legacy
            else _err(loc, msg)
        )

    id_rule = (
        "a resource id (lower-case letters, digits, '_', '-', '.', '/'; no leading or trailing "
        "'/'), e.g. 'affable-shark'"
    )
    linked: list[tuple[Loc, Any]] = [(("id",), descr.id)]
    parent = descr.parent
    linked.append(
        (("parent",), parent)
        if isinstance(parent, str)
        else (("parent", "id"), getattr(parent, "id", None))
    )
    training = getattr(descr, "training_data", None)
    if isinstance(training, LinkedResource):
        linked.append((("training_data", "id"), training.id))
    for loc, value in linked:
        if isinstance(value, str) and _RESOURCE_ID.fullmatch(value) is None:
            yield issue(loc, f"'{loc[-1]}' must be {id_rule} (got {value!r})")
    for i, entry in enumerate(descr.cite):
        if entry.doi is not None and _DOI.fullmatch(entry.doi) is None:
            yield issue(
                ("cite", i, "doi"), f"'doi' must be a DOI such as '10.1234/abc' (got {entry.doi!r})"
            )
        if entry.url is not None and not is_http_url(entry.url):
            yield issue(
                ("cite", i, "url"),
                f"'url' must be an http(s) URL such as 'https://example.com/paper' (got {entry.url!r})",
            )


def _file_fields(descr: _ResourceBase, legacy: bool) -> Iterator[Issue]:
    """Suffixes of covers and documentation."""
    for i, cover in enumerate(descr.covers):
        if file_suffix(cover.source) not in COVER_SUFFIXES:
            yield _err(
                ("covers", i),
                f"a cover must be an image file ({', '.join(COVER_SUFFIXES)}) "
                f"(got {cover.source!r})",
            )
    doc = descr.documentation
    if doc is not None and not file_name(doc.source).endswith(".md"):
        text = f"'documentation' must be a Markdown file ending in '.md' (got {doc.source!r})"
        if legacy:
            yield _warn(("documentation",), f"{text}; format 0.5 / 0.3 descriptions require it")
        else:
            yield _err(("documentation",), text)


def check_model(model: ModelDescr) -> tuple[ModelDescr, list[Issue]]:
    """All model 0.5 rules; returns the model with ``ensure_dtype`` steps inserted (§5.2)."""
    issues = [
        *_tensor_ids(model),
        *_axes(model),
        *_sizes(model),
        *_processing(model),
        *_weights(model),
        *_files(model),
        *_data(model),
        *_tolerances(model),
    ]
    if model.run_mode is not None:
        issues.append(
            _warn(
                ("run_mode",),
                f"run mode '{model.run_mode.name}' has limited support; it is ignored",
            )
        )
    if not any(i.severity == "error" for i in issues):
        model = insert_ensure_dtype(model)
    return model, issues


def _tensor_ids(model: ModelDescr) -> Iterator[Issue]:
    """Tensor ids are unique among inputs and among outputs.

    An output sharing an input's id is only a warning: published models do it (the reference
    implementation accepts them) and inputs and outputs live in separate samples.
    """
    seen: dict[str, Loc] = {}
    for loc, t in _tensors(model):
        previous = seen.get(t.id)
        if previous is None:
            seen[t.id] = loc
        elif previous[0] == loc[0]:
            yield _err(
                (*loc, "id"),
                f"tensor id '{t.id}' is not unique (also used at {loc_to_path(previous)})",
            )
        else:
            yield _warn(
                (*loc, "id"),
                f"output id '{t.id}' is also an input id ({loc_to_path(previous)}); consider renaming it",
            )


def _tensors(model: ModelDescr) -> Iterator[tuple[Loc, InputTensorDescr | OutputTensorDescr]]:
    for i, t in enumerate(model.inputs):
        yield ("inputs", i), t
    for i, o in enumerate(model.outputs):
        yield ("outputs", i), o


def _axes(model: ModelDescr) -> Iterator[Issue]:
    for loc, t in _tensors(model):
        ids: set[str] = set()
        batch = 0
        for j, axis in enumerate(t.axes):
            aloc = (*loc, "axes", j)
            if axis.id in ids:
                yield _err((*aloc, "id"), f"axis id '{axis.id}' is not unique in tensor '{t.id}'")
            ids.add(axis.id)
            if isinstance(axis, BatchAxis):
                batch += 1
                if batch > 1:
                    yield _err(aloc, f"tensor '{t.id}' has more than one batch axis")
            elif axis.id == "batch":
                yield _err((*aloc, "id"), "only a batch axis may have the id 'batch'")


def _find_axis(model: ModelDescr, tensor_id: str, axis_id: str) -> tuple[Any, Any] | None:
    for _, t in _tensors(model):
        if t.id == tensor_id:
            for axis in t.axes:
                if axis.id == axis_id:
                    return t, axis
            return t, None
    return None


def _sizes(model: ModelDescr) -> Iterator[Issue]:
    input_ids = {t.id for t in model.inputs}
    for loc, t in _tensors(model):
        is_input = loc[0] == "inputs"
        for j, axis in enumerate(t.axes):
            size = getattr(axis, "size", None)
            sloc = (*loc, "axes", j, "size")
            if not isinstance(size, SizeReference):
                continue
            found = _find_axis(model, size.tensor_id, size.axis_id)
            if found is None:
                yield _err(
                    (*sloc, "tensor_id"), f"size reference to unknown tensor '{size.tensor_id}'"
                )
                continue
            ref_tensor, ref_axis = found
            if ref_axis is None:
                yield _err(
                    (*sloc, "axis_id"),
                    f"size reference to unknown axis '{size.axis_id}' of tensor '{size.tensor_id}'",
                )
                continue
            if is_input and size.tensor_id not in input_ids:
                yield _err((*sloc, "tensor_id"), "an input axis may only reference input tensors")
            if ref_tensor is t and ref_axis is axis:
                yield _err(sloc, "an axis size may not reference the axis itself")
                continue
            if isinstance(ref_axis, BatchAxis):
                yield _err(sloc, "a size may not reference a batch axis")
                continue
            if isinstance(ref_axis, ChannelAxis) != isinstance(axis, ChannelAxis):
                yield _err(
                    sloc, "a channel axis may only reference a channel axis (and vice versa)"
                )
            ref_size = getattr(ref_axis, "size", None)
            if isinstance(ref_size, DataDependentSize):
                yield _err(sloc, "a size may not reference a data dependent size")
                continue
            if isinstance(ref_size, SizeReference):
                yield _err(
                    sloc,
                    "a size may not reference another size reference; reference its source axis",
                )
                continue
            if getattr(axis, "unit", None) != getattr(ref_axis, "unit", None):
                yield _err(
                    sloc,
                    f"unit '{axis.unit}' of axis '{axis.id}' does not match unit '{ref_axis.unit}' "
                    f"of referenced axis '{ref_axis.id}'",
                )
                continue
            if isinstance(axis, TimeOutputAxisWithHalo | SpaceOutputAxisWithHalo):
                yield from _halo(axis, ref_axis, size, (*loc, "axes", j))


def _halo(axis: Any, ref_axis: Any, size: SizeReference, loc: Loc) -> Iterator[Issue]:
    ref_size = ref_axis.size
    ref_min = ref_size.min if isinstance(ref_size, ParameterizedSize) else ref_size
    if not isinstance(ref_min, int):
        return
    min_size = int(ref_min * ref_axis.scale / axis.scale + size.offset)
    if min_size - 2 * axis.halo < 1:
        yield _err(
            (*loc, "halo"),
            f"halo {axis.halo} leaves no valid output: minimal size {min_size} - 2 * halo < 1",
        )
    mapped = axis.halo * axis.scale / ref_axis.scale
    if mapped != int(mapped):
        yield _err(
            (*loc, "halo"),
            f"halo {axis.halo} maps to {mapped} on the referenced axis '{ref_axis.id}', which is not an integer",
        )


def _processing(model: ModelDescr) -> Iterator[Issue]:
    input_ids = {t.id for t in model.inputs}
    all_ids = input_ids | {t.id for t in model.outputs}
    for loc, t in _tensors(model):
        is_input = loc[0] == "inputs"
        steps = t.preprocessing if isinstance(t, InputTensorDescr) else t.postprocessing
        field = "preprocessing" if is_input else "postprocessing"
        axis_ids = {a.id for a in t.axes}
        for k, step in enumerate(steps):
            ploc = (*loc, field, k)
            if is_input and step.id in POSTPROCESSING_ONLY:
                yield _err((*ploc, "id"), f"'{step.id}' is only allowed in postprocessing")
            for where, name in kwargs_axes(step.kwargs):
                if name not in axis_ids:
                    yield _err(
                        (*ploc, "kwargs", *where),
                        f"axis '{name}' is not an axis of tensor '{t.id}' (axes: {', '.join(sorted(axis_ids))})",
                    )
            ref = getattr(step.kwargs, "reference_tensor", None)
            if ref is not None and ref not in input_ids:
                hint = (
                    "; an output cannot be a reference (format 0.5.8+): statistics come from "
                    "unprocessed inputs"
                    if ref in all_ids
                    else ""
                )
                yield _err(
                    (*ploc, "kwargs", "reference_tensor"),
                    f"'reference_tensor' must name an input tensor "
                    f"({', '.join(sorted(input_ids))}) (got '{ref}'){hint}",
                )


def _weights(model: ModelDescr) -> Iterator[Issue]:
    formats = model.weights.formats
    if not formats:
        yield _err(("weights",), "at least one weights entry is required")
        return
    without_parent = 0
    for name, entry in formats.items():
        parent = getattr(entry, "parent", None)
        if parent is None:
            without_parent += 1
            continue
        if parent == name:
            yield _err(
                ("weights", name, "parent"), f"weights entry '{name}' may not be its own parent"
            )
        elif parent not in formats:
            yield _err(
                ("weights", name, "parent"),
                f"parent '{parent}' of weights entry '{name}' is not a weights entry of this model",
            )
    if without_parent != 1:
        yield _warn(
            ("weights",),
            f"exactly one weights entry without 'parent' is expected (found {without_parent})",
        )


def _files(model: ModelDescr) -> Iterator[Issue]:
    """File kinds the format prescribes (judged from the reference, no IO)."""
    for loc, t in _tensors(model):
        if t.test_tensor is None:
            yield _warn(
                (*loc, "test_tensor"), f"no 'test_tensor' for '{t.id}': the model cannot be tested"
            )
        elif file_suffix(t.test_tensor.source) != ".npy":
            yield _err(
                (*loc, "test_tensor", "source"),
                f"a test tensor must be a .npy file (got {t.test_tensor.source!r})",
            )
        if t.sample_tensor is not None and file_suffix(t.sample_tensor.source) == ".npy":
            yield _warn(
                (*loc, "sample_tensor", "source"),
                "a sample tensor should be an image file (e.g. .tif, .png), not .npy",
            )
    for name, entry in model.weights.formats.items():
        deps = getattr(entry, "dependencies", None)
        if deps is not None and file_suffix(deps.source) not in (".yaml", ".yml"):
            yield _err(
                ("weights", name, "dependencies", "source"),
                f"'dependencies' must be a conda environment file (.yaml/.yml) (got {deps.source!r})",
            )
        ext = getattr(entry, "external_data", None)
        if ext is not None:
            if file_suffix(ext.source) != ".data":
                yield _err(
                    ("weights", name, "external_data", "source"),
                    f"'external_data' must be a .data file (got {ext.source!r})",
                )
            elif file_name(ext.source) == file_name(entry.source):
                yield _err(
                    ("weights", name, "external_data", "source"),
                    "'external_data' must have a file name different from the weights 'source'",
                )


def _data(model: ModelDescr) -> Iterator[Issue]:
    for loc, t in _tensors(model):
        if not isinstance(t.data, tuple):
            continue
        channels = [a for a in t.axes if isinstance(a, ChannelAxis)]
        if not channels:
            yield _err(
                (*loc, "data"),
                "a list of data descriptions needs a channel axis (one entry per channel)",
            )
            continue
        if len(t.data) != channels[0].size:
            yield _err(
                (*loc, "data"),
                f"'data' must have one entry per channel ({channels[0].size}) (got {len(t.data)})",
            )
        types = {d.type for d in t.data}
        if len(types) > 1:
            yield _err(
                (*loc, "data"),
                f"all per-channel data descriptions must share one 'type' (got {sorted(types)})",
            )
        kinds = {isinstance(d, NominalOrOrdinalDataDescr) for d in t.data}
        if len(kinds) > 1:
            yield _warn(
                (*loc, "data"),
                "per-channel data descriptions mix nominal/ordinal and interval/ratio",
            )


def _tolerances(model: ModelDescr) -> Iterator[Issue]:
    """Output ids named by tolerance entries exist; discrete outputs are compared exactly.

    An output that a list entry names must exist. The first list entry naming a discrete
    (integer/boolean) output must have zero ``relative_tolerance`` and ``absolute_tolerance``;
    later entries naming it only get a warning (they matter for other weight formats).
    """
    dtypes = {o.id: o.dtype for o in model.outputs}
    checked: set[str] = set()
    base: Loc = ("config", "bioimageio", "reproducibility_tolerance")
    for k, entry in enumerate(model.config.bioimageio.reproducibility_tolerance):
        if not isinstance(entry, ReproducibilityTolerance):
            continue
        for j, output_id in enumerate(entry.output_ids):
            if output_id not in dtypes:
                yield _err(
                    (*base, k, "output_ids", j),
                    f"'{output_id}' is not an output of this model (outputs: {', '.join(dtypes)})",
                )
                continue
            if output_kind(dtypes[output_id]) != "discrete":
                continue
            for field in ("relative_tolerance", "absolute_tolerance"):
                value = getattr(entry, field)
                if value == 0:
                    continue
                msg = (
                    f"'{field}' must be 0 for the discrete ({dtypes[output_id]}) output "
                    f"'{output_id}' (got {value}): integer and boolean outputs are compared "
                    "exactly; allow mismatches with 'mismatched_elements_per_million'"
                )
                if output_id in checked:
                    yield _warn((*base, k, field), f"{msg} (ignored: an earlier entry names it)")
                else:
                    yield _err((*base, k, field), msg)
            checked.add(output_id)


def _ensure_dtype(dtype: str) -> ProcessingStep:
    return ProcessingStep(id="ensure_dtype", kwargs=EnsureDtypeKwargs(dtype=dtype))  # type: ignore[arg-type]


def insert_ensure_dtype(model: ModelDescr) -> ModelDescr:
    """Make the data type explicit at both ends of the processing (format 0.5 rule).

    Inputs: prepend ``ensure_dtype(data.type)`` unless the first step is one, and append it unless
    the last step is ``ensure_dtype`` or ``binarize``. Outputs: append it likewise.
    """
    inputs = []
    for t in model.inputs:
        steps = list(t.preprocessing)
        if not steps or steps[0].id != "ensure_dtype":
            steps.insert(0, _ensure_dtype(t.dtype))
        if steps[-1].id not in ("ensure_dtype", "binarize"):
            steps.append(_ensure_dtype(t.dtype))
        inputs.append(attrs.evolve(t, preprocessing=tuple(steps)))
    outputs = []
    for o in model.outputs:
        steps = list(o.postprocessing)
        if not steps or steps[-1].id not in ("ensure_dtype", "binarize"):
            steps.append(_ensure_dtype(o.dtype))
        outputs.append(attrs.evolve(o, postprocessing=tuple(steps)))
    return attrs.evolve(model, inputs=tuple(inputs), outputs=tuple(outputs))
