"""Dataset statistics of a model: computed over every input before prediction, saved, reused.

A model whose normalisation uses dataset statistics (``axes: null``, or ``batch`` among the axes
of ``zero_mean_unit_variance``, ``scale_range``, ``clip`` …) should normalise every sample with
the statistics of the whole set of inputs. :func:`prepare_dataset_statistics` computes them in a
first pass over the inputs (exact, with bounded memory:
:class:`~bioimageio_core.stats.StatsAccumulator`; inputs are read once per pass, usually one or
two), so each sample is normalised the same way whatever the order of the inputs. Statistics of
model outputs (postprocessing) need the raw outputs of every sample: the model runs once more
(per pass) to compute them.

A statistics file (the ``predict`` command's ``--stats FILE``, ``predict_many``'s
``dataset_statistics_path``) keeps them, so a dataset processed in several runs is normalised
identically: JSON with the model's id and name and, per measure, its tensor, axes and value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from bioimageio_core.errors import InputError
from bioimageio_core.io.staging import write_text
from bioimageio_core.stats import (
    DATASET_MEASURES,
    DatasetMeasure,
    DatasetQuantile,
    MeasureValue,
    StatsAccumulator,
    measure_from_json,
    measure_to_json,
    value_from_json,
    value_to_json,
)
from bioimageio_core.tensor import Tensor

if TYPE_CHECKING:
    from bioimageio_core.pipeline import PredictionPipeline
    from bioimageio_core.sample import Sample
    from bioimageio_core.spec import ModelDescr

PathLike = str | os.PathLike[str]
FILE_FORMAT = "bioimageio-run dataset statistics"
FILE_FORMAT_VERSION = 1
_HINT = "delete the file to compute the statistics again, or give another statistics file"

RawPredictor = Callable[["PredictionPipeline", "Sample"], "Sample"]
"""``predict(pipeline, sample)`` → the sample's raw model outputs (postprocessing skipped)."""
StatisticsComputer = Callable[
    ["PredictionPipeline"], tuple[dict[DatasetMeasure, MeasureValue], int, int]
]
"""``compute(pipeline)`` → (the values of its running dataset measures, samples, passes)."""


@attrs.frozen
class DatasetStatisticsReport:
    """Where a prediction's dataset statistics came from."""

    values: Mapping[DatasetMeasure, MeasureValue]
    origin: Literal["computed", "loaded", "not needed"]
    n_samples: int = 0
    """Samples they were computed over (as recorded in a loaded file, if it says)."""
    passes: int = 0
    """Passes over the inputs this call made (0: none)."""
    path: Path | None = None
    saved: bool = False

    def describe(self) -> str:
        """One line for a user."""
        if self.origin == "not needed":
            return "the model's processing needs no dataset statistics"
        count = f"{len(self.values)} dataset statistic(s)"
        if self.origin == "loaded":
            return f"{count} of {self.n_samples} sample(s) loaded from {self.path}"
        text = f"{count} computed over {self.n_samples} sample(s) ({self.passes} pass(es))"
        return text + (f", saved to {self.path}" if self.saved else "")


def compute_pipeline_dataset_statistics(
    pipeline: PredictionPipeline,
    samples: Callable[[], Iterable[Sample]],
    *,
    predict_raw: RawPredictor | None = None,
) -> tuple[dict[DatasetMeasure, MeasureValue], int, int]:
    """The pipeline's :attr:`~PredictionPipeline.running_dataset_measures` over every sample.

    ``samples()`` yields the digested input samples (:meth:`PredictionPipeline.digest`) and is
    called once per pass. Output statistics run ``predict_raw`` on each sample with the input
    statistics fixed (default: whole-sample prediction without postprocessing). Returns the
    values, the number of samples and the number of passes made over them.
    """
    wanted = pipeline.running_dataset_measures
    inputs = {t.id for t in pipeline.shape.inputs}
    of_inputs = [m for m in wanted if m.member_id in inputs]
    of_outputs = [m for m in wanted if m.member_id not in inputs]
    values: dict[DatasetMeasure, MeasureValue] = {}
    counts: list[int] = []
    passes = 0
    if of_inputs:
        found, n_passes = _accumulate(of_inputs, samples, counts)
        values.update(found)
        passes += n_passes
    if of_outputs:
        with_inputs = pipeline.with_dataset_statistics(values)
        run = predict_raw or _predict_raw

        def outputs() -> Iterable[Sample]:
            return (run(with_inputs, s) for s in samples())

        found, n_passes = _accumulate(of_outputs, outputs, counts)
        values.update(found)
        passes += n_passes
    return values, (counts[0] if counts else 0), passes


