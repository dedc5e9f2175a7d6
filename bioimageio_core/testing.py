"""Model testing: reproduce a model's test outputs and check parameterized input sizes.

:func:`test_model` / :func:`test_description` validate a description (format, and the files the
test needs), then, per weight format, run the test inputs through a prediction pipeline without
blocking and compare with the test outputs, then run a few valid larger input sizes and check the
output shapes. Every result is a detail of the returned :class:`ValidationSummary`.

Numbers follow bioimageio.core: arrays are compared in float32; an element is mismatched when
``|actual - expected| > atol + rtol * |expected|`` (asymmetric, as :func:`numpy.isclose`; NaN never
matches); a 0.5 model may have up to ``mismatched_elements_per_million`` (default 100) mismatched
elements, a 0.4 model none. Mismatches within that allowance are reported as warnings.
"""

from __future__ import annotations

import os
import random
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs
import numpy as np
import numpy.typing as npt

from bioimageio_core._compat import weights_format_keyword
from bioimageio_core.sources import root_of
from bioimageio_core.spec.issues import Issue, Loc
from bioimageio_core.spec.tolerance import (
    DEFAULT_REPRODUCIBILITY_TOLERANCE,
    output_kind,
    select_tolerance,
)
from bioimageio_core.summary import ValidationDetail, ValidationSummary

if TYPE_CHECKING:
    from bioimageio_core.pipeline import PredictionPipeline
    from bioimageio_core.remote import ServerInfo
    from bioimageio_core.shapes import ModelShape
    from bioimageio_core.sources import Root, Source
    from bioimageio_core.spec import InputTensorDescr, ModelDescr, OutputTensorDescr
    from bioimageio_core.tensor import Tensor

Determinism = Literal["seed_only", "full"]
Array = np.ndarray[Any, Any]

DEFAULT_RELATIVE_TOLERANCE = 1e-3
DEFAULT_ABSOLUTE_TOLERANCE = 1e-3
DEFAULT_MISMATCHED_PPM = 100
"""Defaults of ``config.bioimageio.reproducibility_tolerance`` entries (format 0.5)."""

N_WORST = 3
"""How many of the worst mismatched elements a report names."""



# ---------------------------------------------------------------------------------------------
# tolerance and comparison (pure functions over arrays)


@attrs.frozen
class Tolerance:
    """How closely an output must reproduce its test output."""

    relative: float = DEFAULT_RELATIVE_TOLERANCE
    absolute: float = DEFAULT_ABSOLUTE_TOLERANCE
    mismatched_ppm: float = DEFAULT_MISMATCHED_PPM
    """Mismatched elements allowed per million elements."""
    source: str = attrs.field(default="defaults", eq=False)
    """Where the numbers come from, e.g. ``config.bioimageio.reproducibility_tolerance[1]
    (any_discrete_output)`` (for reports; not part of equality)."""

    @property
    def exact(self) -> bool:
        """No difference allowed per element (integer outputs are then compared as integers)."""
        return self.relative == 0 and self.absolute == 0

    def __str__(self) -> str:
        return (
            f"atol {self.absolute:g} + rtol {self.relative:g}·|expected|, "
            f"{self.mismatched_ppm:g} mismatched per million allowed"
        )


