"""The prediction pipeline: statistics → preprocessing → blocks → model → stitching → postprocessing.

Semantics (numbers match bioimageio.core):

* statistics are computed on the whole raw sample, before any processing step and before
  blocking, so blockwise and whole-image prediction agree; dataset statistics (``axes: null`` or
  ``batch`` in ``axes``) accumulate over every sample one pipeline processes unless initial
  statistics are given and ``keep_updating_dataset_statistics`` is False;
* preprocessing runs on the whole sample, postprocessing on the whole stitched output;
* blocks carry the model's halo; by default blocks at a sample border lie inside the sample
  (``border="inside"``), so they see the real border exactly as whole-sample prediction does and
  blockwise equals whole-sample prediction for any model whose receptive field fits its halo;
  ``border="pad"`` (the default when an input declares ``pad``) centres blocks and pads beyond
  the border as bioimageio.core does, with each input's ``pad`` mode (reflect when it has none);
  every block of a sample has one shape, blocks are produced lazily, ``batch_size`` blocks go through the model per call
  when its batch axis allows it, and the next batch is cut while the model runs;
* outputs are written into preallocated arrays (numpy, ``np.memmap`` or any array-like with
  ``__setitem__``; pass your own with ``outputs=``);
* sizes that are not valid model sizes, and samples smaller than one block, are padded up and the
  outputs cropped back.

The block loop runs as the stages of :mod:`bioimageio_core.execution` (plan → read → batch →
forward → stitch → write); this module holds the model with its processing and chooses the
stages' inputs.

Improvements over the reference: blocking works for every model (0.4 descriptions are 0.5 after
loading), statistics of input tensors that postprocessing needs (e.g. a reference tensor) are
computed on the raw inputs, and the caller's sample is never modified.
"""

from __future__ import annotations

import copy
import functools
import weakref
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from bioimageio_core._closing import Closing
from bioimageio_core._compat import either_keyword, weights_format_keyword
from bioimageio_core.adapter_loading import load_model_adapter
from bioimageio_core.blocks import BorderMode, SampleShape
from bioimageio_core.chain import (
    chain_input_specs,
    check_chain_inputs,
    fed_ids,
    resolve_upstreams,
    run_chained,
    upstream_leaves,
)
from bioimageio_core.digest import AxesArg, BlockShapeArg, Inputs, check_input_sizes, digest_inputs
from bioimageio_core.errors import BioimageioError, InputError
from bioimageio_core.execution.forward import Forward
from bioimageio_core.execution.inprocess import ProgressCallback, run_blocks
from bioimageio_core.execution.plan import Blocking, BlockPlan, ModelLayout, flat_sizes, plan
from bioimageio_core.execution.pointwise import runs_per_block
from bioimageio_core.execution.processing import paddings_for, postprocess, preprocess
from bioimageio_core.execution.read import MemberReader
from bioimageio_core.execution.stitch import Stitcher
from bioimageio_core.execution.write import Outputs, OutputTargets
from bioimageio_core.input_padding import declared_paddings
from bioimageio_core.loading import as_model_description
from bioimageio_core.ops import BoundOp, build_model_ops, required_measures
from bioimageio_core.ops.processing import model_output_axes
from bioimageio_core.sample import Sample
from bioimageio_core.shapes import (
    BlocksizeParameter,
    ModelShape,
    TensorShape,
    check_batch_size,
    check_blocksize_parameter,
    model_shape,
)
from bioimageio_core.stats import (
    DATASET_MEASURES,
    DatasetMeasure,
    Measure,
    MeasureValue,
    StatsCalculator,
    compute_dataset_measures,
)
from bioimageio_core.tensor import Padding, Tensor

if TYPE_CHECKING:
    from bioimageio_core.adapters import ModelAdapter
    from bioimageio_core.chain import Upstream
    from bioimageio_core.spec import ModelDescr

DEFAULT_BLOCKSIZE_PARAMETER = 10


