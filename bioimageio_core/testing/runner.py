"""The test run of one model: per weight format, reproduce the test outputs without blocking, then
run the parameterized input sizes; every result is a detail of the summary."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from bioimageio_core.errors import BioimageioError
from bioimageio_core.io import save_tensor
from bioimageio_core.loading import check_files
from bioimageio_core.pipeline import PredictionPipeline, create_prediction_pipeline
from bioimageio_core.remote import ServerInfo
from bioimageio_core.shapes import ShapeError, input_sizes
from bioimageio_core.sources import Root, root_of
from bioimageio_core.spec import ModelDescr
from bioimageio_core.spec.issues import Loc
from bioimageio_core.summary import ValidationDetail, ValidationSummary
from bioimageio_core.tensor import Tensor
from bioimageio_core.testing.comparison import compare_arrays
from bioimageio_core.testing.determinism import Determinism, enable_determinism
from bioimageio_core.testing.formats import plan_weight_formats
from bioimageio_core.testing.report import (
    detail_of,
    error_at,
    one_line,
    our_warnings,
    prediction_failed,
    sizes_text,
    warning_at,
)
from bioimageio_core.testing.sizes import check_output_sizes, resize_to, size_cases
from bioimageio_core.testing.tensors import load_test_tensors
from bioimageio_core.testing.tolerance import get_tolerance


class _StopTesting(Exception):
    """Raised internally to end a test run early."""


@attrs.define(eq=False, slots=False)
class ModelTest:
    """Runs the tests of one model, adding details to ``summary``."""

    model: ModelDescr
    summary: ValidationSummary
    devices: Sequence[str] | None = attrs.field(kw_only=True)
    stop_early: bool = attrs.field(kw_only=True)
    save_dir: Path | None = attrs.field(kw_only=True)
    server: ServerInfo | None = attrs.field(default=None, kw_only=True)
    source: object = attrs.field(default=None, kw_only=True)
    root: Root = attrs.field(init=False)
    original_version: str = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.root = root_of(self.model)
        self.original_version = self.summary.format_version or self.model.format_version

    def add(self, detail: ValidationDetail) -> None:
        self.summary.add_detail(detail)
        if self.stop_early and detail.status == "failed":
            raise _StopTesting

    def run(self, weights_format: str | None, determinism: Determinism) -> None:
        plan = plan_weight_formats(self.model, weights_format, self.server)
        try:
            if weights_format is not None and weights_format in plan.skipped:
                reason = plan.skipped[weights_format]
                self.add(
                    detail_of(f"test {weights_format} weights", [error_at(("weights",), reason)])
                )
                return
            if not plan.run:
                reasons = "; ".join(plan.skipped.values()) or "the model has no weights"
                self.add(
                    detail_of(
                        "run the model",
                        [error_at(("weights",), f"no weight format can run here: {reasons}")],
                    )
                )
                return
            inputs, expected, issues = load_test_tensors(self.model, self.root)
            if issues:
                self.add(detail_of("load test tensors", issues))
                return
            # a server seeds its own frameworks; here only Python's and numpy's generators
            enable_determinism(determinism, plan.run if self.server is None else ())
            for wf in (*plan.run, *plan.skipped):  # declaration order within each group
                if wf in plan.skipped:
                    reason = plan.skipped[wf]
                    self.add(
                        detail_of(f"{wf} weights: skipped", [warning_at(("weights", wf), reason)])
                    )
                else:
                    self.test_format(wf, inputs, expected)
        except _StopTesting:
            return

    # --- one weight format ----------------------------------------------------------------------

    def test_format(
        self, wf: str, inputs: Mapping[str, Tensor], expected: Mapping[str, Tensor]
    ) -> None:
        name = f"reproduce test outputs with {wf} weights"
        # a server fetches (and checks) the weights itself
        weights = () if self.server is not None else (f"weights:{wf}",)
        issues = [i for i in check_files(self.model, weights)] if weights else []
        if issues:
            self.add(detail_of(name, issues))
            return
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                pipeline = self._pipeline(wf)
        except Exception as e:
            self.add(
                detail_of(
                    name, [error_at(("weights", wf), f"cannot load the model: {one_line(e)}")]
                )
            )
            return
        finally:
            ours = our_warnings(caught)
        if ours:
            self.add(
                detail_of(f"load {wf} weights", [warning_at(("weights", wf), w) for w in ours])
            )
        with pipeline:
            self.reproduce(pipeline, wf, inputs, expected)
            if not self.original_version.startswith(("0.3", "0.4")):
                self.parameterized_sizes(pipeline, wf, inputs)

    def _pipeline(self, wf: str) -> PredictionPipeline:
        # test tensors are the model's raw input and output: no halo padding at the border
        if self.server is None:
            return create_prediction_pipeline(
                self.model, devices=self.devices, weights_format=wf, border="inside"
            )
        # a URL or id is passed on, so that the server fetches the model itself
        source = self.source if isinstance(self.source, str) else self.model
        return create_prediction_pipeline(
            source,
            devices=self.devices,
            weights_format=wf,
            border="inside",
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
                detail_of(
                    f"reproduce test outputs with {wf} weights",
                    [error_at(("weights", wf), prediction_failed(e))],
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
            return detail_of(name, [error_at(loc, f"the model returned no output {out.id!r}")])
        if actual.dims != expected.dims or actual.shape != expected.shape:
            return detail_of(
                name,
                [
                    error_at(
                        loc,
                        f"output {out.id!r} has shape {sizes_text(actual)}, the test output has "
                        f"{sizes_text(expected)}",
                    )
                ],
            )
        try:
            tolerance = get_tolerance(
                self.model, out.id, wf, original_format_version=self.original_version
            )
        except ValueError as e:
            return detail_of(name, [error_at(("config", "bioimageio", "test_kwargs", wf), str(e))])
        comparison = compare_arrays(actual.data, expected.data, tolerance)
        text = comparison.describe(actual.dims)
        if comparison.passed and not comparison.mismatched:
            return ValidationDetail(f"{name}: {text}", "passed")
        if comparison.passed:
            return detail_of(name, [warning_at(loc, f"within tolerance, but {text}")])
        saved = self._save_failing(wf, out.id, actual)
        return detail_of(
            name, [error_at(loc, f"output {out.id!r} does not reproduce: {text}{saved}")]
        )

    def _save_failing(self, wf: str, output_id: str, actual: Tensor) -> str:
        if self.save_dir is None:
            return ""
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
            return detail_of(name, [error_at(("weights", wf), prediction_failed(e))])
        actual = {tid: t.sizes for tid, t in result.members.items()}
        issues = check_output_sizes(spec, sizes, actual, batch)
        context = f" (blocksize parameter n={n}, batch size {batch})"
        issues = [attrs.evolve(i, msg=i.msg + context) for i in issues]
        return detail_of(name, issues)