def get_tolerance(
    model: ModelDescr,
    output_id: str,
    weights_format: str,
    *,
    original_format_version: str | None = None,
) -> Tolerance:
    """The tolerance for one output and weight format, as bioimageio.core chooses it.

    Start from the defaults (0.4 models: no mismatched element allowed); a legacy
    ``config.bioimageio.test_kwargs[<weights format>]`` entry overrides ``relative_tolerance`` /
    ``absolute_tolerance`` (``decimal: d`` means atol ``1.5·10^-d``, rtol 0); the first
    ``config.bioimageio.reproducibility_tolerance`` entry that applies
    (:func:`bioimageio_core.spec.select_tolerance`: weight format, output id or the output's
    continuous/discrete data type) replaces everything. A model without the key has the format's
    default entries, which ``test_kwargs`` override; 0.3/0.4 models have no entries.

    Raises:
        ValueError: a ``test_kwargs`` value is not a number.
    """
    version = original_format_version or model.format_version
    legacy = version.startswith(("0.3", "0.4"))
    tol = Tolerance(
        mismatched_ppm=0 if legacy else DEFAULT_MISMATCHED_PPM,
        source=f"defaults of format {version[:3]}",
    )
    bioimageio = model.config.bioimageio
    test_kwargs = bioimageio.extra.get("test_kwargs") if bioimageio.extra else None
    kwargs = test_kwargs.get(weights_format) if isinstance(test_kwargs, Mapping) else None
    if isinstance(kwargs, Mapping):

        def number(key: str, default: float) -> float:
            value = kwargs.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(
                    f"config.bioimageio.test_kwargs.{weights_format}.{key} must be a number "
                    f"(got {value!r})"
                )
            return float(value)

        source = f"config.bioimageio.test_kwargs.{weights_format}"
        if kwargs.get("decimal") is not None:
            tol = attrs.evolve(
                tol, absolute=1.5 * 10 ** -number("decimal", 0), relative=0.0, source=source
            )
        else:
            tol = attrs.evolve(
                tol,
                relative=number("relative_tolerance", DEFAULT_RELATIVE_TOLERANCE),
                absolute=number("absolute_tolerance", DEFAULT_ABSOLUTE_TOLERANCE),
                source=source,
            )
    if legacy:
        return tol  # format 0.4 has no reproducibility_tolerance
    entries = bioimageio.reproducibility_tolerance
    if isinstance(kwargs, Mapping) and entries == DEFAULT_REPRODUCIBILITY_TOLERANCE:
        return tol  # the author's test_kwargs beat the format's default entries
    dtype = model.get_tensor(output_id).dtype if _has_output(model, output_id) else "float32"
    entry = select_tolerance(entries, output_id, dtype, weights_format)
    if entry is not None:
        if entries == DEFAULT_REPRODUCIBILITY_TOLERANCE:
            source = f"format default for {output_kind(dtype)} outputs"
        else:
            ids = entry.output_ids
            which = ids if isinstance(ids, str) else ", ".join(ids) or "every output"
            source = (
                f"config.bioimageio.reproducibility_tolerance[{entries.index(entry)}] ({which})"
            )
        return Tolerance(
            relative=entry.relative_tolerance,
            absolute=entry.absolute_tolerance,
            mismatched_ppm=entry.mismatched_elements_per_million,
            source=source,
        )
    return tol


def _has_output(model: ModelDescr, output_id: str) -> bool:
    return any(o.id == output_id for o in model.outputs)


@attrs.frozen
class Mismatch:
    """One element that differs: its index, the actual and the expected value."""

    index: tuple[int, ...]
    actual: float
    expected: float


@attrs.frozen
class Comparison:
    """Result of comparing an output with its expected (test) output."""

    tolerance: Tolerance
    size: int
    mismatched: int
    """Elements with ``|a - e| > atol + rtol·|e|`` (or NaN)."""
    max_abs_error: float
    """``max |a - e|`` (NaN when any element is NaN in one array only)."""
    max_rel_error: float
    """``max |a - e| / (|e| + 1e-6)``."""
    max_excess: float
    """``max(|a - e| - rtol·|e|)``: the largest absolute difference beyond the relative part."""
    worst: tuple[Mismatch, ...] = ()
    """The worst mismatched elements (largest excess over the allowed difference first)."""

    @property
    def ppm(self) -> float:
        """Mismatched elements per million."""
        return self.mismatched / self.size * 1e6 if self.size else 0.0

    @property
    def passed(self) -> bool:
        return self.ppm <= self.tolerance.mismatched_ppm

    def describe(self, axes: Sequence[str] | None = None) -> str:
        """One paragraph: errors, mismatch count against the allowance, worst elements."""
        text = (
            f"max abs error {self.max_abs_error:.3g}, max rel error {self.max_rel_error:.3g}; "
            f"{self.mismatched} of {self.size} elements mismatched ({self.ppm:.4g} per million, "
            f"{self.tolerance.mismatched_ppm:g} allowed) "
            + (
                "compared exactly"
                if self.tolerance.exact
                else f"with atol {self.tolerance.absolute:g}, rtol {self.tolerance.relative:g}"
            )
            + f" (tolerance: {self.tolerance.source})"
        )
        if self.worst:
            text += "; worst at " + ", ".join(
                f"{_index_text(m.index, axes)}: {m.actual:.6g} instead of {m.expected:.6g}"
                for m in self.worst
            )
        return text


def _index_text(index: tuple[int, ...], axes: Sequence[str] | None) -> str:
    if axes is None or len(axes) != len(index):
        return str(index)
    return "(" + ", ".join(f"{a}={i}" for a, i in zip(axes, index, strict=True)) + ")"