def _predict_raw(pipeline: PredictionPipeline, sample: Sample) -> Sample:
    return pipeline.predict_sample_without_blocking(sample, skip_postprocessing=True)


def _accumulate(
    measures: list[DatasetMeasure], samples: Callable[[], Iterable[Sample]], counts: list[int]
) -> tuple[dict[DatasetMeasure, MeasureValue], int]:
    accumulator = StatsAccumulator(measures)
    needed = sorted({m.member_id for m in measures})
    while accumulator.needs_pass:
        n = 0
        for sample in samples():
            lacking = [m for m in needed if m not in sample.members]
            if lacking:
                raise InputError(
                    f"sample {sample.id!r} has no tensor {', '.join(map(repr, lacking))}, whose "
                    "dataset statistics the model's processing needs",
                    hint="give these inputs for every sample",
                )
            accumulator.update(sample.members)
            n += 1
        if not n:
            raise InputError("no samples to compute the model's dataset statistics from")
        counts.append(n)
        accumulator.end_pass()
    values = {m: v for m, v in accumulator.values().items() if isinstance(m, DATASET_MEASURES)}
    return values, accumulator.passes


def prepare_dataset_statistics(
    pipeline: PredictionPipeline,
    samples: Callable[[], Iterable[Sample]],
    *,
    predict_raw: RawPredictor | None = None,
    path: PathLike | None = None,
    compute: StatisticsComputer | None = None,
) -> tuple[PredictionPipeline, DatasetStatisticsReport]:
    """A pipeline whose dataset statistics are fixed before prediction, and where they came from.

    Nothing to do for a model without running dataset statistics (the pipeline is returned as it
    is). Else: with ``path`` naming an existing file, the statistics are loaded from it and
    checked against the model; otherwise they are computed over ``samples()`` (see
    :func:`compute_pipeline_dataset_statistics`; ``compute(pipeline)`` instead, when given, e.g.
    over stored inputs without loading them) and, with ``path``, saved there.

    Raises:
        InputError: the file is not a statistics file of this model, or lacks a statistic the
            model needs; a sample lacks a tensor whose statistics are needed.
    """
    wanted = pipeline.running_dataset_measures
    target = None if path is None else Path(path)
    if not wanted:
        return pipeline, DatasetStatisticsReport({}, "not needed", path=target)
    if target is not None and target.exists():
        values, n_samples = _read(target, pipeline.model)
        chosen = _check_values(values, pipeline, target)
        report = DatasetStatisticsReport(chosen, "loaded", n_samples, path=target)
        return pipeline.with_dataset_statistics(chosen), report
    if compute is not None:
        values, n_samples, passes = compute(pipeline)
    else:
        values, n_samples, passes = compute_pipeline_dataset_statistics(
            pipeline, samples, predict_raw=predict_raw
        )
    if target is not None:
        save_dataset_statistics(target, pipeline.model, values, n_samples=n_samples)
    report = DatasetStatisticsReport(
        values, "computed", n_samples, passes, target, saved=target is not None
    )
    return pipeline.with_dataset_statistics(values), report


# --- the statistics file ------------------------------------------------------------------------


def save_dataset_statistics(
    path: PathLike,
    model: ModelDescr,
    values: Mapping[DatasetMeasure, MeasureValue],
    *,
    n_samples: int | None = None,
) -> Path:
    """Write dataset statistics of ``model`` as JSON (complete or not at all); returns the path."""
    data = {
        "format": FILE_FORMAT,
        "format_version": FILE_FORMAT_VERSION,
        "model": {"id": getattr(model, "id", None), "name": model.name},
        "n_samples": n_samples,
        "statistics": [
            {**measure_to_json(m), "value": value_to_json(v)}
            for m, v in sorted(values.items(), key=lambda item: _measure_text(item[0]))
        ],
    }
    return write_text(Path(path), json.dumps(data, indent=2) + "\n")


def load_dataset_statistics(
    path: PathLike, model: ModelDescr | None = None
) -> dict[DatasetMeasure, MeasureValue]:
    """Dataset statistics from a file :func:`save_dataset_statistics` wrote.

    With ``model``, the file must be one of this model (same id, else same name).

    Raises:
        InputError: unreadable, not a statistics file, malformed (the message names the entry),
            or of another model.
    """
    return _read(Path(path), model)[0]


