"""``predict`` and ``predict_many``: run a model on inputs in one call.

How a sample is run:

* ``input_block_shape`` given → blocks of that shape (:meth:`PredictionPipeline.predict_sample_with_fixed_blocking`);
* ``blocksize_parameter`` given → blocks of ``min + n*step`` (:meth:`~PredictionPipeline.predict_sample_with_blocking`);
* neither → the whole sample in one call, padded to a valid size and cropped back; a sample
  larger than a fixed model size is tiled automatically
  (:meth:`~PredictionPipeline.predict_sample_without_blocking`).
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bioimageio_core._compat import weights_format_keyword
from bioimageio_core.digest import AxesArg, BlockShapeArg, Inputs
from bioimageio_core.errors import BioimageioError, InputError, OutputError
from bioimageio_core.pipeline import (
    Outputs,
    PredictionPipeline,
    ProgressCallback,
    create_prediction_pipeline,
)
from bioimageio_core.sample import Sample
from bioimageio_core.shapes import BlocksizeParameter

if TYPE_CHECKING:
    from bioimageio_core.io import OutputArray

PathLike = str | os.PathLike[str]


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
    """
    weights_format = weights_format_keyword(weights_format, weight_format)
    with _pipeline_for(model, devices, weights_format, batch_size) as pipeline:
        return _predict_one(
            pipeline, inputs, sample_id, blocksize_parameter, input_block_shape,
            skip_preprocessing, skip_postprocessing, save_output_path, batch_size, axes, outputs,
            on_progress, overwrite,
        )


def predict_many(
    *,
    model: Any,
    inputs: Iterable[Inputs],
    sample_id: str = "sample{i:03}",
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
) -> Iterator[Sample]:
    """Run ``model`` on every sample of ``inputs`` with one loaded model; yields output samples.

    Dataset statistics (normalisation over ``axes: null`` or with ``batch`` among its axes) are
    computed over all ``inputs`` first, so every sample is normalised the same way whatever
    their order (inputs are read once more per pass, usually once or twice; a one-shot iterator
    is turned into a list first). ``dataset_statistics_path``: a JSON file to load them from when
    it exists (checked against the model), else to save them to. A ``PredictionPipeline`` given
    as ``model`` with initial, fixed or running (``keep_updating_dataset_statistics``)
    statistics keeps them.
    ``sample_id`` is formatted with the sample index ``i`` (a ``Sample`` keeps its own id);
    ``save_output_path`` must contain ``{sample_id}`` (and ``{output_id}`` for several outputs);
    each sample's files appear complete once it is done (``overwrite=False``: existing ones are
    refused before the sample runs).
    """
    weights_format = weights_format_keyword(weights_format, weight_format)
    if save_output_path is not None and "{sample_id}" not in str(save_output_path):
        raise InputError(
            f"save_output_path {str(save_output_path)!r} has no '{{sample_id}}' placeholder, so "
            "every sample would overwrite the previous one",
            hint="add {sample_id} to the path, e.g. 'out/{sample_id}_{output_id}.tif'",
        )
    with _pipeline_for(model, devices, weights_format, batch_size) as loaded:
        pipeline = loaded
        if loaded.running_dataset_measures:
            from bioimageio_core.dataset_stats import prepare_dataset_statistics

            items = list(inputs) if iter(inputs) is inputs else inputs

            def samples() -> Iterator[Sample]:
                for i, item in enumerate(items):
                    sid = _sample_id(item, sample_id, i)
                    yield loaded.digest(item, axes=axes, sample_id=sid)

            def predict_raw(pp: PredictionPipeline, sample: Sample) -> Sample:
                return _predict_one(
                    pp, sample, sample.id, blocksize_parameter, input_block_shape,
                    skip_preprocessing, True, None, batch_size, None, None, None, True,
                )

            pipeline, _ = prepare_dataset_statistics(
                loaded, samples, predict_raw=predict_raw, path=dataset_statistics_path
            )
            inputs = items
        yield from _predict_all(
            pipeline, inputs, sample_id, blocksize_parameter, input_block_shape,
            skip_preprocessing, skip_postprocessing, save_output_path, batch_size, axes, on_progress,
            overwrite,
        )


def _pipeline_for(
    model: Any, devices: Sequence[str] | None, weights_format: str | None, batch_size: int
) -> AbstractContextManager[PredictionPipeline]:
    """``model`` itself when it is a pipeline (left open), else a new one closed on exit."""
    if isinstance(model, PredictionPipeline):
        return nullcontext(model)
    return create_prediction_pipeline(
        model, devices=devices, weights_format=weights_format, batch_size=batch_size
    )


def _predict_all(
    pipeline: PredictionPipeline,
    inputs: Iterable[Inputs],
    sample_id: str,
    blocksize_parameter: BlocksizeParameter | None,
    input_block_shape: BlockShapeArg | None,
    skip_preprocessing: bool,
    skip_postprocessing: bool,
    save_output_path: PathLike | None,
    batch_size: int,
    axes: AxesArg,
    on_progress: ProgressCallback | None,
    overwrite: bool,
) -> Iterator[Sample]:
    for i, item in enumerate(inputs):
        sid = _sample_id(item, sample_id, i)
        yield _predict_one(
            pipeline, item, sid, blocksize_parameter, input_block_shape, skip_preprocessing,
            skip_postprocessing, save_output_path, batch_size, axes, None, on_progress, overwrite,
        )