def compare_arrays(
    actual: npt.ArrayLike,
    expected: npt.ArrayLike,
    tolerance: Tolerance | None = None,
    *,
    n_worst: int = N_WORST,
) -> Comparison:
    """Compare ``actual`` with ``expected`` (same shape) in float32 under ``tolerance``.

    ``tolerance`` defaults to :class:`Tolerance` (rtol 1e-3, atol 1e-3, 100 per million).

    Raises:
        ValueError: the shapes differ.
    """
    tolerance = tolerance or Tolerance()
    a_native, e_native = np.asarray(actual), np.asarray(expected)
    if a_native.shape != e_native.shape:
        raise ValueError(
            f"shape {a_native.shape} differs from the expected shape {e_native.shape}"
        )
    if tolerance.exact and a_native.dtype.kind in "biu" and e_native.dtype.kind in "biu":
        return _compare_exactly(a_native, e_native, tolerance, n_worst)
    a = np.asarray(a_native, dtype=np.float32)
    e = np.asarray(e_native, dtype=np.float32)
    rtol = np.float32(tolerance.relative)
    atol = np.float32(tolerance.absolute)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a - e)
        rel_part = rtol * np.abs(e)
        excess = diff - rel_part
        # as numpy.isclose: infinities match only an equal infinity, NaN matches nothing
        ok = np.where(np.isfinite(a) & np.isfinite(e), diff <= atol + rel_part, a == e)
    mismatched_mask = ~ok
    n_mismatched = int(np.count_nonzero(mismatched_mask))
    if a.size == 0:
        return Comparison(tolerance, 0, 0, 0.0, 0.0, 0.0)
    finite = np.where(a == e, np.float32(0), diff)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        rel = finite / (np.abs(e) + np.float32(1e-6))
    worst: tuple[Mismatch, ...] = ()
    if n_mismatched and n_worst > 0:
        # rank mismatches by excess; NaN differences (NaN in one array) rank first
        score = np.where(mismatched_mask, np.nan_to_num(excess, nan=np.inf), -np.inf).ravel()
        k = min(n_worst, n_mismatched)
        top = np.argpartition(-score, k - 1)[:k]
        top = top[np.argsort(-score[top], kind="stable")]
        worst = tuple(
            Mismatch(
                tuple(int(i) for i in np.unravel_index(int(flat), a.shape)),
                float(a.flat[flat]),
                float(e.flat[flat]),
            )
            for flat in top
        )
    return Comparison(
        tolerance=tolerance,
        size=int(a.size),
        mismatched=n_mismatched,
        max_abs_error=_nanmax_or_nan(finite),
        max_rel_error=_nanmax_or_nan(rel),
        max_excess=_nanmax_or_nan(np.where(a == e, np.float32(0), excess)),
        worst=worst,
    )


def _compare_exactly(a: Array, e: Array, tolerance: Tolerance, n_worst: int) -> Comparison:
    """Integer (or boolean) arrays element by element in their own types: no float32 rounding of
    large labels."""
    if a.size == 0:
        return Comparison(tolerance, 0, 0, 0.0, 0.0, 0.0)
    mismatched = a != e
    n_mismatched = int(np.count_nonzero(mismatched))
    diff = np.abs(a.astype(np.float64) - e.astype(np.float64))
    rel = diff / (np.abs(e.astype(np.float64)) + 1e-6)
    worst: tuple[Mismatch, ...] = ()
    if n_mismatched and n_worst > 0:
        flat = np.flatnonzero(mismatched)
        k = min(n_worst, flat.size)
        order = np.argsort(-diff.flat[flat], kind="stable")[:k]
        worst = tuple(
            Mismatch(
                tuple(int(i) for i in np.unravel_index(int(f), a.shape)),
                float(a.flat[f]),
                float(e.flat[f]),
            )
            for f in flat[order]
        )
    max_abs = float(diff.max())
    return Comparison(
        tolerance=tolerance,
        size=int(a.size),
        mismatched=n_mismatched,
        max_abs_error=max_abs,
        max_rel_error=float(rel.max()),
        max_excess=max_abs,
        worst=worst,
    )


def _nanmax_or_nan(x: Array) -> float:
    """The maximum of ``x``, NaN when any element is NaN."""
    return float(np.max(x)) if x.size else 0.0


# ---------------------------------------------------------------------------------------------
# determinism