class PredictionPipeline(Closing):
    """A loaded model with its pre- and postprocessing; use it as a context manager.

    Create it with :func:`create_prediction_pipeline`. Every ``predict_*`` method accepts a
    :class:`Sample` (or anything :func:`~bioimageio_core.digest.digest_inputs` accepts), never
    modifies it, and returns a new :class:`Sample` of the output tensors (axes in the order the
    description declares) whose ``stat`` holds the statistics used.

    ``outputs=`` (blockwise and unblocked prediction) takes preallocated arrays by output id
    (numpy, ``np.memmap``, zarr … of the whole output's shape and the final dtype) or a factory
    ``factory(output_id, shape, dtype)`` called when the first block's output is known.
    Postprocessing that needs no statistics and works element by element runs per block, so the
    output is written once and never held twice.
    """

    def __init__(
        self,
        *,
        model: ModelDescr,
        adapter: ModelAdapter,
        weights_format: str,
        preprocessing: Sequence[BoundOp],
        postprocessing: Sequence[BoundOp],
        pre_stats: StatsCalculator,
        post_stats: StatsCalculator,
        fixed_dataset_statistics: Mapping[Measure, MeasureValue] | None = None,
        default_blocksize_parameter: BlocksizeParameter = DEFAULT_BLOCKSIZE_PARAMETER,
        batch_size: int = 1,
        border: BorderMode | None = None,
        running_dataset_measures: Iterable[DatasetMeasure] | None = None,
        upstreams: Sequence[Upstream] = (),
        include_upstream_outputs: bool = False,
        axes_none_scope: Literal["dataset", "sample"] = "dataset",
    ) -> None:
        self.model = model
        self.name = model.name
        self.shape: ModelShape = model_shape(model)
        """Inputs and outputs as the description declares them."""
        batch_size = check_batch_size(batch_size)
        default_blocksize_parameter = check_blocksize_parameter(
            default_blocksize_parameter, self.shape, name="default_blocksize_parameter"
        )
        self.io_shape: ModelShape = ModelShape(
            inputs=self.shape.inputs,
            outputs=tuple(model_output_axes(t, postprocessing) for t in self.shape.outputs),
        )
        """What the model itself takes and returns: outputs before postprocessing steps that
        change their shape (``OpSpec.input_axes``); blocks are cut and stitched with these."""
        self.adapter: ModelAdapter | None = adapter
        self.weights_format = weights_format
        self.preprocessing = tuple(preprocessing)
        self.postprocessing = tuple(postprocessing)
        self.pre_stats = pre_stats
        self.post_stats = post_stats
        self.fixed_dataset_statistics = dict(fixed_dataset_statistics or {})
        self.default_blocksize_parameter = default_blocksize_parameter
        self.default_batch_size = batch_size
        self.axes_none_scope: Literal["dataset", "sample"] = axes_none_scope
        """What ``axes: null`` in the processing's statistics means (see
        :func:`create_prediction_pipeline`)."""
        self.input_paddings: dict[str, Padding] = declared_paddings(model)
        """Inputs whose description declares ``pad``, and how they are padded."""
        self.border: BorderMode = border or ("pad" if self.input_paddings else "inside")
        self.layout = ModelLayout(self.shape, self.io_shape, self.border)
        """What the block planning needs to know of the model."""
        self.forward = Forward(
            weights_format,
            {t.id: t.axis_ids for t in self.io_shape.inputs},
            {t.id: t.axis_ids for t in self.io_shape.outputs},
        )
        """The forward stage (it remembers a model that rejects batches)."""
        self.optional_inputs = tuple(str(t.id) for t in model.inputs if getattr(t, "optional", False))
        self.upstreams: tuple[Upstream, ...] = tuple(upstreams)
        """Models whose outputs feed inputs of this one (``output_of``); see :mod:`~bioimageio_core.chain`."""
        self.include_upstream_outputs = include_upstream_outputs
        """Whether predictions also return the outputs of upstream models that ran."""
        if running_dataset_measures is None:
            running_dataset_measures = (
                m
                for calc in (pre_stats, post_stats)
                if calc.updating
                for m in calc.dataset_measures
                if m not in self.fixed_dataset_statistics
            )
        self.running_dataset_measures: frozenset[DatasetMeasure] = frozenset(
            running_dataset_measures
        )
        """Dataset measures without initial or fixed values: accumulated sample by sample unless
        computed first (``predict_many``, the ``predict`` command) and set with
        :meth:`with_dataset_statistics`."""

    @property
    def model_description(self) -> ModelDescr:
        """The model description (the name bioimageio.core uses for :attr:`model`)."""
        return self.model

    @property
    def dataset_measures(self) -> frozenset[DatasetMeasure]:
        """Every dataset measure pre- and postprocessing use (of inputs, then outputs)."""
        return frozenset((*self.pre_stats.dataset_measures, *self.post_stats.dataset_measures))

    def with_dataset_statistics(
        self, values: Mapping[DatasetMeasure, MeasureValue]
    ) -> PredictionPipeline:
        """A pipeline sharing this one's loaded model whose dataset statistics are ``values``
        (fixed, never updated) where given; ``values`` win over earlier fixed values.

        Unloading either pipeline unloads the shared model.
        """
        unknown = sorted(str(m) for m in values if m not in self.dataset_measures)
        if unknown:
            raise InputError(
                f"dataset statistics {unknown} are not used by this model's processing",
                hint=f"it uses {sorted(str(m) for m in self.dataset_measures) or 'none'}",
            )
        fixed: dict[Measure, MeasureValue] = dict(self.fixed_dataset_statistics)
        for measure, value in values.items():
            fixed[measure] = value
        twin = copy.copy(self)
        twin.fixed_dataset_statistics = fixed
        twin.pre_stats = _with_fixed(self.pre_stats, fixed)
        twin.post_stats = _with_fixed(self.post_stats, fixed)
        twin.running_dataset_measures = frozenset(
            m for m in self.running_dataset_measures if m not in values
        )
        return twin

    def load(self) -> None:
        """Nothing to do: the model is loaded when the pipeline is created (kept for code written
        for bioimageio.core)."""

    # --- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """The same as :meth:`unload` (``with pipeline:`` unloads on leaving)."""
        self.unload()

    def unload(self) -> None:
        """Free the model and any upstream models (idempotent); the pipeline cannot predict
        afterwards."""
        adapter, self.adapter = self.adapter, None
        if adapter is not None:
            adapter.unload()
        for upstream in self.upstreams:
            upstream.unload()

    def _adapter(self) -> ModelAdapter:
        if self.adapter is None:
            raise BioimageioError(
                "the prediction pipeline was unloaded",
                hint="create a new one with create_prediction_pipeline()",
            )
        return self.adapter

    # --- inputs and processing ------------------------------------------------------------------

    def digest(self, inputs: Inputs, *, axes: AxesArg = None, sample_id: Hashable = "sample") -> Sample:
        """``inputs`` as a checked :class:`Sample` in the model's axis order (views, no copies).

        For a chained model (inputs with ``output_of``) the sample may hold the inputs of the
        upstream models instead of the inputs they feed (see :attr:`input_ids`).
        """
        if not self.upstreams:
            digested = digest_inputs(
                self.shape, inputs, axes=axes, sample_id=sample_id, optional=self.optional_inputs
            )
            if isinstance(inputs, Sample) and inputs in _PREPROCESSED:
                _PREPROCESSED.add(digested)
            return digested
        specs, maybe_missing = self._chain_inputs
        if not isinstance(inputs, Sample | Mapping):
            leaves = upstream_leaves(
                [t.id for t in specs], maybe_missing, self.optional_inputs, self.upstreams
            )
            if len(leaves) == 1:
                inputs = {leaves[0]: inputs}
        sample = digest_inputs(
            ModelShape(inputs=tuple(specs), outputs=()),
            inputs,
            axes=axes,
            sample_id=sample_id,
            optional=(*self.optional_inputs, *maybe_missing),
        )
        check_chain_inputs(sample.members, self.upstreams)
        return sample

    @property
    def input_ids(self) -> tuple[str, ...]:
        """Ids of the inputs this pipeline takes: the model's, then those of upstream models
        (``output_of``) not named yet."""
        return tuple(t.id for t in self._chain_inputs[0])

    @functools.cached_property
    def _chain_inputs(self) -> tuple[list[TensorShape], set[str]]:
        return chain_input_specs(self.shape, self.upstreams)

    def _needs_upstream(self, sample: Sample) -> bool:
        """Whether ``sample`` is not (yet) exactly this model's own inputs with every fed input."""
        if not self.upstreams:
            return False
        own = {t.id for t in self.shape.inputs}
        members = set(sample.members)
        return not (members <= own and fed_ids(self.upstreams) <= members)

    def apply_preprocessing(self, sample: Inputs) -> Sample:
        """Statistics of the raw sample (updating running dataset statistics), then every
        preprocessing step.

        A :class:`Sample` is updated in place, as bioimageio.core does (its members become the
        preprocessed tensors, new arrays; the arrays it held are not written to; its ``stat``
        gains the statistics pre- and postprocessing of this sample use) and is returned; for
        other inputs a new sample is returned. Predict such a sample with
        ``skip_preprocessing=True``: running its preprocessing a second time raises
        :class:`InputError`.
        """
        digested = self.digest(sample)
        if self._needs_upstream(digested):
            return run_chained(self, digested, _whole, self._preprocess_marked)
        processed = self._preprocess(digested)
        if not isinstance(sample, Sample):
            return processed
        sample.members = dict(processed.members)
        sample.stat = processed.stat
        _PREPROCESSED.add(sample)
        return sample

    def _preprocess(self, sample: Sample) -> Sample:
        """:meth:`apply_preprocessing` of a sample that is already digested (a new sample)."""
        if sample in _PREPROCESSED:
            raise InputError(
                f"sample {sample.id!r} was preprocessed already (apply_preprocessing updates a "
                "Sample in place); preprocessing it again would normalise twice",
                hint="pass skip_preprocessing=True when predicting a preprocessed sample",
            )
        return preprocess(sample, self.preprocessing, self.pre_stats, self.fixed_dataset_statistics)

    def _preprocess_marked(self, sample: Sample) -> Sample:
        """:meth:`_preprocess`, the result marked as preprocessed (see :meth:`apply_preprocessing`)."""
        processed = self._preprocess(sample)
        _PREPROCESSED.add(processed)
        return processed

    def apply_postprocessing(self, sample: Sample) -> Sample:
        """Statistics of the raw outputs, then every postprocessing step.

        ``sample`` holds the model outputs (and may hold inputs that steps refer to); statistics
        of input tensors are taken from ``sample.stat`` (see :meth:`apply_preprocessing`). As
        in bioimageio.core the sample is updated in place (its output members become the
        postprocessed tensors, its ``stat`` gains the output statistics) and returned.
        """
        processed = self._postprocess(sample)
        sample.members = {**sample.members, **processed.members}
        sample.stat = processed.stat
        return sample

    def _postprocess(self, sample: Sample) -> Sample:
        """:meth:`apply_postprocessing` into a new sample of the output members only."""
        return postprocess(
            sample,
            self.postprocessing,
            self.post_stats,
            self.fixed_dataset_statistics,
            self._output_ids,
        )

    @functools.cached_property
    def _output_ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.shape.outputs)

    @functools.cached_property
    def _reshaped(self) -> dict[str, list[str]]:
        """Outputs whose postprocessing changes their shape, with the ids of those steps."""
        return {
            t.id: [
                op.spec.id
                for op in self.postprocessing
                if op.target.member_id == t.id and op.spec.input_axes is not None
            ]
            for t, d in zip(self.io_shape.outputs, self.shape.outputs, strict=True)
            if t != d
        }

    def postprocessing_is_pointwise(self) -> bool:
        """Whether postprocessing may run block by block (before stitching) with equal results.

        True when no step needs statistics and every step works element by element, or along an
        axis that blocking never splits (e.g. ``softmax`` over channels). Then the stitched
        output is never held a second time in memory.
        """
        if self.post_stats.sample_measures or self.post_stats.dataset_measures:
            return False
        return runs_per_block(self.postprocessing, self.shape)

    # --- prediction -----------------------------------------------------------------------------

    def predict_sample_block(
        self,
        sample: Inputs,
        *,
        skip_preprocessing: bool = False,
        skip_postprocessing: bool = False,
    ) -> Sample:
        """One forward call on ``sample`` as it is: its sizes must be valid model input sizes.

        Raises:
            InputError: a size is not valid (the message lists the valid sizes).
        """
        digested = self.digest(sample)
        if self._needs_upstream(digested):
            return run_chained(
                self,
                digested,
                _whole,
                lambda own: self._predict_block(own, skip_preprocessing, skip_postprocessing),
            )
        return self._predict_block(digested, skip_preprocessing, skip_postprocessing)

    def _predict_block(
        self, digested: Sample, skip_preprocessing: bool, skip_postprocessing: bool
    ) -> Sample:
        check_input_sizes(self.layout.present(digested.shape), flat_sizes(digested.shape))
        processed = digested if skip_preprocessing else self._preprocess(digested)
        raw = self._adapter().forward({m: t.data for m, t in processed.members.items()})
        outputs = self.forward.checked(raw)
        result = Sample(
            members={t.id: Tensor(outputs[t.id], t.axis_ids) for t in self.io_shape.outputs},
            stat=processed.stat,
            id=processed.id,
        )
        return result if skip_postprocessing else self._postprocess(result)

    def predict_sample(
        self,
        inputs: Inputs,
        blocking: Blocking | None = None,
        *,
        axes: AxesArg = None,
        sample_id: Hashable = None,
        outputs: Outputs | None = None,
        skip_preprocessing: bool = False,
        skip_postprocessing: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> Sample:
        """Predict one sample cut into blocks as ``blocking`` says (default: whole, see
        :meth:`predict_sample_without_blocking`); the other ``predict_sample_*`` methods call it.

        ``inputs`` are digested once (``axes`` as for :meth:`digest`); ``sample_id`` names the
        sample (default: a ``Sample``'s own id, else ``"sample"``).
        """
        blocking = blocking or Blocking()
        digested = self.digest(inputs, axes=axes, sample_id="sample" if sample_id is None else sample_id)
        if digested.id is None and sample_id is not None:
            digested.id = sample_id
        if self._needs_upstream(digested):
            upstream_blocking = blocking.for_upstream()
            return run_chained(
                self,
                digested,
                lambda p, s: p.predict_sample(s, upstream_blocking),
                lambda own: self._predict(
                    own, blocking, outputs, skip_preprocessing, skip_postprocessing, on_progress
                ),
            )
        return self._predict(
            digested, blocking, outputs, skip_preprocessing, skip_postprocessing, on_progress
        )

    def predict_sample_without_blocking(
        self,
        sample: Inputs,
        *,
        outputs: Outputs | None = None,
        skip_preprocessing: bool = False,
        skip_postprocessing: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> Sample:
        """Run the whole sample in one forward call (padded to valid sizes, cropped back).

        With ``border="pad"`` (the default when an input declares ``pad``) the sample is also
        padded by the model's halo on both sides, so the outputs at the sample border come from
        padded context exactly as in tiled prediction. A sample larger than a fixed model size
        along an axis that may be tiled (space, time, batch) is tiled automatically along those
        axes only (blocks of the fixed size with the model's halo; other axes whole).
        """
        return self.predict_sample(
            sample,
            Blocking(),
            outputs=outputs,
            skip_preprocessing=skip_preprocessing,
            skip_postprocessing=skip_postprocessing,
            on_progress=on_progress,
        )

    def predict_sample_with_blocking(
        self,
        sample: Inputs,
        ns: BlocksizeParameter | None = None,
        batch_size: int | None = None,
        *,
        outputs: Outputs | None = None,
        skip_preprocessing: bool = False,
        skip_postprocessing: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> Sample:
        """Tile the sample into blocks of the model's input size for blocksize parameter ``ns``.

        ``ns`` (default: the pipeline's ``default_blocksize_parameter``) selects ``min + n*step``
        on parameterized axes (an int, or ``{(tensor_id, axis_id): n}``); blocks include the halo.
        Blocks are never larger than needed to hold the whole axis. ``batch_size`` blocks go
        through the model per call (default: the pipeline's).
        """
        n = self.default_blocksize_parameter if ns is None else ns
        return self.predict_sample(
            sample,
            Blocking(blocksize_parameter=n, batch_size=batch_size),
            outputs=outputs,
            skip_preprocessing=skip_preprocessing,
            skip_postprocessing=skip_postprocessing,
            on_progress=on_progress,
        )

    def predict_sample_with_fixed_blocking(
        self,
        sample: Inputs,
        input_block_shape: BlockShapeArg,
        batch_size: int | None = None,
        *,
        outputs: Outputs | None = None,
        skip_preprocessing: bool = False,
        skip_postprocessing: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> Sample:
        """Tile the sample into blocks of ``input_block_shape`` (halo included).

        ``input_block_shape`` is ``{tensor_id: {axis_id: size}}`` (or keyed by ``(tensor_id,
        axis_id)``); every size must be a valid model input size. Axes left out use the
        pipeline's default blocksize parameter.

        Raises:
            InputError: a block size is not a valid model input size.
        """
        return self.predict_sample(
            sample,
            Blocking(input_block_shape=input_block_shape, batch_size=batch_size),
            outputs=outputs,
            skip_preprocessing=skip_preprocessing,
            skip_postprocessing=skip_postprocessing,
            on_progress=on_progress,
        )

    def plan_blocks(self, sample_shape: SampleShape, blocking: Blocking) -> BlockPlan:
        """The blocks of a sample of ``sample_shape`` cut as ``blocking`` says (this pipeline's
        defaults fill in what it leaves open).

        Raises:
            InputError: the sample or the block shape does not fit the model.
        """
        return plan(
            self.layout,
            sample_shape,
            blocking,
            default_blocksize_parameter=self.default_blocksize_parameter,
            default_batch_size=self.default_batch_size,
        )

    def _predict(
        self,
        sample: Sample,
        blocking: Blocking,
        outputs: Outputs | None,
        skip_preprocessing: bool,
        skip_postprocessing: bool,
        on_progress: ProgressCallback | None,
    ) -> Sample:
        """The stages for a digested sample of this model's own inputs."""
        block_plan = self.plan_blocks(sample.shape, blocking)
        adapter = self._adapter()
        processed = sample if skip_preprocessing else self._preprocess(sample)
        paddings = paddings_for(
            self.input_paddings,
            sample,
            self.preprocessing,
            processed.stat,
            self.shape,
            preprocessed=not skip_preprocessing,
        )
        post_per_block = not skip_postprocessing and self.postprocessing_is_pointwise()
        stat: dict[Any, Any] = dict(processed.stat)
        stitcher = Stitcher(
            self.io_shape,
            block_plan.output_sizes,
            weights_format=self.weights_format,
            postprocessing=self.postprocessing if post_per_block else (),
            stat=stat,
            reshaped=self._reshaped,
        )
        targets = OutputTargets(outputs, self.io_shape, in_memory=self._reshaped)
        run_blocks(
            block_plan,
            MemberReader(processed.members, paddings),
            adapter,
            self.forward,
            stitcher,
            targets,
            on_progress=on_progress,
        )
        result = Sample(members=targets.tensors(), stat=stat, id=sample.id)
        if skip_postprocessing or post_per_block:
            return result
        post = self._postprocess(result)
        if outputs is None:
            return post
        for oid, tensor in post.members.items():  # write the result into the caller's arrays
            if oid in self._reshaped:
                targets.arrays[oid] = (
                    outputs(oid, tensor.shape, tensor.dtype) if callable(outputs) else outputs[oid]
                )
            target = targets.arrays[oid]
            if tensor.data is not target:
                target[...] = tensor.data
        return Sample(
            members={
                t.id: Tensor(_as_array(targets.arrays[t.id]), t.axis_ids) for t in self.shape.outputs
            },
            stat=post.stat,
            id=post.id,
        )


# --- helpers ------------------------------------------------------------------------------------

_PREPROCESSED: weakref.WeakSet[Sample] = weakref.WeakSet()
"""Samples :meth:`PredictionPipeline.apply_preprocessing` updated in place."""


def _with_fixed(calculator: StatsCalculator, fixed: Mapping[Measure, MeasureValue]) -> StatsCalculator:
    """``calculator`` with the dataset values in ``fixed``; itself when they do not cover all."""
    given = {m: v for m, v in fixed.items() if m in calculator.dataset_measures}
    if not calculator.dataset_measures or len(given) < len(calculator.dataset_measures):
        return calculator
    measures = (*calculator.sample_measures, *calculator.dataset_measures)
    return StatsCalculator(measures, fixed=given)  # type: ignore[arg-type]


def _whole(pipeline: PredictionPipeline, sample: Sample) -> Sample:
    return pipeline.predict_sample_without_blocking(sample)


def _as_array(array: Any) -> np.ndarray[Any, Any]:
    return array if isinstance(array, np.ndarray) else np.asarray(array)


# --- creation -----------------------------------------------------------------------------------


def create_prediction_pipeline(
    model: Any,
    *,
    devices: Sequence[str] | None = None,
    weights_format: str | None = None,
    dataset_for_initial_statistics: Iterable[Inputs] = (),
    fixed_dataset_statistics: Mapping[Measure, MeasureValue] | None = None,
    keep_updating_dataset_statistics: bool = False,
    default_blocksize_parameter: BlocksizeParameter = DEFAULT_BLOCKSIZE_PARAMETER,
    batch_size: int = 1,
    axes_none_scope: Literal["dataset", "sample"] = "dataset",
    border: BorderMode | None = None,
    model_adapter: ModelAdapter | None = None,
    weight_format: str | None = None,
    keep_updating_initial_dataset_statistics: bool | None = None,
    include_upstream_outputs: bool = False,
    server: str | None = None,
) -> PredictionPipeline:
    """Load a model's weights and processing into a :class:`PredictionPipeline`.

    ``model``: a model description or any source ``load_description`` accepts. ``weights_format``
    picks the format (default: the best usable one; if loading it fails, the next is tried).
    ``devices``: e.g. ``["cuda"]`` (default: GPU if the backend finds one, else CPU).
    Dataset statistics: ``dataset_for_initial_statistics`` (samples, or anything ``predict``
    accepts as inputs) seeds them; they then stay fixed unless
    ``keep_updating_dataset_statistics``; without initial samples they accumulate over every
    sample predicted (``predict_many`` computes them over all its inputs first).
    ``fixed_dataset_statistics`` (measure → value) always wins.
    ``default_blocksize_parameter`` and ``batch_size`` (blocks per forward call) are the
    defaults of blockwise prediction. ``axes_none_scope``: what ``axes: null`` means for the
    statistics of ``zero_mean_unit_variance``, ``scale_range`` and ``clip`` — ``"dataset"``
    (bioimageio.core's behaviour: dataset statistics) or ``"sample"``.
    ``border``: ``"inside"`` (blocks at the sample border lie inside it; blockwise equals
    whole-sample prediction for models whose receptive field fits their halo) or ``"pad"``
    (blocks, and the whole sample, reach beyond the sample border by the halo and are padded
    there as each input's ``pad`` says, reflect for inputs without ``pad``; as bioimageio.core
    does). Default: ``"pad"`` when an input of the model declares ``pad``, else ``"inside"``.
    ``model_adapter``: an adapter to use instead of loading one (:func:`create_model_adapter`).
    A model whose inputs name ``output_of`` gets its upstream models (read now, loaded when a
    sample first needs them, with the same devices, weight format when they have it, batch size
    and blocking); ``include_upstream_outputs`` also returns their outputs.
    ``dataset_for_initial_statistics`` holds samples of this model's own inputs.
    ``server``: the URL of a ``bioimageio-run serve`` server that runs the model's forward calls
    (token from ``BIOIMAGEIO_SERVER_TOKEN``); everything else runs here. A URL or id ``model``
    is fetched by the server itself, a local model is uploaded once (see
    :mod:`bioimageio_core.remote`).
    """
    batch_size = check_batch_size(batch_size)
    weights_format = weights_format_keyword(weights_format, weight_format)
    keep_updating = either_keyword(
        keep_updating_initial_dataset_statistics or None,
        keep_updating_dataset_statistics or None,
        name="keep_updating_dataset_statistics",
        alias="keep_updating_initial_dataset_statistics",
    )
    keep_updating_dataset_statistics = bool(keep_updating)
    descr = as_model_description(model)
    spec = model_shape(descr)
    default_blocksize_parameter = check_blocksize_parameter(
        default_blocksize_parameter, spec, name="default_blocksize_parameter"
    )
    pre = build_model_ops(descr, "pre", axes_none_scope=axes_none_scope)
    post = build_model_ops(descr, "post", axes_none_scope=axes_none_scope)
    input_ids = {t.id for t in spec.inputs}
    post_measures = required_measures(post)
    pre_measures = required_measures(pre) | {m for m in post_measures if m.member_id in input_ids}
    post_measures = frozenset(m for m in post_measures if m.member_id not in input_ids)
    fixed = dict(fixed_dataset_statistics or {})
    optional = tuple(str(t.id) for t in descr.inputs if getattr(t, "optional", False))
    seeded: list[bool] = []

    def dataset() -> Iterator[Mapping[str, Tensor]]:
        for i, s in enumerate(dataset_for_initial_statistics):
            seeded.append(True)
            yield digest_inputs(spec, s, sample_id=i, optional=optional).members

    pre_stats = _stats_calculator(pre_measures, fixed, dataset(), keep_updating_dataset_statistics)
    post_stats = _stats_calculator(post_measures, fixed, (), keep_updating_dataset_statistics)
    running = (
        ()
        if seeded or keep_updating_dataset_statistics
        else (
            m
            for m in (*pre_stats.dataset_measures, *post_stats.dataset_measures)
            if m not in fixed
        )
    )
    def upstream_pipeline(upstream: Upstream) -> PredictionPipeline:
        formats = upstream.model.weights.available_formats
        return create_prediction_pipeline(
            upstream.model,
            devices=devices,
            weights_format=weights_format if weights_format in formats else None,
            default_blocksize_parameter=default_blocksize_parameter
            if isinstance(default_blocksize_parameter, int)
            else DEFAULT_BLOCKSIZE_PARAMETER,
            batch_size=batch_size,
            axes_none_scope=axes_none_scope,
            border=border,
            server=server,
        )

    upstreams = resolve_upstreams(descr, upstream_pipeline)
    if model_adapter is not None:
        adapter, chosen = model_adapter, weights_format or "custom"
    else:
        adapter, chosen = load_model_adapter(
            descr, weights_format=weights_format, devices=devices, server=server, source=model
        )
    return PredictionPipeline(
        model=descr,
        adapter=adapter,
        weights_format=chosen,
        preprocessing=pre,
        postprocessing=post,
        pre_stats=pre_stats,
        post_stats=post_stats,
        fixed_dataset_statistics=fixed,
        default_blocksize_parameter=default_blocksize_parameter,
        batch_size=batch_size,
        border=border,
        running_dataset_measures=running,
        upstreams=upstreams,
        include_upstream_outputs=include_upstream_outputs,
        axes_none_scope=axes_none_scope,
    )


def _stats_calculator(
    measures: Iterable[Measure],
    fixed: Mapping[Measure, MeasureValue],
    dataset: Iterable[Mapping[str, Tensor]],
    keep_updating: bool,
) -> StatsCalculator:
    """Initial samples give exact dataset statistics (frozen unless ``keep_updating``)."""
    measures = tuple(measures)
    given = {m: v for m, v in fixed.items() if m in measures}
    samples = list(dataset)  # digested views of the caller's data
    if samples and not keep_updating:
        wanted = [m for m in measures if isinstance(m, DATASET_MEASURES) and m not in given]
        values: dict[Any, Any] = dict(compute_dataset_measures(wanted, samples)) if wanted else {}
        values.update(given)
        return StatsCalculator(measures, fixed=values)
    calculator = StatsCalculator(measures, keep_updating=True)
    for members in samples:
        calculator.update(members)
    if given and not samples:
        return StatsCalculator(measures, fixed=given, keep_updating=keep_updating)  # type: ignore[arg-type]
    return calculator


__all__ = [
    "DEFAULT_BLOCKSIZE_PARAMETER",
    "PredictionPipeline",
    "create_prediction_pipeline",
]