def _sample_id(item: Inputs, pattern: str, i: int) -> Hashable:
    """A ``Sample``'s own id, else ``pattern`` formatted with the index ``i``."""
    return item.id if isinstance(item, Sample) and item.id is not None else pattern.format(i=i)


def output_paths(
    pattern: PathLike, sample_id: Hashable, output_ids: Sequence[str]
) -> dict[str, Path]:
    """The file of each output for ``pattern`` with ``{sample_id}`` and ``{output_id}`` filled in.

    ``{tensor_id}`` and ``{member_id}`` are accepted as other names of ``{output_id}``.

    Raises:
        InputError: several outputs but no ``{output_id}`` placeholder, or an unknown placeholder.
    """
    text = str(pattern)
    names = ("{output_id}", "{tensor_id}", "{member_id}")
    if len(output_ids) > 1 and not any(n in text for n in names):
        raise InputError(
            f"the model has {len(output_ids)} outputs ({', '.join(output_ids)}) but the output "
            f"path {text!r} has no '{{output_id}}' placeholder",
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
                f"output path {text!r} is not a valid pattern ({type(e).__name__}: {e})",
                hint="only {sample_id} and {output_id} are replaced; write other braces doubled",
            ) from None
    return paths


def _predict_one(
    pipeline: PredictionPipeline,
    inputs: Inputs,
    sample_id: Hashable,
    blocksize_parameter: BlocksizeParameter | None,
    input_block_shape: BlockShapeArg | None,
    skip_preprocessing: bool,
    skip_postprocessing: bool,
    save_output_path: PathLike | None,
    batch_size: int,
    axes: AxesArg,
    outputs: Outputs | None,
    on_progress: ProgressCallback | None,
    overwrite: bool,
) -> Sample:
    output_ids = [t.id for t in pipeline.shape.outputs]
    paths = (
        output_paths(save_output_path, sample_id, output_ids) if save_output_path is not None else {}
    )
    if paths and not overwrite:
        from bioimageio_core.io import check_outputs

        check_outputs(paths.values(), overwrite)
    sample = pipeline.digest(inputs, axes=axes, sample_id=sample_id)
    if isinstance(inputs, Sample) and inputs.id is None:  # digest keeps a Sample's own id
        sample.id = sample_id
    stream = (
        _StreamedOutputs(pipeline, paths, overwrite)
        if paths and outputs is None and (skip_postprocessing or pipeline.postprocessing_is_pointwise())
        else None
    )
    common: dict[str, Any] = {
        "outputs": stream.create if stream is not None else outputs,
        "skip_preprocessing": skip_preprocessing,
        "skip_postprocessing": skip_postprocessing,
        "on_progress": on_progress,
    }
    try:
        if input_block_shape is not None:
            result = pipeline.predict_sample_with_fixed_blocking(
                sample, input_block_shape, batch_size, **common
            )
        elif blocksize_parameter is not None:
            result = pipeline.predict_sample_with_blocking(
                sample, blocksize_parameter, batch_size, **common
            )
        else:
            result = pipeline.predict_sample_without_blocking(sample, **common)
        streamed = stream.finish() if stream is not None else set()
    except BaseException:
        if stream is not None:
            stream.discard()
        raise
    if paths:
        from bioimageio_core.io import save_tensor

        for oid, path in paths.items():
            if oid not in streamed:
                save_tensor(path, result.members[oid], overwrite=overwrite)
    return result


class _StreamedOutputs:
    """Creates output files as memory maps so that blocks are written straight to disk.

    Each file is written under a temporary name and moved into place by :meth:`finish` (or
    removed by :meth:`discard`). Formats that cannot be memory-mapped (or dtypes a format cannot
    hold) fall back to an array in memory that is saved at the end.
    """

    def __init__(
        self, pipeline: PredictionPipeline, paths: Mapping[str, Path], overwrite: bool
    ) -> None:
        self.paths = paths
        self.overwrite = overwrite
        self.axes = {t.id: t.axis_ids for t in pipeline.shape.outputs}
        self.opened: dict[str, OutputArray] = {}

    def create(self, output_id: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Any:
        from bioimageio_core.io import open_output_array

        path = self.paths[output_id]
        if path.suffix.lower() in _STREAMED_SUFFIXES and dtype.kind != "b":
            try:
                opened = open_output_array(
                    path, shape, dtype, self.axes[output_id], overwrite=self.overwrite
                )
            except OutputError:
                raise  # exists already, disk full, …: saving at the end would fail the same way
            except (BioimageioError, ImportError, ValueError, TypeError):
                pass  # saved from memory at the end instead
            else:
                if isinstance(opened.array, np.ndarray):
                    self.opened[output_id] = opened
                    return opened.array
                opened.discard()
        return np.empty(shape, dtype=dtype)

    def finish(self) -> set[str]:
        """Put the files written so far in place; returns their output ids."""
        for opened in self.opened.values():
            opened.commit()
        return set(self.opened)

    def discard(self) -> None:
        """Remove the files not yet in place (after an error)."""
        for opened in self.opened.values():
            opened.discard()


_STREAMED_SUFFIXES = (".npy", ".tif", ".tiff")


__all__ = ["output_paths", "predict", "predict_many"]