def enable_determinism(
    mode: Determinism = "seed_only", weight_formats: Iterable[str] | None = None
) -> None:
    """Seed Python's, numpy's and the backends' random number generators with 0.

    ``mode``: ``"seed_only"`` or ``"full"`` (also deterministic algorithms only, where a backend
    offers that); ``weight_formats``: the formats about to run. Each of them whose plugin is usable
    here and provides ``WeightFormatSpec.enable_determinism`` is seeded through it (this imports
    that framework); what ``"full"`` needs besides (e.g. TensorFlow without oneDNN) is the
    plugin's business.
    """
    if mode not in ("seed_only", "full"):
        raise ValueError(f"determinism must be 'seed_only' or 'full' (got {mode!r})")
    random.seed(0)
    np.random.seed(0)
    formats = list(dict.fromkeys(weight_formats or ()))
    if not formats:
        return
    from bioimageio_core import plugins

    specs = plugins.weight_formats()
    seeded: set[object] = set()
    for name in formats:
        spec = specs.get(name)
        if (
            spec is None
            or spec.enable_determinism is None
            or plugins.unavailable_reason(spec) is not None
        ):
            continue
        if spec.enable_determinism in seeded:  # one framework behind several formats
            continue
        seeded.add(spec.enable_determinism)
        spec.enable_determinism(mode, 0)


# ---------------------------------------------------------------------------------------------
# testing a description


def test_model(
    source: Source | ModelDescr,
    weights_format: str | None = None,
    devices: Sequence[str] | None = None,
    determinism: Determinism = "seed_only",
    *,
    stop_early: bool = False,
    save_failing_outputs: str | os.PathLike[str] | None = None,
    weight_format: str | None = None,
    server: str | None = None,
) -> ValidationSummary:
    """Test a model description; see :func:`test_description` (this one expects a model)."""
    return test_description(
        source,
        weights_format=weights_format_keyword(weights_format, weight_format),
        devices=devices,
        determinism=determinism,
        stop_early=stop_early,
        save_failing_outputs=save_failing_outputs,
        expected_type="model",
        server=server,
    )


def test_description(
    source: Source | ModelDescr,
    *,
    weights_format: str | None = None,
    devices: Sequence[str] | None = None,
    determinism: Determinism = "seed_only",
    stop_early: bool = False,
    save_failing_outputs: str | os.PathLike[str] | None = None,
    expected_type: str | None = None,
    weight_format: str | None = None,
    server: str | None = None,
) -> ValidationSummary:
    """Validate a description and, for a model, test it; returns the summary (never raises for a
    bad model).

    ``weights_format``: test only this format (default: every present format whose plugin can run
    here; the others are reported as skipped with what to install). ``devices``: e.g.
    ``["cuda"]``. ``stop_early``: stop at the first failed check. A description of another type
    than a model has nothing to run: its format and referenced files are checked (files such as
    covers and a dataset's data only for existence, never downloaded). ``save_failing_outputs``: a
    folder where outputs that do not reproduce their test output are written as
    ``<weights format>/<output id>.npy``. Only the files a test needs are fetched: the test
    tensors and the weights of the formats that run.

    ``server``: the URL of a ``bioimageio-run serve`` server that runs the forward calls (the
    formats tested are those the server can run); everything else runs here. Raises
    :class:`~bioimageio_core.errors.ServerError` when the server cannot be reached or refuses
    the token (before anything is tested).
    """
    from bioimageio_core.spec import ModelDescr

    weights_format = weights_format_keyword(weights_format, weight_format)
    server_info = None
    if server is not None:
        from bioimageio_core.remote import ServerClient

        with ServerClient(server) as client:
            server_info = client.info()
    summary, descr = _load(source)
    if descr is None:
        return summary
    if expected_type is not None and getattr(descr, "type", None) != expected_type:
        summary.add_detail(
            _detail(
                f"has type {expected_type}",
                [
                    _error(
                        ("type",),
                        f"expected a {expected_type}, got a {getattr(descr, 'type', '?')}",
                    )
                ],
            )
        )
        return summary
    if not isinstance(descr, ModelDescr):
        kind = getattr(descr, "type", None) or "resource"
        summary.add_detail(
            ValidationDetail(
                f"test the {kind}",
                "passed",
                note=f"its format and referenced files; a {kind} has nothing to run",
            )
        )
        return summary
    runner = _ModelTest(
        descr,
        summary,
        devices=devices,
        stop_early=stop_early,
        save_dir=None if save_failing_outputs is None else Path(save_failing_outputs),
        server=server_info,
        source=source,
    )
    try:
        runner.run(weights_format, determinism)
    except Exception as e:  # a bug or a malformed config must not turn a report into a crash
        summary.add_detail(
            _detail(
                "test the model",
                [_error((), f"internal error while testing: {_one_line(e)} (please report this)")],
            )
        )
    return summary


