"""``add_weights``: convert a model's weights to other formats through the plugins' converters.

The model is copied as a package folder (written aside and moved into place when done); every
converter registered through the ``bioimageio_weight_converters`` hook whose source format the
model has and whose target format it lacks (or the ones asked for) is run; each new entry is
verified by running the model's test inputs through it (model testing at the description's
tolerance) and added only if it passes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs
import numpy as np

from bioimageio_core import plugins
from bioimageio_core.adapters import AdapterRequest, ModelAdapter, model_file
from bioimageio_core.consent import description_code_origin
from bioimageio_core.errors import BioimageioError, InputError
from bioimageio_core.io import load_tensor
from bioimageio_core.io.axes import fit_to_axes
from bioimageio_core.loading import load_description, save_bioimageio_yaml_only
from bioimageio_core.packaging import (
    PACKAGE_YAML_NAME,
    package_folder,
    plan_package,
    resolve_description,
    unique_name,
    write_package_files,
)
from bioimageio_core.pipeline import create_prediction_pipeline
from bioimageio_core.plugins import unavailable_reason
from bioimageio_core.sources import FolderRoot, sha256_of_file
from bioimageio_core.spec import FileDescr, ModelDescr, build_description, dump_description
from bioimageio_core.spec.weights import UnknownWeightsDescr, WeightsDescr
from bioimageio_core.testing import test_model

if TYPE_CHECKING:
    from bioimageio_core.hookspecs import ConverterSpec
    from bioimageio_core.packaging import DescrOrSource
    from bioimageio_core.settings import Settings

Verifier = Callable[["ModelDescr", str], "str | None"]
"""``verifier(model, weight_format) -> None`` when the entry reproduces the test outputs, else
the reason it does not."""

WEIGHT_FILE_SUFFIXES: Mapping[str, str] = {
    "keras_hdf5": ".h5",
    "keras_v3": ".keras",
    "onnx": ".onnx",
    "pytorch_state_dict": ".pt",
    "tensorflow_js": ".zip",
    "tensorflow_saved_model_bundle": ".zip",
    "torchscript": ".pt",
}
"""File suffix of the weights file a converter is asked to write, per target format."""

DEFAULT_OPTIONS: Mapping[str, Any] = {"allow_tracing": True}

Status = Literal["added", "failed", "skipped"]


@attrs.frozen
class ConversionResult:
    """The outcome for one (source format, target format) pair."""

    source_format: str | None
    """None for a target no converter could reach."""
    target_format: str
    status: Status
    reason: str = ""
    """Why it failed or was skipped; how it was made when added."""
    file_name: str | None = None
    """The new weights file in the package folder (added entries only)."""

    def __str__(self) -> str:
        pair = (
            f"{self.source_format} -> {self.target_format}"
            if self.source_format
            else self.target_format
        )
        return f"{self.status}: {pair}" + (f" ({self.reason})" if self.reason else "")


@attrs.frozen
class AddWeightsReport:
    """What :func:`add_weights` did; ``output_path`` is the package folder."""

    output_path: Path
    results: tuple[ConversionResult, ...]

    @property
    def added(self) -> tuple[ConversionResult, ...]:
        return tuple(r for r in self.results if r.status == "added")

    @property
    def failed(self) -> tuple[ConversionResult, ...]:
        return tuple(r for r in self.results if r.status == "failed")

    @property
    def skipped(self) -> tuple[ConversionResult, ...]:
        return tuple(r for r in self.results if r.status == "skipped")

    def format_text(self) -> str:
        """One line per conversion, then where the model was written."""
        lines = [str(r) for r in self.results] or ["nothing to convert"]
        lines.append(f"model written to {self.output_path / PACKAGE_YAML_NAME}")
        return "\n".join(lines) + "\n"


def add_weights(
    model: DescrOrSource,
    output_path: str | os.PathLike[str],
    source_format: str | None = None,
    target_format: str | None = None,
    *,
    verify: bool | Verifier = True,
    options: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
    overwrite: bool = True,
) -> AddWeightsReport:
    """Copy ``model`` as a package folder to ``output_path`` and add converted weights entries.

    Every installed converter runs whose source is ``source_format`` (default: any format the
    model has, including ones added on the way) and whose target is ``target_format`` (default:
    any format the model lacks); for each target the first converter that succeeds wins, trying
    sources in the model's order. A new entry gets ``parent`` (its source format), a ``comment``
    saying how it was made, and its sha256. ``verify`` (default True: run the model test for
    the new format, see :func:`verify_with_test_model`; or a :data:`Verifier`; False: add
    unverified) decides whether an entry is kept; a failing entry is removed with its files.
    ``options`` are passed to every converter (default ``{"allow_tracing": True}``).
    Code the model brings runs under the same consent rule as for prediction: the package
    folder of a fetched model keeps its origin (``FolderRoot.origin``), so its architecture runs
    only with ``BIOIMAGEIO_ALLOW_REMOTE_CODE=1``.

    Everything is written into a working folder and moved to ``output_path`` at the end
    (``rdf.yaml`` last), so an interrupted run leaves no half-converted package there;
    ``overwrite=False`` refuses a folder that holds a description or a file of the package.

    Raises :class:`BioimageioError` when the model lacks ``source_format`` or is not a model.
    """
    original = resolve_description(model)
    if not isinstance(original, ModelDescr):
        raise BioimageioError(
            f"add_weights needs a model description (got a {original.type} description)"
        )
    present = original.weights.available_formats
    if source_format is not None and source_format not in present:
        raise BioimageioError(
            f"the model has no {source_format} weights",
            loc=("weights",),
            hint=f"choose a source format among {', '.join(present)}",
        )
    verifier: Verifier | None
    if verify is True:
        verifier = verify_with_test_model
    elif verify is False:
        verifier = None
    else:
        verifier = verify
    with package_folder(original, output_path, overwrite=overwrite) as staged:
        write_package_files(plan_package(original), staged)
        descr = load_description(staged.path, perform_io_checks=False)
        assert isinstance(descr, ModelDescr)  # the package of a model is a model
        origin = description_code_origin(original)
        if not origin.trusted:  # the local copy's code is as untrusted as the original's
            descr = attrs.evolve(descr, root=FolderRoot(staged.path, origin=origin.where))
        run = _Run(
            folder=staged.path,
            descr=descr,
            options={**DEFAULT_OPTIONS, **(options or {})},
            verifier=verifier,
            distribution_of=lambda pair: plugins.get_registry(settings).distribution_of(
                "converter", pair
            ),
            taken_names=staged.taken_names,
            output_folder=staged.final,
        )
        specs = plugins.converters(settings)
        run.convert_all(specs, source_format, target_format)
    return AddWeightsReport(staged.final, tuple(run.results))


def verify_with_test_model(model: ModelDescr, weight_format: str) -> str | None:
    """Run the model test (test inputs → test outputs at the description's tolerance, and the
    parameterized sizes) for one weight format; None when every check passed, else the first
    error (a format that cannot run here does not pass)."""
    summary = test_model(model, weights_format=weight_format)
    if summary.status == "passed":
        return None
    if summary.errors:
        name, issue = summary.errors[0]
        more = len(summary.errors) - 1
        return f"{name}: {issue.msg}" + (f" (and {more} more)" if more else "")
    return f"the model test did not pass (status {summary.status})"


class _PreprocessingOnly(ModelAdapter):
    """The adapter of a pipeline that only preprocesses: it loads no weights and runs nothing."""

    def forward(self, inputs: Any) -> dict[str, np.ndarray[Any, Any]]:
        raise AssertionError("preprocessing runs no model")  # pragma: no cover

    def unload(self) -> None:
        pass


def preprocessed_test_inputs(model: ModelDescr) -> dict[str, np.ndarray[Any, Any]]:
    """The model's test inputs after its preprocessing, by input id (axes in description order),
    e.g. the example inputs a converter traces or exports a network with.

    Test tensors are read relative to the model's root (sha256 checked) and preprocessed by a
    :class:`~bioimageio_core.pipeline.PredictionPipeline` exactly as prediction does (statistics
    of this sample; the weights are not loaded). Raises :class:`~bioimageio_core.errors.
    InputError` naming an input without a test tensor (optional inputs without one are left
    out).
    """
    members = {}
    for i, t in enumerate(model.inputs):
        if t.test_tensor is None:
            if getattr(t, "optional", False):
                continue
            raise InputError(
                f"input {t.id!r} has no test tensor", loc=f"inputs[{i}].test_tensor"
            )
        axes = tuple(str(a.id) for a in t.axes)
        path = model_file(model, t.test_tensor.source, t.test_tensor.sha256)
        members[str(t.id)] = fit_to_axes(
            load_tensor(path, expected_axes=axes, mmap=False), axes, name=f"test input {t.id!r}"
        )

    any_format = next(iter(model.weights.available_formats), "")
    adapter = _PreprocessingOnly(AdapterRequest.for_model(model, any_format))
    with create_prediction_pipeline(model, model_adapter=adapter) as pipeline:
        sample = pipeline.apply_preprocessing(members)
    return {tid: np.asarray(t.data) for tid, t in sample.members.items()}


@attrs.define
class _Run:
    folder: Path
    descr: ModelDescr
    options: Mapping[str, Any]
    verifier: Verifier | None
    distribution_of: Callable[[tuple[str, str]], str | None]
    taken_names: Callable[[], set[str]]
    """Lower-case names a new file must not take (also those in the output folder)."""
    output_folder: Path
    """Where the package goes when done (``folder`` is its working folder)."""
    results: list[ConversionResult] = attrs.Factory(list)

    def convert_all(
        self,
        specs: Mapping[tuple[str, str], ConverterSpec],
        source_format: str | None,
        target_format: str | None,
    ) -> None:
        present = list(self.descr.weights.available_formats)
        known_targets = list(dict.fromkeys(t for _, t in specs))
        if target_format is not None:
            if target_format in present:
                self.results.append(
                    ConversionResult(None, target_format, "skipped", "the model already has it")
                )
                return
            known_targets = [target_format]
        pending = [t for t in known_targets if t not in present]
        tried: set[tuple[str, str]] = set()
        progress = True
        while progress and pending:
            progress = False
            for target in list(pending):
                sources = [
                    s
                    for s in self.descr.weights.available_formats
                    if (s, target) in specs
                    and (s, target) not in tried
                    and (source_format is None or s == source_format)
                ]
                for source in sources:
                    tried.add((source, target))
                    if self._convert(specs[(source, target)]):
                        pending.remove(target)
                        progress = True
                        break
        # a target nobody asked for and no converter could start from is not worth a line
        for target in pending if target_format is not None else ():
            if not any(t == target for _, t in tried):
                self.results.append(
                    ConversionResult(None, target, "skipped", self._unreachable(specs, target))
                )

    def _unreachable(self, specs: Mapping[tuple[str, str], ConverterSpec], target: str) -> str:
        sources = sorted(s for s, t in specs if t == target)
        have = ", ".join(self.descr.weights.available_formats)
        if not sources:
            installed = ", ".join(f"{s}->{t}" for s, t in specs) or "none"
            return f"no installed plugin converts to {target} (installed converters: {installed})"
        return f"{target} is made from {', '.join(sources)}; the model has {have}"

    def _convert(self, spec: ConverterSpec) -> bool:
        """Run one converter; True when its entry was verified and added."""
        pair = (spec.source_format, spec.target_format)
        source, target = pair
        reason = unavailable_reason(spec)
        if reason is not None:
            hint = f"; {spec.install_hint}" if spec.install_hint else ""
            self.results.append(ConversionResult(source, target, "skipped", reason + hint))
            return False
        before = set(os.listdir(self.folder))
        suffix = WEIGHT_FILE_SUFFIXES.get(target, "")
        name = unique_name(f"weights_{target}{suffix}", self.taken_names())
        out = self.folder / name
        try:
            candidate = self._candidate(spec, out)
        except _Failed as e:
            _remove_new_files(self.folder, before)
            self.results.append(ConversionResult(source, target, "failed", str(e)))
            return False
        if self.verifier is not None:
            try:
                problem = self.verifier(candidate, target)
            except Exception as e:  # a crash while testing is a failed verification
                problem = f"{type(e).__name__}: {e}"
            if problem is not None:
                _remove_new_files(self.folder, before)
                self.results.append(
                    ConversionResult(source, target, "failed", f"verification failed: {problem}")
                )
                return False

        save_bioimageio_yaml_only(candidate, self.folder / PACKAGE_YAML_NAME)
        self.descr = candidate
        entry = candidate.weights[target]
        how = entry.comment + ("" if self.verifier is not None else " (not verified)")
        self.results.append(ConversionResult(source, target, "added", how, entry.source))
        return True

    def _candidate(self, spec: ConverterSpec, out: Path) -> ModelDescr:
        """The model with the converter's new entry (files written, nothing verified yet)."""
        source, target = spec.source_format, spec.target_format
        try:
            entry = spec.convert(self.descr, source, out, self.options)
        except Exception as e:  # report and go on with the other converters
            raise _Failed(f"conversion failed: {type(e).__name__}: {e}") from e
        if not attrs.has(type(entry)) or not isinstance(getattr(entry, "source", None), str):
            raise _Failed(f"the converter returned {type(entry).__name__}, not a weights entry")
        written = self.folder / Path(entry.source).name
        if not written.is_file():
            written = out
        if not written.is_file():
            raise _Failed(f"the converter wrote no file at {self.output_folder / out.name}")
        changes: dict[str, Any] = {"source": written.name, "sha256": sha256_of_file(written)}
        if getattr(entry, "parent", None) is None:
            changes["parent"] = source
        if not getattr(entry, "comment", ""):
            dist = self.distribution_of((source, target)) or "a plugin"
            changes["comment"] = f"converted from {source} by {dist} (bioimageio-run add-weights)"
        ext = getattr(entry, "external_data", None)
        if isinstance(ext, FileDescr):  # ONNX external data
            ext_path = self.folder / Path(ext.source).name
            if not ext_path.is_file():
                raise _Failed(f"the converter wrote no external data file {ext_path.name}")
            changes["external_data"] = FileDescr(
                source=ext_path.name, sha256=sha256_of_file(ext_path)
            )
        try:
            if isinstance(entry, UnknownWeightsDescr):  # a format no plugin parses: edit raw too
                raw = {**entry.raw, **changes}
                entry = attrs.evolve(
                    entry, source=changes["source"], sha256=changes["sha256"], raw=raw
                )
            else:
                entry = attrs.evolve(entry, **changes)
        except (TypeError, ValueError) as e:
            raise _Failed(f"the converter's entry cannot take {sorted(changes)}: {e}") from e
        formats = dict(self.descr.weights.formats)
        formats[target] = entry
        candidate = attrs.evolve(self.descr, weights=WeightsDescr(formats=formats))
        problems = _validation_errors(candidate)
        if problems:
            raise _Failed(f"the new entry is invalid: {problems}")
        return candidate


class _Failed(Exception):
    """A conversion that produced no usable entry (the message says why)."""


def _validation_errors(descr: ModelDescr) -> str:
    result = build_description(dump_description(descr), extensions=plugins.spec_extensions())
    return "; ".join(str(i) for i in result.errors)


def _remove_new_files(folder: Path, before: set[str]) -> None:
    for name in set(os.listdir(folder)) - before:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
