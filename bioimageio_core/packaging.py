"""Model packages: a description and every file it references, in one flat ``.zip`` or folder.

``save_bioimageio_package`` / ``save_bioimageio_package_as_folder`` fetch each referenced file
through :mod:`bioimageio_core.sources` (remote files through the cache, sha256 checked), give it a
unique local name, rewrite the references and fill in every sha256. ``update_hashes`` recomputes
the sha256 of the files a description references and writes them into its YAML.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from bioimageio_core.errors import BioimageioError, HashMismatchError, SourceError
from bioimageio_core.io.staging import (
    StagedFolder,
    refuse_existing,
    stage_folder,
    staged_file,
    write_text,
)
from bioimageio_core.loading import dump_yaml, load_description
from bioimageio_core.plugins import spec_extensions
from bioimageio_core.references import file_name, is_http_url
from bioimageio_core.sources import (
    YAML_NAMES,
    FolderRoot,
    Root,
    Source,
    UrlRoot,
    ZipRoot,
    open_file,
    read_description,
    root_of,
    sha256_of_file,
)
from bioimageio_core.sources.cache import safe_file_name
from bioimageio_core.sources.zips import member_name
from bioimageio_core.spec import (
    FileRef,
    Loc,
    ModelDescr,
    ResourceDescr,
    build_description,
    dump_description,
    iter_file_refs,
    loc_to_path,
)
from bioimageio_core.spec.weights import UnknownWeightsDescr, WeightsDescr

if TYPE_CHECKING:
    from typing import TypeAlias

    DescrOrSource: TypeAlias = ResourceDescr | Source
    """A descriptor or anything :func:`bioimageio_core.load_description` accepts."""

PACKAGE_YAML_NAME = "rdf.yaml"
"""File name of the description inside a package."""


@attrs.frozen
class PackagedFile:
    """One file of a package: where it is referenced, where it came from, its name and sha256."""

    locs: tuple[Loc, ...]
    """Field paths referencing the file (one file may be referenced more than once)."""
    reference: str
    """The reference as written in the source description (first one found)."""
    local_path: Path
    """A local copy (the file itself, a cached download or an extracted zip member)."""
    name: str
    """The file name inside the package."""
    sha256: str


@attrs.frozen
class PackagePlan:
    """The rewritten description and the files to put next to it."""

    data: dict[str, Any]
    """The YAML-ready description with references rewritten to package file names."""
    files: tuple[PackagedFile, ...]


# ---------------------------------------------------------------------------------------------
# public API


def save_bioimageio_package(
    descr_or_source: DescrOrSource,
    output_path: str | os.PathLike[str] | None = None,
    weights_priority_order: Sequence[str] | None = None,
    *,
    overwrite: bool = True,
) -> Path:
    """Write a ``.zip`` package: ``rdf.yaml`` and every referenced file, flat at the root.

    ``output_path`` defaults to ``<name>.zip`` in a new temporary folder.
    ``weights_priority_order``: keep only the first of these weight formats the model has (and
    drop its ``parent``). Returns the path of the written zip file; the source is not modified.
    The zip appears complete or not at all; ``overwrite=False`` refuses an existing one
    (:class:`OutputExistsError`). Raises :class:`SourceError` / :class:`HashMismatchError` when
    a referenced file cannot be fetched or differs from its sha256, :class:`ValidationError`
    when the source is invalid, :class:`OutputError` when the zip cannot be written.
    """
    descr = resolve_description(descr_or_source)
    if output_path is None:
        name = safe_file_name(str(getattr(descr, "name", "") or "package"))
        output = Path(tempfile.mkdtemp(prefix="bioimageio-package-")) / f"{name}.zip"
    else:
        output = Path(output_path)
    refuse_existing([output], overwrite)
    plan = plan_package(descr, weights_priority_order)
    root = getattr(descr, "root", None)
    if isinstance(root, ZipRoot) and output.exists() and _same_file(output, root.path):
        raise BioimageioError(
            f"cannot write the package to {output}: it is the source package",
            hint="choose another output path; the source is never modified",
        )
    _refuse_overwriting_sources(output, plan)
    yaml_text = dump_yaml(plan.data)
    with staged_file(output, overwrite=overwrite) as raw_out:
        with zipfile.ZipFile(raw_out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.writestr(PACKAGE_YAML_NAME, yaml_text)
            for f in plan.files:
                zf.write(f.local_path, arcname=f.name)
    return output


def save_bioimageio_package_as_folder(
    descr_or_source: DescrOrSource,
    output_path: str | os.PathLike[str],
    weights_priority_order: Sequence[str] | None = None,
    *,
    overwrite: bool = True,
) -> Path:
    """Like :func:`save_bioimageio_package`, into the folder ``output_path`` (created if needed).

    Returns the folder. Refuses the folder the source description itself lives in. The files
    are written into a working folder first and moved into place together, ``rdf.yaml`` last
    (see :func:`bioimageio_core.io.staging.stage_folder`); ``overwrite=False`` refuses a folder
    that holds a description or any file of the package.
    """
    descr = resolve_description(descr_or_source)
    with package_folder(descr, output_path, overwrite=overwrite) as staged:
        write_package_files(plan_package(descr, weights_priority_order), staged)
    return staged.final


def package_folder(
    descr: ResourceDescr, output_path: str | os.PathLike[str], *, overwrite: bool
) -> StagedFolder:
    """A staged package folder for ``descr`` at ``output_path`` (use it as a context manager).

    Refuses the source description's own folder, and (unless ``overwrite``) a folder that holds
    a description already.
    """
    folder = Path(output_path)
    root = getattr(descr, "root", None)
    if isinstance(root, FolderRoot) and folder.resolve() == root.path.resolve():
        raise BioimageioError(
            f"cannot package into {folder}: it is the folder of the source description",
            hint="choose another output folder; the source files are never modified",
        )
    if not overwrite:
        refuse_existing([folder / n for n in YAML_NAMES], overwrite)
    return stage_folder(folder, overwrite=overwrite, descriptions=YAML_NAMES)


def write_package_files(plan: PackagePlan, staged: StagedFolder) -> None:
    """Copy the files of ``plan`` and its ``rdf.yaml`` into the working folder of ``staged``."""
    staged.check_names(f.name for f in plan.files)
    _refuse_overwriting_sources(staged.final / PACKAGE_YAML_NAME, plan)
    for f in plan.files:
        _refuse_overwriting_sources(staged.final / f.name, plan, allow=f.local_path)
        with f.local_path.open("rb") as src, (staged.path / f.name).open("xb") as out:
            shutil.copyfileobj(src, out, 1024 * 1024)
    (staged.path / PACKAGE_YAML_NAME).write_text(dump_yaml(plan.data), encoding="utf-8")


def plan_package(
    descr: ResourceDescr, weights_priority_order: Sequence[str] | None = None
) -> PackagePlan:
    """Fetch every referenced file and compute the packaged description (nothing is written).

    Every file is fetched through :func:`bioimageio_core.sources.open_file` (its sha256, when
    pinned, is checked); files referenced twice are packaged once; two different files with the
    same name get distinct names (``name_2.ext`` …). ONNX external data keeps its name (the
    ``.onnx`` file refers to it by name).
    """

    if weights_priority_order is not None:
        descr = select_weights(descr, weights_priority_order)
    root = root_of(descr)
    refs = list(iter_file_refs(descr))
    # names that cannot change are claimed first
    refs.sort(key=lambda lr: 0 if "external_data" in lr[0] else 1)
    files: dict[str, _Pending] = {}
    taken: set[str] = {n.lower() for n in YAML_NAMES}
    for loc, ref in refs:
        identity = _identity(root, ref.source)
        local = _fetch(root, loc, ref)
        pending = files.get(identity)
        if pending is None:
            wanted = safe_file_name(file_name(ref.source))
            if "external_data" in loc:
                if wanted.lower() in taken:
                    raise BioimageioError(
                        f"two files named {wanted!r} would collide in the package, and the ONNX "
                        "external data file cannot be renamed",
                        loc=loc,
                        hint="rename one of the files in the source description",
                    )
                name = wanted
            else:
                name = unique_name(wanted, taken)
            taken.add(name.lower())
            pending = files[identity] = _Pending(ref.source, local, name, sha256_of_file(local))
        pending.locs.append(loc)

    data = dump_description(descr)
    for f in files.values():
        for loc in f.locs:
            _rewrite(data, loc, f.name, f.sha256)
    _check_valid(data)
    return PackagePlan(
        data=data,
        files=tuple(
            PackagedFile(tuple(f.locs), f.reference, f.local_path, f.name, f.sha256)
            for f in files.values()
        ),
    )


def select_weights(descr: ResourceDescr, weights_priority_order: Sequence[str]) -> ResourceDescr:
    """Keep only the first format of ``weights_priority_order`` the model has; drop its parent."""

    if not isinstance(descr, ModelDescr):
        raise BioimageioError(
            f"weights_priority_order applies to models only (got a {descr.type} description)",
            hint="leave weights_priority_order out",
        )
    present = descr.weights.available_formats
    for name in weights_priority_order:
        if name in descr.weights:
            entry = descr.weights[name]
            if isinstance(entry, UnknownWeightsDescr):
                raw = {k: v for k, v in entry.raw.items() if k != "parent"}
                entry = attrs.evolve(entry, raw=raw)
            else:
                entry = attrs.evolve(entry, parent=None)
            return attrs.evolve(descr, weights=WeightsDescr(formats={name: entry}))
    raise BioimageioError(
        f"the model has none of the weight formats {', '.join(weights_priority_order) or '(none)'}",
        loc=("weights",),
        hint=f"choose among the formats it has: {', '.join(present)}",
    )


def unique_name(wanted: str, taken: set[str]) -> str:
    """``wanted``, or ``stem_2.ext``, ``stem_3.ext`` … : the first not in ``taken`` (lower case).

    The stem is the part before the first dot, so compound suffixes (``.ome.tif``,
    ``.onnx.data``) stay intact.
    """
    if wanted.lower() not in taken:
        return wanted
    dot = wanted.find(".", 1)
    stem, suffix = (wanted, "") if dot < 0 else (wanted[:dot], wanted[dot:])
    n = 2
    while f"{stem}_{n}{suffix}".lower() in taken:
        n += 1
    return f"{stem}_{n}{suffix}"


# ---------------------------------------------------------------------------------------------
# update_hashes


@attrs.frozen
class HashUpdate:
    """A sha256 field that changed (``old`` None: it was missing)."""

    field: str
    """Field path of the sha256, e.g. ``$.weights.onnx.sha256``."""
    source: str
    old: str | None
    new: str


@attrs.frozen
class UpdateHashesReport:
    """What :func:`update_hashes` did."""

    output_path: Path | None
    """The YAML file written; None when nothing changed and no output path was given."""
    changed: tuple[HashUpdate, ...]
    unchanged: tuple[str, ...]
    """Field paths of sha256 values that were already right."""
    not_stored: tuple[str, ...]
    """Field paths of referenced files whose format has no sha256 field for them."""

    def format_text(self) -> str:
        """A short human-readable account, one line per changed hash."""
        lines = [f"{u.field}: {u.old or '(none)'} -> {u.new} ({u.source})" for u in self.changed]
        lines.append(
            f"{len(self.changed)} sha256 value(s) changed, {len(self.unchanged)} already right"
            + (f"; written to {self.output_path}" if self.output_path else "; nothing written")
        )
        return "\n".join(lines) + "\n"


def update_hashes(
    source: Source,
    output_path: str | os.PathLike[str] | None = None,
    *,
    overwrite: bool = True,
) -> UpdateHashesReport:
    """Recompute the sha256 of every file ``source`` references and write them into its YAML.

    The raw YAML is edited (a 0.4 description stays 0.4; comments and key order of the original
    text are not kept). Without ``output_path`` the description file is updated in place (only
    when something changed; its permissions are kept); that needs a local YAML file or folder.
    ``overwrite=False`` refuses an existing ``output_path``. Files are read through
    :mod:`bioimageio_core.sources`, so a missing file raises :class:`SourceError`.
    """

    raw = read_description(source)
    result = build_description(raw.data, extensions=spec_extensions())
    if result.descr is None:
        first = result.errors[0] if result.errors else None
        raise BioimageioError(
            f"cannot update the hashes of an invalid description ({raw.source_name}): {first}",
            hint="run `bioimageio-run validate SOURCE` and fix the errors first",
        )
    target: Path | None
    if output_path is not None:
        target = Path(output_path)
        refuse_existing([target], overwrite)
    elif isinstance(raw.root, FolderRoot) and not isinstance(source, Mapping):
        target = raw.root.path / raw.file_name
    else:
        raise BioimageioError(
            f"cannot write the hashes back into {raw.source_name} (not a local YAML file)",
            hint="give an output path for the updated description",
        )
    data = raw.data
    is_v04 = result.original_format_version.startswith(("0.3", "0.4"))
    changed: list[HashUpdate] = []
    unchanged: list[str] = []
    not_stored: list[str] = []
    for loc, ref in iter_file_refs(result.descr):
        holder = _sha256_holder(data, loc, ref.source, is_v04)
        if holder is None:
            if ref.sha256 is not None or _has_sha256_field(loc):
                not_stored.append(loc_to_path(loc))
            continue
        container, key = holder
        try:
            local = open_file(raw.root, ref.source)
        except SourceError as e:
            raise SourceError(e.message, loc=loc, hint=e.hint) from None
        new = sha256_of_file(local)
        old = container.get(key)
        field = loc_to_path((*_parent_loc(loc), key))
        if old == new:
            unchanged.append(field)
        else:
            container[key] = new
            changed.append(
                HashUpdate(field, ref.source, old if isinstance(old, str) else None, new)
            )
    written: Path | None = None
    if changed or output_path is not None:
        written = write_text(target, dump_yaml(data), overwrite=overwrite or output_path is None)
    return UpdateHashesReport(written, tuple(changed), tuple(unchanged), tuple(not_stored))


# ---------------------------------------------------------------------------------------------
# helpers


@attrs.define
class _Pending:
    reference: str
    local_path: Path
    name: str
    sha256: str
    locs: list[Loc] = attrs.Factory(list)


def resolve_description(descr_or_source: DescrOrSource) -> ResourceDescr:
    """The descriptor itself, or the description loaded from a source (without io checks)."""

    if isinstance(descr_or_source, (str, os.PathLike, Mapping)):
        # hashes are checked while fetching each file, with the field path in the error
        return load_description(descr_or_source, perform_io_checks=False)
    return descr_or_source


def _identity(root: Root, reference: str) -> str:
    """A key that is equal for two references exactly when they name the same file."""
    if is_http_url(reference):
        return reference
    if isinstance(root, UrlRoot):
        return root.join(reference)
    if isinstance(root, ZipRoot):
        return f"{root.path}!{member_name(reference)}"
    path = Path(reference)
    return str((path if path.is_absolute() else root.path / path).resolve())


def _fetch(root: Root, loc: Loc, ref: FileRef) -> Path:
    try:
        local = open_file(root, ref.source, ref.sha256)
    except HashMismatchError as e:
        raise HashMismatchError(e.name, e.expected, e.actual, loc=loc) from None
    except SourceError as e:
        raise SourceError(e.message, loc=loc, hint=e.hint) from None
    if not local.is_file():
        raise SourceError(
            f"{ref.source} is not a file (packages hold files only)",
            loc=loc,
            hint="zip the folder and reference the .zip file",
        )
    return local




def _walk(data: Any, loc: Sequence[str | int]) -> Any:
    """The value at ``loc`` in nested dicts/lists; raises LookupError or TypeError if absent."""
    value = data
    for key in loc:
        if isinstance(key, int):
            if not isinstance(value, list):
                raise TypeError(key)
            value = value[key]
        else:
            if not isinstance(value, dict):
                raise TypeError(key)
            value = value[key]
    return value


def _rewrite(data: dict[str, Any], loc: Loc, name: str, sha256: str) -> None:
    """Point the reference at ``loc`` to ``name`` and record ``sha256`` where the field has one."""
    parent = _walk(data, loc[:-1])
    key = loc[-1]
    value = parent[key]
    if isinstance(value, dict):  # a file description {source, sha256}
        value["source"] = name
        value["sha256"] = sha256
    elif key == "source" and len(loc) > 1:  # weights entry, architecture, external data
        parent["source"] = name
        parent["sha256"] = sha256
    else:  # a plain file name (cover, documentation, icon, …)
        parent[key] = name


def _has_sha256_field(loc: Loc) -> bool:
    """Whether the file at ``loc`` (a 0.5 field path) is described with a sha256 field."""
    if len(loc) == 2 and loc[0] in ("attachments", "covers"):
        return True
    if loc in (("documentation",), ("icon",), ("license",)):
        return True
    return len(loc) > 1 and loc[-1] in ("source", "test_tensor", "sample_tensor")


def _parent_loc(loc: Loc) -> Loc:
    return loc[:-1] if loc[-1] == "source" else loc


def _sha256_holder(
    data: dict[str, Any], loc: Loc, source: str, is_v04: bool
) -> tuple[dict[str, Any], str] | None:
    """The mapping and key holding the sha256 of the file at ``loc`` in the raw data, if any."""
    if is_v04 and loc[-2:] == ("architecture", "source") and loc[0] == "weights":
        try:
            entry = _walk(data, loc[:-2])
        except (LookupError, TypeError):
            return None
        if isinstance(entry, dict) and isinstance(entry.get("architecture"), str):
            return entry, "architecture_sha256"
        return None
    if not _has_sha256_field(loc):
        return None
    try:
        value = _walk(data, _parent_loc(loc))
    except (LookupError, TypeError):
        return None
    if isinstance(value, dict) and value.get("source") == source:
        return value, "sha256"
    return None


def _check_valid(data: dict[str, Any]) -> None:

    result = build_description(data, extensions=spec_extensions())
    if result.errors:
        raise BioimageioError(
            "the packaged description would be invalid: "
            + "; ".join(str(i) for i in result.errors),
            hint="this is a bug; please report it together with the source description",
        )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _refuse_overwriting_sources(target: Path, plan: PackagePlan, allow: Path | None = None) -> None:
    """Never write onto a file the package is made from."""
    if not target.exists():
        return
    for f in plan.files:
        if f.local_path != allow and _same_file(target, f.local_path):
            raise BioimageioError(
                f"writing {target} would overwrite {f.reference}, a file of the source description",
                hint="choose another output path",
            )