def _load(source: Any) -> tuple[ValidationSummary, Any]:
    """Format validation without io checks, then the io check of the test tensors."""
    from bioimageio_core.errors import ValidationError
    from bioimageio_core.loading import (
        check_files,
        describe_checked,
        load_description,
        validate_format,
    )
    from bioimageio_core.spec import ModelDescr

    if isinstance(source, ModelDescr):
        name = source.name
        summary = ValidationSummary(
            name=name,
            source=name,
            type="model",
            id=getattr(source, "id", None),
            format_version=source.format_version,
            converted_format_version=source.format_version,
        )
        summary.add_detail(ValidationDetail("format", "passed", kind="format"))
        descr: Any = source
    else:
        summary = validate_format(source, perform_io_checks=False)
        if not summary.is_valid:
            return summary, None
        try:
            descr = load_description(source, perform_io_checks=False)
        except ValidationError as e:  # the source changed between the two reads
            return e.summary, None
    if isinstance(descr, ModelDescr):
        kinds: tuple[str, ...] = ("test_tensor",)
        name = "io checks (test tensors)"
    else:
        kinds, name = (), "io checks"
    checked: list[tuple[str, str]] = []
    issues = list(check_files(descr, kinds or None, checked=checked))
    summary.add_detail(
        ValidationDetail.from_issues(name, issues, kind="format", note=describe_checked(checked))
    )
    return summary, None if issues else descr


def _detail(name: str, issues: Iterable[Issue]) -> ValidationDetail:
    return ValidationDetail.from_issues(name, issues, kind="test")


def _error(loc: Loc, msg: str, type_: str = "test_error") -> Issue:
    return Issue(loc, msg, "error", type_)


def _warning(loc: Loc, msg: str, type_: str = "test_warning") -> Issue:
    return Issue(loc, msg, "warning", type_)


def _prediction_failed(error: Exception) -> str:
    if isinstance(error, MemoryError):
        return (
            f"not enough memory to run the model on inputs of these sizes ({_one_line(error)}); "
            "free memory, or check the sizes the model's axes declare"
        )
    return f"prediction failed: {_one_line(error)}"


def _one_line(error: BaseException) -> str:
    """The error as one line; our own errors speak for themselves, others get their type name."""
    from bioimageio_core.errors import BioimageioError

    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, BioimageioError) or type(error).__name__ in text:
        return text
    return f"{type(error).__name__}: {text}"


@attrs.frozen
class _Plan:
    """Which formats run and why the others do not."""

    run: tuple[str, ...]
    skipped: Mapping[str, str]
    """Format → why it cannot run here (with what to install)."""


def plan_weight_formats(
    model: ModelDescr, weights_format: str | None = None, server: ServerInfo | None = None
) -> _Plan:
    """The present formats that can run here (or on ``server``; or the chosen one) and reasons
    for the others."""
    from bioimageio_core import plugins

    present = list(model.weights.available_formats)
    specs = plugins.weight_formats()
    wanted = present if weights_format is None else [weights_format]
    run: list[str] = []
    skipped: dict[str, str] = {}
    for wf in wanted:
        if wf not in present:
            skipped[wf] = f"the model has no {wf} weights (it has {', '.join(present)})"
            continue
        if server is not None:
            remote = server.weight_formats.get(wf)
            if remote is None or remote.reason is not None:
                why = "no plugin there provides it" if remote is None else remote.reason
                hint = (
                    remote.install_hint if remote is not None and remote.install_hint
                    else plugins.install_hint_for(wf)
                )
                skipped[wf] = (
                    f"the server at {server.url} cannot run {wf} weights: {why}; to test them "
                    f"there: {hint}"
                )
            else:
                run.append(wf)
            continue
        spec = specs.get(wf)
        if spec is None:
            hint = plugins.install_hint_for(wf)
            skipped[wf] = f"no installed plugin runs {wf} weights; to test them: {hint}"
            continue
        reason = plugins.unavailable_reason(spec)
        if reason is not None:
            hint = f"; to test them: {spec.install_hint}" if spec.install_hint else ""
            skipped[wf] = f"{wf} weights cannot run here: {reason}{hint}"
            continue
        run.append(wf)
    return _Plan(tuple(run), skipped)


class _StopTesting(Exception):
    """Raised internally to end a test run early."""


