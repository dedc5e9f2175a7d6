"""``predict`` and ``predict_many``: run a model on inputs in one call.

How a sample is run (:class:`~bioimageio_core.execution.plan.Blocking`):

* ``input_block_shape`` given → blocks of that shape (:meth:`PredictionPipeline.predict_sample_with_fixed_blocking`);
* ``blocksize_parameter`` given → blocks of ``min + n*step`` (:meth:`~PredictionPipeline.predict_sample_with_blocking`);
* neither → the whole sample in one call, padded to a valid size and cropped back; a sample
  larger than a fixed model size is tiled automatically
  (:meth:`~PredictionPipeline.predict_sample_without_blocking`).

Output files: :func:`output_paths` fills a path pattern; ``.npy`` and ``.tif`` outputs are
written block by block when postprocessing allows it, every output appears complete or not at
all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence, Sized
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bioimageio_core._compat import weights_format_keyword
from bioimageio_core.coordinates import input_metadata, output_metadata
from bioimageio_core.dataset_stats import (
    DatasetStatisticsReport,
    StatisticsComputer,
    prepare_dataset_statistics,
)
from bioimageio_core.digest import AxesArg, BlockShapeArg, Inputs
from bioimageio_core.errors import InputError
from bioimageio_core.execution.choice import (
    Cluster,
    Execution,
    input_files,
    large,
    stored_sample,
)
from bioimageio_core.execution.inprocess import ProgressCallback
from bioimageio_core.execution.outofcore import StoredOptions, predict_stored
from bioimageio_core.execution.plan import Blocking
from bioimageio_core.execution.statistics import Runner, run_here, stored_statistics
from bioimageio_core.execution.stored import StoredSample, digest_stored
from bioimageio_core.execution.write import FileOutputs, Outputs
from bioimageio_core.io import ArrayMetadata, check_outputs, save_tensor
from bioimageio_core.pipeline import PredictionPipeline, create_prediction_pipeline
from bioimageio_core.sample import Sample
from bioimageio_core.shapes import BlocksizeParameter
from bioimageio_core.stats import DATASET_MEASURES, DatasetMeasure, MeasureValue

if TYPE_CHECKING:
    from dask.distributed import Client

PathLike = str | os.PathLike[str]
SampleIds = str | Sequence[Hashable]
"""A pattern formatted with the sample index ``i`` (``"sample{i:03}"``) or one id per sample."""
OUTPUT_ID_PLACEHOLDERS = ("{output_id}", "{tensor_id}", "{member_id}")
"""Placeholders for the output id in an output path (``{tensor_id}`` and ``{member_id}`` are
other names of ``{output_id}``)."""


def predict(
    *,
    model: Any,
    inputs: Inputs,
    sample_id: Hashable = "sample",
    blocksize_parameter: BlocksizeParameter | None = None,
    input_block_shape: BlockShapeArg | None = None,
    skip_preprocessing: bool = False,
    skip_postprocessing: bool = False,
    save_output_path: PathLike | None = None,
    devices: Sequence[str] | None = None,
    weights_format: str | None = None,
    batch_size: int = 1,
    axes: AxesArg = None,
    outputs: Outputs | None = None,
    on_progress: ProgressCallback | None = None,
    weight_format: str | None = None,
    overwrite: bool = True,
    out_of_core: bool | None = None,
    resume: bool = False,
    client: Client | None = None,
    blocks_per_task: int | None = None,
) -> Sample:
    """Run ``model`` on one sample and return the output sample.

    ``model``: a :class:`PredictionPipeline` (kept loaded), a model description or any source
    ``load_description`` accepts. ``inputs``: a ``Sample``, a mapping of input tensor id to an
    array, ``Tensor`` or file path, or one of these for a one-input model; ``axes`` gives the
    axes of arrays and files (``"yx"``, or per input ``{"raw": "yx"}``).
    ``save_output_path``: where to write each output; ``{sample_id}`` and ``{output_id}`` are
    replaced (``{output_id}`` is required for models with several outputs); the suffix picks the
    format; ``.npy``/``.tif`` outputs are written block by block when postprocessing allows it.
    ``outputs``: preallocated arrays (by output id) to write into, e.g. ``np.memmap``, or a
    factory ``(output_id, shape, dtype) -> array``. ``batch_size``: blocks per forward call when
    predicting blockwise. ``on_progress(done, total)`` is called after each forward call.
    Output files appear complete or not at all; ``overwrite=False`` refuses existing ones
    (:class:`~bioimageio_core.errors.OutputExistsError`) before anything runs.

    Large data (see :mod:`bioimageio_core.execution.choice`): inputs stored as files are read
    block by block and the outputs written block by block (``out_of_core``: None chooses,
    True requires it); such a prediction returns a sample without members whose ``written``
    names the output files. ``client``: a ``dask.distributed.Client`` whose workers run the
    blocks (the ``distributed`` extra; outputs are zarr stores). ``resume``: continue the
    outputs an interrupted out-of-core run left (finished chunks are kept).
    ``blocks_per_task``: blocks of one out-of-core work unit (default: one batch).
    """
    weights_format = weights_format_keyword(weights_format, weight_format)
    blocking = Blocking(blocksize_parameter, input_block_shape, batch_size)
    fresh = not isinstance(model, PredictionPipeline)
    with _running(
        model, client, devices, weights_format, batch_size, out_of_core, resume, blocks_per_task
    ) as (pipeline, execution):
        return _predict_one(
            pipeline, inputs, sample_id, blocking, axes, outputs, save_output_path, overwrite,
            skip_preprocessing, skip_postprocessing, on_progress, execution, fresh,
        )  # fmt: skip


def predict_many(
    *,
    model: Any,
    inputs: Iterable[Inputs],
    sample_id: SampleIds = "sample{i:03}",
    blocksize_parameter: BlocksizeParameter | None = None,
    input_block_shape: BlockShapeArg | None = None,
    skip_preprocessing: bool = False,
    skip_postprocessing: bool = False,
    save_output_path: PathLike | None = None,
    devices: Sequence[str] | None = None,
    weights_format: str | None = None,
    batch_size: int = 1,
    axes: AxesArg = None,
    on_progress: ProgressCallback | None = None,
    dataset_statistics_path: PathLike | None = None,
    weight_format: str | None = None,
    overwrite: bool = True,
    on_dataset_statistics: Callable[[DatasetStatisticsReport], None] | None = None,
    out_of_core: bool | None = None,
    resume: bool = False,
    client: Client | None = None,
    blocks_per_task: int | None = None,
) -> Iterator[Sample]:
    """Run ``model`` on every sample of ``inputs`` with one loaded model; yields output samples.

    Samples are read, predicted and written one at a time (nothing of earlier samples is kept).
    Dataset statistics (normalisation over ``axes: null`` or with ``batch`` among its axes) are
    computed over all ``inputs`` first, so every sample is normalised the same way whatever
    their order (inputs are read once more per pass, usually once or twice; a one-shot iterator
    is turned into a list first). ``dataset_statistics_path``: a JSON file to load them from when
    it exists (checked against the model), else to save them to; ``on_dataset_statistics``
    receives where they came from. A ``PredictionPipeline`` given as ``model`` with initial,
    fixed or running (``keep_updating_dataset_statistics``) statistics keeps them.
    ``sample_id``: a pattern formatted with the sample index ``i``, or one id per input (a
    ``Sample`` keeps its own id); ``save_output_path`` must contain ``{sample_id}`` (and
    ``{output_id}`` for several outputs; one id given for one input needs no ``{sample_id}``);
    each sample's files appear complete once it is done
    (``overwrite=False``: existing ones are refused before the sample runs).
    ``out_of_core``, ``resume``, ``client`` and ``blocks_per_task`` as for :func:`predict`;
    dataset statistics of inputs stored as files are computed without loading them (on the
    cluster's workers with ``client``).
    """
    weights_format = weights_format_keyword(weights_format, weight_format)
    one_sample = not isinstance(sample_id, str) and len(sample_id) == 1
    if save_output_path is not None and "{sample_id}" not in str(save_output_path) and not one_sample:
        raise InputError(
            f"the output path {str(save_output_path)!r} has no '{{sample_id}}' placeholder: with "
            "no {sample_id} in it, every sample would overwrite the previous one",
            hint="add {sample_id} to the path, e.g. 'out/{sample_id}_{output_id}.tif'",
        )
    if not isinstance(sample_id, str) and isinstance(inputs, Sized):
        _check_id_count(len(sample_id), len(inputs))
    blocking = Blocking(blocksize_parameter, input_block_shape, batch_size)
    fresh = not isinstance(model, PredictionPipeline)
    with _running(
        model, client, devices, weights_format, batch_size, out_of_core, resume, blocks_per_task
    ) as (loaded, execution):
        pipeline = loaded
        if loaded.running_dataset_measures:
            items = list(inputs) if iter(inputs) is inputs else inputs

            def samples() -> Iterator[Sample]:
                for item, sid in _with_ids(items, sample_id):
                    yield loaded.digest(item, axes=axes, sample_id=sid)

            def predict_raw(pp: PredictionPipeline, sample: Sample) -> Sample:
                return pp.predict_sample(
                    sample, blocking, skip_preprocessing=skip_preprocessing, skip_postprocessing=True
                )

            pipeline, report = prepare_dataset_statistics(
                loaded,
                samples,
                predict_raw=predict_raw,
                path=dataset_statistics_path,
                compute=_stored_statistics(loaded, items, sample_id, axes, execution),
            )
            if on_dataset_statistics is not None:
                on_dataset_statistics(report)
            inputs = items
            fresh = False  # its dataset statistics are fixed now
        for item, sid in _with_ids(inputs, sample_id):
            yield _predict_one(
                pipeline, item, sid, blocking, axes, None, save_output_path, overwrite,
                skip_preprocessing, skip_postprocessing, on_progress, execution, fresh,
            )  # fmt: skip


@contextmanager
def _running(
    model: Any,
    client: Client | None,
    devices: Sequence[str] | None,
    weights_format: str | None,
    batch_size: int,
    out_of_core: bool | None,
    resume: bool,
    blocks_per_task: int | None,
) -> Iterator[tuple[PredictionPipeline, Execution]]:
    """The pipeline that predicts (see :func:`_pipeline_for`) and how its samples run."""
    with (
        _pipeline_for(model, devices, weights_format, batch_size, planning=client is not None) as pipeline,
        _execution(client, pipeline, weights_format, devices, out_of_core, resume, blocks_per_task) as execution,
    ):  # fmt: skip
        yield pipeline, execution


def _pipeline_for(
    model: Any,
    devices: Sequence[str] | None,
    weights_format: str | None,
    batch_size: int,
    *,
    planning: bool = False,
) -> AbstractContextManager[PredictionPipeline]:
    """``model`` itself when it is a pipeline (left open), else a new one closed on exit;
    ``planning``: the model runs elsewhere (on a cluster), its weights are not loaded here."""
    if isinstance(model, PredictionPipeline):
        return nullcontext(model)
    if planning:
        from bioimageio_core.execution.distributed import planning_pipeline

        pipeline: PredictionPipeline = planning_pipeline(model, weights_format, batch_size)
        return pipeline
    return create_prediction_pipeline(
        model, devices=devices, weights_format=weights_format, batch_size=batch_size
    )


@contextmanager
def _execution(
    client: Client | None,
    pipeline: PredictionPipeline,
    weights_format: str | None,
    devices: Sequence[str] | None,
    out_of_core: bool | None,
    resume: bool,
    blocks_per_task: int | None,
) -> Iterator[Execution]:
    """How samples run; with ``client``, the model is loaded on its workers meanwhile."""
    if client is None:
        yield Execution(out_of_core, resume, None, blocks_per_task)
        return
    from bioimageio_core.execution.distributed import loaded_model, recipe_of

    chosen = weights_format or (
        pipeline.weights_format if pipeline.weights_format != "custom" else None
    )
    with loaded_model(client, recipe_of(pipeline, chosen, devices)) as plugin:
        yield Execution(out_of_core, resume, Cluster(client, plugin), blocks_per_task)


def _stored_statistics(
    pipeline: PredictionPipeline,
    items: Iterable[Inputs],
    pattern: SampleIds,
    axes: AxesArg,
    execution: Execution,
) -> StatisticsComputer | None:
    """Dataset statistics over inputs that are all files, computed without loading them (on
    the cluster with one); None when some input is no file or an output statistic is needed."""
    if execution.out_of_core is False and execution.cluster is None:
        return None
    input_ids = {t.id for t in pipeline.shape.inputs}
    if any(m.member_id not in input_ids for m in pipeline.running_dataset_measures):
        return None
    listed = list(_with_ids(items, pattern))
    files = [input_files(item, [t.id for t in pipeline.shape.inputs]) for item, _ in listed]
    if not files or any(f is None for f in files):
        return None
    if not execution.forced and not any(large(f) for f in files if f is not None):
        return None  # small files are read whole, as in-memory prediction does

    def compute(pp: PredictionPipeline) -> tuple[dict[DatasetMeasure, MeasureValue], int, int]:
        samples = [
            digest_stored(pp.shape, f, axes=axes, sample_id=sid, optional=pp.optional_inputs)
            for f, (_, sid) in zip(files, listed, strict=True)
            if f is not None
        ]
        calls: list[int] = []
        run: Runner = run_here
        jobs = 1
        if execution.cluster is not None:
            from bioimageio_core.execution.distributed import cluster_runner

            run, jobs = cluster_runner(execution.cluster.client), 4 * execution.cluster.workers

        def counted(function: Callable[[Any], Any], jobs_: Sequence[Any]) -> list[Any]:
            calls.append(1)
            return run(function, jobs_)

        values = stored_statistics(samples, pp.running_dataset_measures, run=counted, jobs=jobs)
        found = {m: v for m, v in values.items() if isinstance(m, DATASET_MEASURES)}
        return found, len(samples), len(calls)

    return compute


def _with_ids(items: Iterable[Inputs], pattern: SampleIds) -> Iterator[tuple[Inputs, Hashable]]:
    """Each item with its sample id (lazily): a ``Sample``'s own id, else the pattern formatted
    with the index ``i``, or the id given for it."""
    given = None if isinstance(pattern, str) else list(pattern)
    count = 0
    for i, item in enumerate(items):
        count += 1
        if given is not None and i >= len(given):
            raise InputError(
                f"more inputs than the {len(given)} sample ids given", hint="give one per input"
            )
        if isinstance(item, Sample) and item.id is not None:
            yield item, item.id
        else:
            yield item, (str(pattern).format(i=i) if given is None else given[i])
    if given is not None:
        _check_id_count(len(given), count)


def _check_id_count(ids: int, inputs: int) -> None:
    if ids != inputs:
        raise InputError(f"{ids} sample ids for {inputs} inputs", hint="give one per input")


def output_paths(
    pattern: PathLike, sample_id: Hashable, output_ids: Sequence[str]
) -> dict[str, Path]:
    """The file of each output for ``pattern`` with ``{sample_id}`` and ``{output_id}`` filled in.

    ``{tensor_id}`` and ``{member_id}`` are accepted as other names of ``{output_id}``.

    Raises:
        InputError: several outputs but no ``{output_id}`` placeholder, or an unknown placeholder.
    """
    text = str(pattern)
    if len(output_ids) > 1 and not any(n in text for n in OUTPUT_ID_PLACEHOLDERS):
        raise InputError(
            f"the model has {len(output_ids)} outputs ({', '.join(output_ids)}) but the output "
            f"path {text!r} has no '{{output_id}}' placeholder: with no {{tensor_id}} or "
            "{output_id} in it, every output would go to the same file",
            hint="add {output_id} to the path, e.g. 'out/{sample_id}_{output_id}.tif'",
        )
    paths: dict[str, Path] = {}
    for oid in output_ids:
        try:
            paths[oid] = Path(
                text.format(sample_id=sample_id, output_id=oid, tensor_id=oid, member_id=oid)
            )
        except (KeyError, IndexError, ValueError) as e:
            raise InputError(
                f"the output path {text!r} is not valid: it is not a valid pattern "
                f"({type(e).__name__}: {e})",
                hint="only {sample_id} and {output_id} (or {tensor_id}) are replaced; write "
                "other braces doubled",
            ) from None
    return paths


def samples_output_paths(
    pattern: PathLike, sample_ids: Sequence[Hashable], output_ids: Sequence[str]
) -> dict[tuple[Hashable, str], Path]:
    """``(sample id, output id) → path`` for every sample (:func:`output_paths`); every path
    must differ.

    Raises:
        InputError: a placeholder is missing or unknown, or two outputs share a path.
    """
    text = str(pattern)
    if len(sample_ids) > 1 and "{sample_id}" not in text:
        raise InputError(
            f"{len(sample_ids)} samples but the output path {text!r} has no '{{sample_id}}' "
            "placeholder: with no {sample_id} in it, every sample would overwrite the previous "
            "one",
            hint="add {sample_id}, e.g. 'out/{sample_id}_{tensor_id}.tif'",
        )
    paths: dict[tuple[Hashable, str], Path] = {}
    seen: dict[Path, tuple[Hashable, str]] = {}
    for sid in sample_ids:
        for oid, path in output_paths(text, sid, output_ids).items():
            if path in seen:
                raise InputError(
                    f"outputs {seen[path]} and {(sid, oid)} would both be written to {path}"
                )
            seen[path] = (sid, oid)
            paths[(sid, oid)] = path
    return paths


def _predict_one(
    pipeline: PredictionPipeline,
    inputs: Inputs,
    sample_id: Hashable,
    blocking: Blocking,
    axes: AxesArg,
    outputs: Outputs | None,
    save_output_path: PathLike | None,
    overwrite: bool,
    skip_preprocessing: bool,
    skip_postprocessing: bool,
    on_progress: ProgressCallback | None,
    execution: Execution | None = None,
    fresh: bool = False,
) -> Sample:
    """One sample: digested once, predicted (out-of-core when chosen), its files written
    (block by block where possible)."""
    execution = execution or Execution()
    paths = (
        output_paths(save_output_path, sample_id, [t.id for t in pipeline.shape.outputs])
        if save_output_path is not None
        else {}
    )
    if paths and not overwrite and not execution.resume:
        check_outputs(paths.values(), overwrite)
    stored = None
    if outputs is None:
        stored = stored_sample(
            pipeline,
            inputs,
            axes=axes,
            sample_id=sample_id,
            paths=paths,
            execution=execution,
            fresh=fresh,
            skip_preprocessing=skip_preprocessing,
            skip_postprocessing=skip_postprocessing,
        )
    elif execution.forced:
        raise InputError("out-of-core prediction writes files; 'outputs' arrays cannot be given")
    coordinates = _output_coordinates(pipeline, inputs) if paths else {}
    if stored is not None:
        return _predict_stored(
            pipeline, stored, blocking, paths, coordinates, execution, overwrite,
            skip_preprocessing, skip_postprocessing, on_progress,
        )  # fmt: skip
    stream = (
        FileOutputs(
            paths, {t.id: t.axis_ids for t in pipeline.shape.outputs}, overwrite, coordinates
        )
        if paths
        and outputs is None
        and (skip_postprocessing or pipeline.postprocessing_is_pointwise())
        else None
    )
    try:
        result = pipeline.predict_sample(
            inputs,
            blocking,
            axes=axes,
            sample_id=sample_id,
            outputs=stream if stream is not None else outputs,
            skip_preprocessing=skip_preprocessing,
            skip_postprocessing=skip_postprocessing,
            on_progress=on_progress,
        )
        streamed = stream.finish() if stream is not None else set()
    except BaseException:
        if stream is not None:
            stream.discard()
        raise
    for oid, path in paths.items():
        if oid not in streamed:
            save_tensor(
                path, result.members[oid], overwrite=overwrite, metadata=coordinates.get(oid)
            )
    return result


def _predict_stored(
    pipeline: PredictionPipeline,
    stored: StoredSample,
    blocking: Blocking,
    paths: Mapping[str, Path],
    coordinates: Mapping[str, ArrayMetadata],
    execution: Execution,
    overwrite: bool,
    skip_preprocessing: bool,
    skip_postprocessing: bool,
    on_progress: ProgressCallback | None,
) -> Sample:
    """An out-of-core prediction, in this process or on the cluster."""
    options = StoredOptions(
        overwrite=overwrite,
        resume=execution.resume,
        skip_preprocessing=skip_preprocessing,
        skip_postprocessing=skip_postprocessing,
        metadata=coordinates,
        on_progress=on_progress,
        blocks_per_task=execution.blocks_per_task,
    )
    if execution.cluster is None:
        return predict_stored(pipeline, stored, blocking, paths, options)
    from bioimageio_core.execution.distributed import predict_distributed

    cluster = execution.cluster
    return predict_distributed(
        cluster.client, cluster.plugin, pipeline, stored, blocking, paths, options
    )


def _output_coordinates(pipeline: PredictionPipeline, inputs: Inputs) -> dict[str, ArrayMetadata]:
    """Units, pixel sizes and offsets the outputs carry over from input files that record them
    (OME-Zarr); written where the output format can (see :mod:`bioimageio_core.coordinates`)."""
    descr = pipeline.model_description
    known = input_metadata(inputs, [t.id for t in descr.inputs])
    return output_metadata(descr, known) if known else {}


__all__ = ["output_paths", "predict", "predict_many", "samples_output_paths"]