def _read(path: Path, model: ModelDescr | None) -> tuple[dict[DatasetMeasure, MeasureValue], int]:
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"cannot read the statistics file {path}: {e.strerror or e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path} is not a JSON file ({e})", hint=_HINT) from None
    if not isinstance(data, dict) or data.get("format") != FILE_FORMAT:
        raise InputError(
            f"{path} is not a dataset statistics file (no \"format\": \"{FILE_FORMAT}\")",
            hint=_HINT,
        )
    if data.get("format_version") != FILE_FORMAT_VERSION:
        raise InputError(
            f"{path} has statistics file format version {data.get('format_version')!r}; this "
            f"version of bioimageio-run reads version {FILE_FORMAT_VERSION}",
            hint=_HINT,
        )
    recorded: dict[str, Any] = data["model"] if isinstance(data.get("model"), dict) else {}
    if model is not None:
        _check_model(recorded, model, path)
    entries = data.get("statistics")
    if not isinstance(entries, list):
        raise InputError(f"{path}: 'statistics' must be a list", hint=_HINT)
    values: dict[DatasetMeasure, MeasureValue] = {}
    for i, entry in enumerate(entries):
        try:
            if not isinstance(entry, dict):
                raise ValueError("must be an object")
            measure = measure_from_json(entry)
            if "value" not in entry:
                raise ValueError("has no 'value'")
            value = value_from_json(entry["value"])
        except ValueError as e:
            raise InputError(f"{path}: statistics[{i}]: {e}", hint=_HINT) from None
        if not isinstance(measure, DATASET_MEASURES):
            raise InputError(f"{path}: statistics[{i}] is not a dataset statistic", hint=_HINT)
        values[measure] = value
    n_samples = data.get("n_samples")
    return values, n_samples if isinstance(n_samples, int) else 0


def _check_model(recorded: Mapping[str, Any], model: ModelDescr, path: Path) -> None:
    ours_id, ours_name = getattr(model, "id", None), model.name
    their_id, their_name = recorded.get("id"), recorded.get("name")
    if their_id and ours_id:
        same = their_id == ours_id
    else:
        same = their_name == ours_name
    if not same:
        theirs = f"{their_name!r}" + (f" (id {their_id})" if their_id else "")
        ours = f"{ours_name!r}" + (f" (id {ours_id})" if ours_id else "")
        raise InputError(
            f"{path} holds dataset statistics of model {theirs}, not of {ours}", hint=_HINT
        )


def _check_values(
    values: Mapping[DatasetMeasure, MeasureValue], pipeline: PredictionPipeline, path: Path
) -> dict[DatasetMeasure, MeasureValue]:
    """The values of the measures the pipeline needs, each of the right shape."""
    wanted = sorted(pipeline.running_dataset_measures, key=_measure_text)
    missing = [m for m in wanted if m not in values]
    if missing:
        raise InputError(
            f"{path} lacks dataset statistics this model needs: "
            + "; ".join(_measure_text(m) for m in missing),
            hint=_HINT,
        )
    for m in wanted:
        tensor = pipeline.shape.tensor(m.member_id)
        kept = tuple(a for a in tensor.axis_ids if m.axes is not None and a not in m.axes)
        value = values[m]
        dims = value.dims if isinstance(value, Tensor) else ()
        problem = None
        if dims != kept:
            problem = f"has axes {list(dims)}, expected {list(kept)}"
        elif isinstance(value, Tensor):
            for axis, size in value.sizes.items():
                spec = tensor.axis(axis).size
                fixed = getattr(spec, "size", None)
                if isinstance(fixed, int) and fixed != size:
                    problem = f"has {axis} size {size}, the model's tensor has {fixed}"
        if problem:
            raise InputError(f"{path}: {_measure_text(m)} {problem}", hint=_HINT)
    return {m: values[m] for m in wanted}


def _measure_text(m: DatasetMeasure) -> str:
    name = f"quantile {m.q:g}" if isinstance(m, DatasetQuantile) else type(m).__name__[7:].lower()
    axes = "all axes" if m.axes is None else "axes (" + ", ".join(m.axes) + ")"
    return f"{name} of {m.member_id!r} over {axes}"

__all__ = [
    "FILE_FORMAT",
    "DatasetStatisticsReport",
    "compute_pipeline_dataset_statistics",
    "load_dataset_statistics",
    "prepare_dataset_statistics",
    "save_dataset_statistics",
]