class _ModelTest:
    """Runs the tests of one model, adding details to ``summary``."""

    def __init__(
        self,
        model: ModelDescr,
        summary: ValidationSummary,
        *,
        devices: Sequence[str] | None,
        stop_early: bool,
        save_dir: Path | None,
        server: ServerInfo | None = None,
        source: object = None,
    ) -> None:
        self.server = server
        self.source = source
        self.model = model
        self.summary = summary
        self.devices = devices
        self.stop_early = stop_early
        self.save_dir = save_dir
        self.root: Root = root_of(model)
        self.original_version = summary.format_version or model.format_version

    def add(self, detail: ValidationDetail) -> None:
        self.summary.add_detail(detail)
        if self.stop_early and detail.status == "failed":
            raise _StopTesting

    def run(self, weights_format: str | None, determinism: Determinism) -> None:
        plan = plan_weight_formats(self.model, weights_format, self.server)
        try:
            if weights_format is not None and weights_format in plan.skipped:
                reason = plan.skipped[weights_format]
                self.add(_detail(f"test {weights_format} weights", [_error(("weights",), reason)]))
                return
            if not plan.run:
                reasons = "; ".join(plan.skipped.values()) or "the model has no weights"
                self.add(
                    _detail(
                        "run the model",
                        [_error(("weights",), f"no weight format can run here: {reasons}")],
                    )
                )
                return
            inputs, expected = self.load_test_tensors()
            if inputs is None or expected is None:
                return
            # a server seeds its own frameworks; here only Python's and numpy's generators
            enable_determinism(determinism, plan.run if self.server is None else ())
            for wf in (*plan.run, *plan.skipped):  # declaration order within each group
                if wf in plan.skipped:
                    reason = plan.skipped[wf]
                    self.add(_detail(f"{wf} weights: skipped", [_warning(("weights", wf), reason)]))
                else:
                    self.test_format(wf, inputs, expected)
        except _StopTesting:
            return

    # --- test tensors ---------------------------------------------------------------------------

    def load_test_tensors(self) -> tuple[dict[str, Tensor] | None, dict[str, Tensor] | None]:
        from bioimageio_core.io import load_tensor
        from bioimageio_core.io.axes import fit_to_axes
        from bioimageio_core.sources import open_file

        issues: list[Issue] = []
        loaded: list[dict[str, Tensor]] = [{}, {}]
        sides: list[tuple[str, Sequence[InputTensorDescr | OutputTensorDescr]]] = [
            ("inputs", self.model.inputs),
            ("outputs", self.model.outputs),
        ]
        for k, (field, tensors) in enumerate(sides):
            for i, t in enumerate(tensors):
                loc: Loc = (field, i, "test_tensor")
                if t.test_tensor is None:
                    if getattr(t, "optional", False):
                        continue
                    issues.append(_error(loc, f"{field[:-1]} {t.id!r} has no test tensor"))
                    continue
                axes = tuple(a.id for a in t.axes)
                try:
                    path = open_file(self.root, t.test_tensor.source, t.test_tensor.sha256)
                    tensor = load_tensor(path, expected_axes=axes)
                    loaded[k][t.id] = fit_to_axes(tensor, axes, name=f"test {field[:-1]} {t.id!r}")
                except Exception as e:
                    issues.append(
                        _error(
                            loc, f"cannot read test tensor {t.test_tensor.source}: {_one_line(e)}"
                        )
                    )
        if issues:
            self.add(_detail("load test tensors", issues))
            return None, None
        return loaded[0], loaded[1]

    # --- one weight format ----------------------------------------------------------------------

    def test_format(
        self, wf: str, inputs: Mapping[str, Tensor], expected: Mapping[str, Tensor]
    ) -> None:
        from bioimageio_core.loading import check_files

        name = f"reproduce test outputs with {wf} weights"
        # a server fetches (and checks) the weights itself
        weights = () if self.server is not None else (f"weights:{wf}",)
        issues = [i for i in check_files(self.model, weights)] if weights else []
        if issues:
            self.add(_detail(name, issues))
            return
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                pipeline = self._pipeline(wf)
        except Exception as e:
            self.add(
                _detail(name, [_error(("weights", wf), f"cannot load the model: {_one_line(e)}")])
            )
            return
        finally:
            ours = _our_warnings(caught)
        if ours:
            self.add(_detail(f"load {wf} weights", [_warning(("weights", wf), w) for w in ours]))
        with pipeline:
            self.reproduce(pipeline, wf, inputs, expected)
            if not self.original_version.startswith(("0.3", "0.4")):
                self.parameterized_sizes(pipeline, wf, inputs)

    def _pipeline(self, wf: str) -> PredictionPipeline:
        from bioimageio_core.pipeline import create_prediction_pipeline

        # test tensors are the model's raw input and output: no halo padding at the border
        if self.server is None:
            return create_prediction_pipeline(
                self.model, devices=self.devices, weights_format=wf, border="inside"
            )
        # a URL or id is passed on, so that the server fetches the model itself
        source = self.source if isinstance(self.source, str) else self.model
        return create_prediction_pipeline(
            source, devices=self.devices, weights_format=wf, border="inside",
            server=self.server.url,
        )

    def reproduce(
        self,
        pipeline: PredictionPipeline,
        wf: str,
        inputs: Mapping[str, Tensor],
        expected: Mapping[str, Tensor],
    ) -> None:
        try:
            result = pipeline.predict_sample_without_blocking(dict(inputs))
        except Exception as e:
            self.add(
                _detail(
                    f"reproduce test outputs with {wf} weights",
                    [_error(("weights", wf), _prediction_failed(e))],
                )
            )
            return
        for i, t in enumerate(self.model.outputs):
            self.add(self.compare_output(wf, i, result.members.get(t.id), expected[t.id]))

    def compare_output(
        self, wf: str, index: int, actual: Tensor | None, expected: Tensor
    ) -> ValidationDetail:
        out = self.model.outputs[index]
        loc: Loc = ("outputs", index, "test_tensor")
        name = f"reproduce test output {out.id!r} with {wf} weights"
        if actual is None:
            return _detail(name, [_error(loc, f"the model returned no output {out.id!r}")])
        if actual.dims != expected.dims or actual.shape != expected.shape:
            return _detail(
                name,
                [
                    _error(
                        loc,
                        f"output {out.id!r} has shape {_sizes_text(actual)}, the test output has "
                        f"{_sizes_text(expected)}",
                    )
                ],
            )
        try:
            tolerance = get_tolerance(
                self.model, out.id, wf, original_format_version=self.original_version
            )
        except ValueError as e:
            return _detail(name, [_error(("config", "bioimageio", "test_kwargs", wf), str(e))])
        comparison = compare_arrays(actual.data, expected.data, tolerance)
        text = comparison.describe(actual.dims)
        if comparison.passed and not comparison.mismatched:
            return ValidationDetail(f"{name}: {text}", "passed")
        if comparison.passed:
            return _detail(name, [_warning(loc, f"within tolerance, but {text}")])
        saved = self._save_failing(wf, out.id, actual)
        return _detail(name, [_error(loc, f"output {out.id!r} does not reproduce: {text}{saved}")])

    def _save_failing(self, wf: str, output_id: str, actual: Tensor) -> str:
        if self.save_dir is None:
            return ""
        from bioimageio_core.errors import BioimageioError
        from bioimageio_core.io import save_tensor

        target = self.save_dir / wf / f"{output_id}.npy"
        try:
            save_tensor(target, actual)
        except BioimageioError as e:
            return f" (could not save the output: {e.message})"
        except OSError as e:
            return f" (could not save the output to {target}: {e.strerror or e})"
        return f"; the output was saved to {target}"

    # --- parameterized sizes --------------------------------------------------------------------

    def parameterized_sizes(
        self, pipeline: PredictionPipeline, wf: str, inputs: Mapping[str, Tensor]
    ) -> None:
        from bioimageio_core.shapes import ShapeError, input_sizes

        spec = pipeline.shape
        seen: set[tuple[tuple[tuple[str, str], int], ...]] = set()
        for batch, n in size_cases(spec):
            try:
                sizes = input_sizes(spec, n, batch)
            except ShapeError:
                continue
            key = tuple(sorted(sizes.items()))
            if key in seen:
                continue
            seen.add(key)
            self.add(self.run_size_case(pipeline, wf, inputs, sizes, batch, n))

    def run_size_case(
        self,
        pipeline: PredictionPipeline,
        wf: str,
        inputs: Mapping[str, Tensor],
        sizes: Mapping[tuple[str, str], int],
        batch: int,
        n: int,
    ) -> ValidationDetail:
        spec = pipeline.shape
        text = "; ".join(
            f"{t.id} "
            + " ".join(f"{a.id}={sizes[(t.id, a.id)]}" for a in t.axes if (t.id, a.id) in sizes)
            for t in spec.inputs
        )
        name = f"run {wf} weights with input sizes {text}"
        try:
            resized = {
                tid: resize_to(tensor, {a: s for (t, a), s in sizes.items() if t == tid})
                for tid, tensor in inputs.items()
            }
            result = pipeline.predict_sample_without_blocking(resized)
        except Exception as e:
            return _detail(name, [_error(("weights", wf), _prediction_failed(e))])
        actual = {tid: t.sizes for tid, t in result.members.items()}
        issues = check_output_sizes(spec, sizes, actual, batch)
        context = f" (blocksize parameter n={n}, batch size {batch})"
        issues = [attrs.evolve(i, msg=i.msg + context) for i in issues]
        return _detail(name, issues)


def _our_warnings(caught: Sequence[warnings.WarningMessage]) -> list[str]:
    """Texts of the warnings this project and its plugins issued; others are issued again."""
    ours: list[str] = []
    for w in caught:
        if re.search(r"[/\\]bioimageio_(core|run_\w+)[/\\]", w.filename):
            ours.append(" ".join(str(w.message).split()))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return list(dict.fromkeys(ours))


def check_output_sizes(
    spec: ModelShape,
    input_sizes: Mapping[tuple[str, str], int],
    outputs: Mapping[str, Mapping[str, int]],
    batch_size: int | None = None,
) -> list[Issue]:
    """Errors for outputs (``{tensor id: {axis id: size}}``) whose sizes the description does not
    predict for these input sizes: a known size must match, a data dependent one lie in its range.
    """
    from bioimageio_core.shapes import output_sizes

    expected = output_sizes(spec, input_sizes, batch_size)
    issues: list[Issue] = []
    for i, t in enumerate(spec.outputs):
        actual = outputs.get(t.id)
        if actual is None:
            issues.append(_error(("outputs", i), f"the model returned no output {t.id!r}"))
            continue
        for j, a in enumerate(t.axes):
            problem = _size_problem(a.size, actual.get(a.id), expected.get((t.id, a.id)))
            if problem:
                issues.append(
                    _error(("outputs", i, "axes", j), f"output {t.id!r} axis {a.id!r}: {problem}")
                )
    return issues


def _size_problem(size: Any, got: int | None, want: int | None) -> str | None:
    from bioimageio_core.shapes import DataDependentSize

    if got is None:
        return "missing in the output"
    if want is not None:
        return None if got == want else f"size {got}, expected {want}"
    if isinstance(size, DataDependentSize):
        if got < size.min or (size.max is not None and got > size.max):
            return f"size {got} is outside [{size.min}, {size.max}]"
    return None


def size_cases(spec: Any) -> list[tuple[int, int]]:
    """``(batch size, blocksize parameter n)`` pairs to run, as bioimageio.core chooses them.

    ``n`` in 0, 1, 2 when an input axis is parameterized (else 0); batch sizes: the fixed batch
    sizes present, else 1 and 2 when there are batch axes, else 1.
    """
    from bioimageio_core.shapes import FixedSize, ParameterizedSize

    axes = [a for t in spec.inputs for a in t.axes]
    ns = [0, 1, 2] if any(isinstance(a.size, ParameterizedSize) for a in axes) else [0]
    batch_axes = [a for t in (*spec.inputs, *spec.outputs) for a in t.axes if a.type == "batch"]
    fixed = sorted({a.size.size for a in batch_axes if isinstance(a.size, FixedSize)})
    batches = fixed or ([1, 2] if batch_axes else [1])
    return [(b, n) for b in batches for n in ns]


def resize_to(tensor: Tensor, sizes: Mapping[str, int]) -> Tensor:
    """Centre-crop or symmetrically pad (left gets ``d // 2``) each axis to ``sizes``."""
    crop: dict[str, tuple[int, int]] = {}
    pad: dict[str, tuple[int, int]] = {}
    for axis, target in sizes.items():
        if axis not in tensor.dims:
            continue
        current = tensor.sizes[axis]
        if target < current:
            start = (current - target) // 2
            crop[axis] = (start, start + target)
        elif target > current:
            d = target - current
            pad[axis] = (d // 2, d - d // 2)
    if crop:
        tensor = tensor.crop(crop)
    if pad:
        tensor = tensor.pad(pad, mode="symmetric")
    return tensor


def _sizes_text(tensor: Tensor) -> str:
    return "(" + ", ".join(f"{d}={s}" for d, s in zip(tensor.dims, tensor.shape, strict=True)) + ")"


test_resource = test_description
"""bioimageio.core's other name of :func:`test_description`."""

# these are library functions, not tests for pytest to collect when a test module imports them
test_model.__test__ = False  # type: ignore[attr-defined]
test_description.__test__ = False  # type: ignore[attr-defined]


def iter_details(summary: ValidationSummary) -> Iterator[ValidationDetail]:
    """The details model testing added (kind ``test``)."""
    return (d for d in summary.details if d.kind == "test")


__all__ = [
    "Comparison",
    "Determinism",
    "Mismatch",
    "Tolerance",
    "check_output_sizes",
    "compare_arrays",
    "enable_determinism",
    "get_tolerance",
    "iter_details",
    "plan_weight_formats",
    "resize_to",
    "size_cases",
    "test_description",
    "test_model",
    "test_resource",
]
