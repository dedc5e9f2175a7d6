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

Improvements over the reference: blocking works for every model (0.4 descriptions are 0.5 after
loading), statistics of input tensors that postprocessing needs (e.g. a reference tensor) are
computed on the raw inputs, and the caller's sample is never modified.
"""

from __future__ import annotations

import copy
import functools
import time
import warnings
import weakref
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from bioimageio_core._compat import either_keyword, weights_format_keyword
from bioimageio_core.blocks import (
    BorderMode,
    OutputBlockMapper,
    SampleBlock,
    SupportsSetItem,
    batched,
    count_blocks,
    inner_data,
    model_sample_blocks,
    padded_sample_block,
    sample_block_data,
    split_sample_shape,
)
from bioimageio_core.digest import (
    AxesArg,
    BlockShapeArg,
    Inputs,
    check_input_sizes,
    digest_inputs,
    normalize_block_shape,
)
from bioimageio_core.errors import BioimageioError, InputError, PluginError, ServerError
from bioimageio_core.input_padding import declared_paddings, preprocessed_paddings
from bioimageio_core.ops import BoundOp, apply_ops, build_model_ops, required_measures
from bioimageio_core.ops.processing import model_output_axes
from bioimageio_core.prefetch import PrefetchPolicy, prefetched
from bioimageio_core.sample import Sample
from bioimageio_core.shapes import (
    BlocksizeParameter,
    FixedSize,
    ModelShape,
    ShapeError,
    SizeReference,
    TensorAxis,
    TensorShape,
    as_input_error,
    block_halos,
    block_shape,
    check_batch_size,
    check_blocksize_parameter,
    fill_data_dependent_sizes,
    model_shape,
    output_sizes,
    resolve_references,
    valid_size,
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

Array = np.ndarray[Any, Any]
OutputArrays = Mapping[str, SupportsSetItem]
"""Preallocated outputs by output tensor id, each of the whole output sample's shape."""
OutputFactory = Callable[[str, tuple[int, ...], np.dtype[Any]], SupportsSetItem]
"""``factory(output_id, shape, dtype)`` creates an output array once the first block's output
(after blockwise postprocessing) shows its dtype."""
Outputs = OutputArrays | OutputFactory
POINTWISE_OPS = frozenset(
    {"binarize", "clip", "ensure_dtype", "fixed_zero_mean_unit_variance", "scale_linear",
     "sigmoid", "softmax"}
)
"""Processing ops that work element by element (or along one unsplit axis) when they need no
statistics, so postprocessing made of them can run per block."""
ProgressCallback = Callable[[int, int], None]
"""``callback(blocks_done, blocks_total)``, called after every forward call."""

DEFAULT_BLOCKSIZE_PARAMETER = 10


class PredictionPipeline:
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
        self._reshaped = frozenset(
            t.id for t, d in zip(self.io_shape.outputs, self.shape.outputs, strict=True) if t != d
        )
        self.adapter: ModelAdapter | None = adapter
        self.weights_format = weights_format
        self.preprocessing = tuple(preprocessing)
        self.postprocessing = tuple(postprocessing)
        self.pre_stats = pre_stats
        self.post_stats = post_stats
        self.fixed_dataset_statistics = dict(fixed_dataset_statistics or {})
        self.default_blocksize_parameter = default_blocksize_parameter
        self.default_batch_size = batch_size
        self.input_paddings: dict[str, Padding] = declared_paddings(model)
        """Inputs whose description declares ``pad``, and how they are padded."""
        self.border: BorderMode = border or ("pad" if self.input_paddings else "inside")
        self._batching_failed = False
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

    def __enter__(self) -> PredictionPipeline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
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
        ids = [t.id for t in specs]
        if not isinstance(inputs, Sample | Mapping):
            required = [i for i in ids if i not in maybe_missing and i not in self.optional_inputs]
            fed_anywhere = set(_all_feeds(self.upstreams))
            leaves = required or [i for i in ids if i not in fed_anywhere]
            if len(leaves) == 1:
                inputs = {leaves[0]: inputs}
        sample = digest_inputs(
            ModelShape(inputs=tuple(specs), outputs=()),
            inputs,
            axes=axes,
            sample_id=sample_id,
            optional=(*self.optional_inputs, *maybe_missing),
        )
        _check_chain_inputs(sample.members, self.upstreams)
        return sample

    @property
    def input_ids(self) -> tuple[str, ...]:
        """Ids of the inputs this pipeline takes: the model's, then those of upstream models
        (``output_of``) not named yet."""
        return tuple(t.id for t in self._chain_inputs[0])

    @functools.cached_property
    def _chain_inputs(self) -> tuple[list[TensorShape], set[str]]:
        from bioimageio_core.chain import chain_input_specs

        return chain_input_specs(self.shape, self.upstreams)

    @functools.cached_property
    def _fed_ids(self) -> frozenset[str]:
        return frozenset(f for u in self.upstreams for f in u.feeds)

    def _needs_upstream(self, sample: Inputs) -> bool:
        """Whether ``sample`` is not (yet) exactly this model's own inputs with every fed input."""
        if not self.upstreams:
            return False
        members = sample.members if isinstance(sample, Sample) else sample
        if not isinstance(members, Mapping):
            return True
        own = {t.id for t in self.shape.inputs}
        return not (set(members) <= own and self._fed_ids <= set(members))

    def _chained(
        self,
        sample: Inputs,
        run_upstream: Callable[[PredictionPipeline, Sample], Sample],
        predict_own: Callable[[Sample], Sample],
    ) -> Sample:
        """Run the upstream models whose fed inputs ``sample`` lacks, then ``predict_own`` on this
        model's own inputs (the sample's other members are kept, the fed ones added)."""
        digested = self.digest(sample)
        members = dict(digested.members)
        extra: dict[str, Tensor] = {}
        for upstream in self.upstreams:
            if all(f in members for f in upstream.feeds):
                continue
            pipeline = upstream.pipeline()
            wanted = set(pipeline.input_ids)
            result = run_upstream(
                pipeline,
                Sample(members={k: v for k, v in members.items() if k in wanted}, id=digested.id),
            )
            for f in upstream.feeds:
                members[f] = result.members[f]
            extra.update(result.members)
        own_ids = {t.id for t in self.shape.inputs}
        own = Sample(
            members={k: v for k, v in members.items() if k in own_ids},
            stat=digested.stat,
            id=digested.id,
        )
        out = predict_own(self.digest(own))
        if not self.include_upstream_outputs:
            return out
        kept = {k: v for k, v in extra.items() if k not in out.members}
        return Sample(members={**kept, **out.members}, stat=out.stat, id=out.id)

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
        if self._needs_upstream(sample):
            return self._chained(sample, _whole, self.apply_preprocessing)
        processed = self._preprocess(self.digest(sample))
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
        stat: dict[Any, Any] = dict(sample.stat)
        measures = (*self.pre_stats.sample_measures, *self.pre_stats.dataset_measures)
        if measures:
            lacking = sorted({m.member_id for m in measures} - set(sample.members))
            if lacking:
                raise InputError(
                    f"optional input(s) {lacking} are missing, but the model's processing needs "
                    "their statistics",
                    hint="give these inputs too",
                )
            stat.update(self.pre_stats.update_and_get_all(sample.members))
            stat.update(self.fixed_dataset_statistics)
        ops = [op for op in self.preprocessing if op.target.member_id in sample.members]
        members = apply_ops(ops, sample.members, stat)
        return Sample(members=members, stat=stat, id=sample.id)

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
        outputs = {k: v for k, v in sample.members.items() if k in self._output_ids}
        stat: dict[Any, Any] = dict(sample.stat)
        if self.post_stats.sample_measures or self.post_stats.dataset_measures:
            stat.update(self.post_stats.update_and_get_all(outputs))
            stat.update(self.fixed_dataset_statistics)
        members = apply_ops(self.postprocessing, sample.members, stat)
        return Sample(
            members={k: v for k, v in members.items() if k in self._output_ids}, stat=stat, id=sample.id
        )

    @functools.cached_property
    def _output_ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.shape.outputs)

    @functools.cached_property
    def _input_axes(self) -> dict[str, tuple[str, ...]]:
        return {t.id: t.axis_ids for t in self.shape.inputs}

    @functools.cached_property
    def _output_axes(self) -> dict[str, tuple[str, ...]]:
        return {t.id: t.axis_ids for t in self.shape.outputs}

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
        if self._needs_upstream(sample):
            return self._chained(
                sample,
                _whole,
                lambda own: self.predict_sample_block(
                    own,
                    skip_preprocessing=skip_preprocessing,
                    skip_postprocessing=skip_postprocessing,
                ),
            )
        digested = self.digest(sample)
        check_input_sizes(self._present(digested), _flat(digested.shape))
        processed = digested if skip_preprocessing else self._preprocess(digested)
        raw = self._adapter().forward({m: t.data for m, t in processed.members.items()})
        outputs = self._wrap_outputs(raw)
        result = Sample(members=outputs, stat=processed.stat, id=processed.id)
        return result if skip_postprocessing else self._postprocess(result)

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
        if self._needs_upstream(sample):
            return self._chained(
                sample,
                _whole,
                lambda own: self.predict_sample_without_blocking(
                    own,
                    outputs=outputs,
                    skip_preprocessing=skip_preprocessing,
                    skip_postprocessing=skip_postprocessing,
                    on_progress=on_progress,
                ),
            )
        digested = self.digest(sample)
        shape = digested.shape
        sizes = _flat(shape)
        present = self._present(digested)
        halos = block_halos(present) if self.border == "pad" else {}
        tiled = self._exceeding_fixed_sizes(sizes, halos)
        if tiled:
            blocks, n_blocks = self._tile_fixed_axes(shape, sizes, tiled, halos)
        else:
            with as_input_error():
                blocks = iter([padded_sample_block(present, shape, halos)])
            n_blocks = 1
        return self._predict(
            digested,
            blocks,
            n_blocks,
            self.default_batch_size,
            outputs,
            skip_preprocessing,
            skip_postprocessing,
            on_progress,
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
        if self._needs_upstream(sample):
            return self._chained(
                sample,
                lambda p, s: p.predict_sample_with_blocking(
                    s, ns if isinstance(ns, int) else None, batch_size
                ),
                lambda own: self.predict_sample_with_blocking(
                    own,
                    ns,
                    batch_size,
                    outputs=outputs,
                    skip_preprocessing=skip_preprocessing,
                    skip_postprocessing=skip_postprocessing,
                    on_progress=on_progress,
                ),
            )
        digested = self.digest(sample)
        sizes = _flat(digested.shape)
        n = (
            self.default_blocksize_parameter
            if ns is None
            else check_blocksize_parameter(ns, self.shape)
        )
        bs = block_shape(self._present(digested), sizes, n, batch_size=1)
        return self._predict_blocked(
            digested, bs, batch_size, outputs, skip_preprocessing, skip_postprocessing, on_progress
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
        if self._needs_upstream(sample):
            return self._chained(
                sample,
                lambda p, s: p.predict_sample_with_blocking(s, None, batch_size),
                lambda own: self.predict_sample_with_fixed_blocking(
                    own,
                    input_block_shape,
                    batch_size,
                    outputs=outputs,
                    skip_preprocessing=skip_preprocessing,
                    skip_postprocessing=skip_postprocessing,
                    on_progress=on_progress,
                ),
            )
        digested = self.digest(sample)
        sizes = _flat(digested.shape)
        given = normalize_block_shape(self.shape, input_block_shape)
        present = self._present(digested)
        missing = sorted({t for t, _ in given} - set(digested.members))
        if missing:
            raise InputError(f"input block shape given for input(s) {missing} that the sample lacks")
        default = block_shape(present, sizes, self.default_blocksize_parameter, batch_size=1)
        bs = {k: v for k, v in default.items() if k in given or not self._is_reference(k)}
        bs.update(given)
        resolved = resolve_references(present, bs, present.inputs)
        bs.update({k: v for k, v in resolved.items() if k not in given})
        check_input_sizes(present, bs)
        return self._predict_blocked(
            digested, bs, batch_size, outputs, skip_preprocessing, skip_postprocessing, on_progress
        )

    # --- internals ------------------------------------------------------------------------------

    def _present(self, sample: Sample) -> ModelShape:
        """The model spec without the optional inputs ``sample`` lacks."""
        inputs = tuple(t for t in self.shape.inputs if t.id in sample.members)
        return ModelShape(inputs=inputs, outputs=self.io_shape.outputs)

    def _is_reference(self, key: TensorAxis) -> bool:
        return isinstance(self.shape.axis(key).size, SizeReference)

    def _exceeding_fixed_sizes(
        self, sizes: Mapping[TensorAxis, int], halos: Mapping[TensorAxis, int]
    ) -> set[TensorAxis]:
        """Input axes that may be split and are larger than the model's fixed size (with the
        ``halos`` padded on both sides)."""
        out: set[TensorAxis] = set()
        for t in self.shape.inputs:
            for a in t.axes:
                key = (t.id, a.id)
                s = sizes.get(key)
                if s is None or not isinstance(a.size, FixedSize) or not a.splittable:
                    continue
                if s + 2 * halos.get(key, 0) > a.size.size:
                    out.add(key)
        return out

    def _tile_fixed_axes(
        self,
        shape: Mapping[str, Mapping[str, int]],
        sizes: Mapping[TensorAxis, int],
        tiled: set[TensorAxis],
        border_halos: Mapping[TensorAxis, int],
    ) -> tuple[Iterator[SampleBlock], int]:
        """Blocks that cut only the ``tiled`` axes (with halo); other axes whole, padded to valid
        sizes (and by ``border_halos`` on both sides)."""
        bs: dict[TensorAxis, int] = {}
        for t in self.shape.inputs:
            for a in t.axes:
                key = (t.id, a.id)
                if key not in sizes or isinstance(a.size, SizeReference):
                    continue
                if key in tiled and isinstance(a.size, FixedSize):
                    bs[key] = a.size.size
                    continue
                wanted = sizes[key] + 2 * border_halos.get(key, 0)
                v = valid_size(a.size, wanted)
                bs[key] = wanted if v is None else v
        present = ModelShape(
            inputs=tuple(t for t in self.shape.inputs if t.id in shape), outputs=self.io_shape.outputs
        )
        bs.update(resolve_references(present, bs, present.inputs))
        halos = {
            k: h for k, h in block_halos(self.io_shape).items() if k in tiled or k in border_halos
        }
        with as_input_error():
            blocks = split_sample_shape(
                shape,
                bs,
                halos,
                splittable=lambda key: self.shape.axis(key).splittable,
                border=self.border,
            )
            return blocks, count_blocks(shape, bs, halos)

    def _predict_blocked(
        self,
        sample: Sample,
        bs: dict[TensorAxis, int],
        batch_size: int | None,
        outputs: Outputs | None,
        skip_preprocessing: bool,
        skip_postprocessing: bool,
        on_progress: ProgressCallback | None,
    ) -> Sample:
        shape = sample.shape
        bs = {k: v for k, v in bs.items() if k[0] in shape}
        with as_input_error():
            blocks = model_sample_blocks(self.io_shape, shape, bs, border=self.border)
            n_blocks = count_blocks(shape, bs, block_halos(self.io_shape))
        b = self.default_batch_size if batch_size is None else check_batch_size(batch_size)
        return self._predict(
            sample, blocks, n_blocks, b, outputs, skip_preprocessing, skip_postprocessing, on_progress
        )

    def _forward(
        self, adapter: ModelAdapter, arrays: Mapping[str, Array], n_stacked: int, n_blocks: int
    ) -> list[Mapping[str, Array]]:
        """Outputs of the first ``n_blocks`` of ``n_stacked`` blocks stacked on the batch axis.

        One forward call; when the model rejects a batch its description allows (e.g. a graph
        exported with batch size 1), it falls back to one call per block from then on.
        """
        output_axes = self._output_axes
        if n_stacked == 1:
            return [adapter.forward(arrays)]
        if not self._batching_failed:
            try:
                raw = adapter.forward(arrays)
            except ServerError:
                raise  # an unreachable server or a refused token is no batch-size problem
            except Exception as e:
                self._batching_failed = True
                warnings.warn(
                    f"the {self.weights_format} model failed on a batch of {n_stacked} blocks "
                    f"({type(e).__name__}: {e}); running one block per call instead",
                    stacklevel=5,
                )
            else:
                return [
                    {
                        oid: _batch_piece(np.asarray(a), output_axes[oid], i, n_stacked)
                        for oid, a in raw.items()
                        if oid in output_axes
                    }
                    for i in range(n_blocks)
                ]
        input_axes = self._input_axes
        return [
            adapter.forward(
                {m: _batch_piece(a, input_axes[m], i, n_stacked) for m, a in arrays.items()}
            )
            for i in range(n_blocks)
        ]

    def _can_batch(self) -> bool:
        """Whether blocks may be stacked along the batch axis of every input and output."""
        for t in self.shape.inputs:
            batch = [a for a in t.axes if a.type == "batch"]
            if not batch or batch[0].size is not None:
                return False
        return all(any(a.type == "batch" for a in t.axes) for t in self.shape.outputs)

    def _predict(
        self,
        sample: Sample,
        blocks: Iterator[SampleBlock],
        n_blocks: int,
        batch_size: int,
        outputs: Outputs | None,
        skip_preprocessing: bool,
        skip_postprocessing: bool,
        on_progress: ProgressCallback | None,
    ) -> Sample:
        adapter = self._adapter()
        processed = sample if skip_preprocessing else self._preprocess(sample)
        members = processed.members
        paddings = self._paddings(sample, processed.stat, skip_preprocessing)
        out_sizes = output_sizes(self.io_shape, _flat(sample.shape))
        if any(v is None for v in out_sizes.values()) and n_blocks > 1:
            raise InputError(
                "this model's outputs have data dependent sizes, so it cannot predict blockwise",
                hint="predict without blocking (a sample the model accepts as a whole)",
            )
        factory: OutputFactory | None = None
        targets: dict[str, Any] = {}
        if callable(outputs):
            factory = outputs
        elif outputs is not None:
            missing = [o for o in self._output_ids if o not in outputs]
            if missing:
                raise InputError(
                    f"'outputs' lacks arrays for output(s) {missing}; give one per model output "
                    f"({list(self._output_ids)})"
                )
            # outputs that postprocessing reshapes are stitched in memory first
            targets = {k: v for k, v in outputs.items() if k not in self._reshaped}
        post_per_block = not skip_postprocessing and self.postprocessing_is_pointwise()
        stat: dict[Any, Any] = dict(processed.stat)
        b = batch_size if self._can_batch() else 1
        input_axes, output_axes = self._input_axes, self._output_axes

        # once a full batch ran, a short last batch is filled up with copies of its last block so
        # that the model sees one input shape only (no retracing or re-tuning for a new shape)
        fill_to = b if n_blocks > b else 1

        def prepare(batch: list[SampleBlock]) -> tuple[list[SampleBlock], dict[str, Array], int]:
            parts = [sample_block_data(members, sb, paddings) for sb in batch]
            parts += [parts[-1]] * (max(fill_to, len(parts)) - len(parts))
            if len(parts) == 1:
                return batch, parts[0], 1
            arrays = {
                m: np.concatenate([p[m] for p in parts], axis=input_axes[m].index("batch"))
                for m in parts[0]
            }
            return batch, arrays, len(parts)

        done = 0
        mapper: OutputBlockMapper | None = None  # built once all output sizes are known
        policy = PrefetchPolicy()
        batches = prefetched(map(prepare, batched(blocks, b)), policy)
        try:
            for batch, arrays, n_stacked in batches:
                wall, cpu = time.perf_counter(), time.process_time()
                results = self._forward(adapter, arrays, n_stacked, len(batch))
                policy.observe_call(time.perf_counter() - wall, time.process_time() - cpu)
                for sb, raw in zip(batch, results, strict=True):
                    absent = [oid for oid in self._output_ids if oid not in raw]
                    if absent:
                        raise PluginError(
                            f"the {self.weights_format} model returned no output(s) {absent} "
                            f"(it returned {sorted(raw)})"
                        )
                    pieces = {oid: np.asarray(raw[oid]) for oid in self._output_ids}
                    if any(v is None for v in out_sizes.values()):
                        out_sizes = dict(
                            fill_data_dependent_sizes(
                                self.io_shape, out_sizes, {o: p.shape for o, p in pieces.items()}
                            )
                        )
                    if mapper is None:
                        mapper = OutputBlockMapper(self.io_shape, out_sizes)
                    out_blocks = mapper(sb)
                    # only the inner region of each output block is kept: crop before
                    # postprocessing so that pointwise ops skip the halo
                    pieces = {oid: self._inner(oid, p, out_blocks[oid]) for oid, p in pieces.items()}
                    if post_per_block:
                        pieces = {
                            oid: t.data
                            for oid, t in apply_ops(
                                self.postprocessing,
                                {oid: Tensor(p, output_axes[oid]) for oid, p in pieces.items()},
                                stat,
                            ).items()
                            if oid in pieces
                        }
                    for oid, piece in pieces.items():
                        if oid not in targets:
                            shape = tuple(int(out_sizes[(oid, a)] or 0) for a in output_axes[oid])
                            targets[oid] = (
                                np.empty(shape, dtype=piece.dtype)
                                if factory is None or oid in self._reshaped
                                else factory(oid, shape, piece.dtype)
                            )
                        targets[oid][out_blocks[oid].inner_slices] = piece
                done += len(batch)
                if on_progress is not None:
                    on_progress(done, n_blocks)
        finally:
            batches.close()  # stops the prefetching thread

        result = Sample(
            members={oid: _as_tensor(targets[oid], output_axes[oid]) for oid in self._output_ids},
            stat=stat,
            id=sample.id,
        )
        if skip_postprocessing or post_per_block:
            return result
        post = self._postprocess(result)
        if outputs is None:
            return post
        for oid, tensor in post.members.items():  # write the result into the caller's arrays
            if oid in self._reshaped:
                targets[oid] = (
                    outputs(oid, tensor.shape, tensor.dtype) if callable(outputs) else outputs[oid]
                )
            target = targets[oid]
            if tensor.data is not target:
                target[...] = tensor.data
        return Sample(
            members={oid: _as_tensor(targets[oid], output_axes[oid]) for oid in self._output_ids},
            stat=post.stat,
            id=post.id,
        )

    def _inner(self, output_id: str, data: Array, block: Any) -> Array:
        """The inner region of a raw output block; a clear error when the shape is wrong."""
        try:
            return inner_data(data, block)
        except ShapeError as e:
            reason = ""
            if output_id in self._reshaped:
                steps = [
                    op.spec.id
                    for op in self.postprocessing
                    if op.target.member_id == output_id and op.spec.input_axes is not None
                ]
                reason = f" (the input of its postprocessing {', '.join(steps)})"
            raise PluginError(
                f"the {self.weights_format} model returned output {output_id!r} with shape "
                f"{tuple(data.shape)}, expected {block.shape}{reason}: {e.message}",
                hint="check the output's axes in the description (and the kwargs of its "
                "postprocessing) against what the model returns",
            ) from None

    def _paddings(
        self, raw: Sample, stat: Mapping[Any, Any], skip_preprocessing: bool
    ) -> dict[str, Padding]:
        """How each input is padded for this sample (constant values in preprocessed units)."""
        if skip_preprocessing or not any(
            p.mode == "constant" for p in self.input_paddings.values()
        ):
            return dict(self.input_paddings)
        return preprocessed_paddings(
            self.input_paddings,
            raw.members,
            self.preprocessing,
            stat,
            {t.id: tuple(a.type for a in t.axes) for t in self.shape.inputs},
        )

    def postprocessing_is_pointwise(self) -> bool:
        """Whether postprocessing may run block by block (before stitching) with equal results.

        True when no step needs statistics and every step works element by element, or along an
        axis that blocking never splits (e.g. ``softmax`` over channels). Then the stitched
        output is never held a second time in memory.
        """
        if self.post_stats.sample_measures or self.post_stats.dataset_measures:
            return False
        for op in self.postprocessing:
            if op.spec.id not in POINTWISE_OPS or op.required_measures:
                return False
            axis = getattr(op.kwargs, "axis", None)
            if axis is not None:
                tensor = self.shape.tensor(op.target.member_id)
                if str(axis) not in tensor.axis_ids or tensor.axis(str(axis)).splittable:
                    return False
        return True

    def _wrap_outputs(self, raw: Mapping[str, Array]) -> dict[str, Tensor]:
        return {t.id: Tensor(np.asarray(raw[t.id]), t.axis_ids) for t in self.io_shape.outputs}


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


def _all_feeds(upstreams: Sequence[Upstream]) -> Iterator[str]:
    """Ids of inputs fed by upstream models, at every level of a chain."""
    for u in upstreams:
        yield from u.feeds
        yield from _all_feeds(u.upstreams)


def _whole(pipeline: PredictionPipeline, sample: Sample) -> Sample:
    return pipeline.predict_sample_without_blocking(sample)


def _check_chain_inputs(members: Mapping[str, Any], upstreams: Sequence[Upstream]) -> None:
    """Raise :class:`InputError` when a fed input is missing and so are inputs its upstream needs."""
    for u in upstreams:
        if all(f in members for f in u.feeds):
            continue
        fed_below = {f for v in u.upstreams for f in v.feeds}
        missing = [
            str(t.id)
            for t in u.model.inputs
            if not getattr(t, "optional", False)
            and str(t.id) not in members
            and str(t.id) not in fed_below
        ]
        if missing:
            raise InputError(
                f"missing input(s) {missing} of the model {u.reference!r}, which computes "
                f"{', '.join(repr(f) for f in u.feeds)} (output_of)",
                hint=f"give {missing}, or give {', '.join(repr(f) for f in u.feeds)} directly",
            )
        _check_chain_inputs(members, u.upstreams)


def _flat(shape: Mapping[str, Mapping[str, int]]) -> dict[TensorAxis, int]:
    return {(m, a): s for m, axes in shape.items() for a, s in axes.items()}


def _batch_piece(data: Array, axes: tuple[str, ...], i: int, n: int) -> Array:
    """The part of a batched output that belongs to block ``i`` of ``n``."""
    if n == 1:
        return data
    axis = axes.index("batch")
    step = data.shape[axis] // n
    index: list[slice] = [slice(None)] * data.ndim
    index[axis] = slice(i * step, (i + 1) * step)
    return data[tuple(index)]


def _as_tensor(array: Any, axes: tuple[str, ...]) -> Tensor:
    return Tensor(array if isinstance(array, np.ndarray) else np.asarray(array), axes)


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
    from bioimageio_core.chain import resolve_upstreams

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
    )


def as_model_description(model: Any) -> ModelDescr:
    """``model`` if it is a ``ModelDescr``, else the model ``load_description(model)`` loads.

    Referenced files are not checked here: each is fetched and checked when it is used, so a
    model whose other weight formats are unreachable still runs.
    """
    from bioimageio_core.spec import ModelDescr

    if isinstance(model, ModelDescr):
        return model
    from bioimageio_core.loading import load_description

    # files are fetched (and their sha256 checked) when used: only the chosen weight format's
    descr = load_description(model, perform_io_checks=False)
    if not isinstance(descr, ModelDescr):
        raise InputError(
            f"{model!r} describes a {getattr(descr, 'type', type(descr).__name__)}, not a model",
            hint="give the description of a model",
        )
    return descr


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


def create_model_adapter(
    model_description: Any,
    *,
    devices: Sequence[str] | None = None,
    weights_format: str | None = None,
    weight_format_priority_order: Sequence[str] | None = None,
    weight_format: str | None = None,
) -> ModelAdapter:
    """Load the model for inference with its best usable weight format (or ``weights_format``).

    ``model_description``: a model description or any source ``load_description`` accepts.
    ``weight_format_priority_order``: formats to try in this order (the first that loads
    wins) instead of the plugins' priorities. Returns the adapter: ``forward({input id: array})``
    gives ``{output id: array}``; ``unload()`` frees it. :func:`load_model_adapter` also says
    which format was chosen.

    Raises:
        UnsupportedWeightFormatError: no weight format the model provides can run here.
        CodeRefusedError: the chosen format (or the only one tried) would run code that is not
            allowed (:mod:`bioimageio_core.consent`).
        PluginError: loading failed (for every format tried).
    """
    descr = as_model_description(model_description)
    weights_format = weights_format_keyword(weights_format, weight_format)
    if weights_format is not None or not weight_format_priority_order:
        return load_model_adapter(descr, weights_format=weights_format, devices=devices)[0]
    present = [f for f in weight_format_priority_order if f in descr.weights.available_formats]
    if not present:
        from bioimageio_core.errors import UnsupportedWeightFormatError

        raise UnsupportedWeightFormatError(
            f"the model has none of the weight formats {list(weight_format_priority_order)} "
            f"(it has {list(descr.weights.available_formats)})"
        )
    from bioimageio_core.errors import CodeRefusedError

    failures: list[str] = []
    refusals: list[CodeRefusedError] = []
    for wf in present:
        try:
            return load_model_adapter(descr, weights_format=wf, devices=devices)[0]
        except CodeRefusedError as e:  # the next format may need no code
            refusals.append(e)
            failures.append(f"{wf}: {type(e).__name__}: {e.message}")
        except PluginError as e:
            failures.append(f"{wf}: {e.message}")
    if len(failures) == len(refusals) == 1:
        raise refusals[0]
    detail = "\n    ".join(failures)
    raise PluginError(
        f"could not load the model with any weight format:\n    {detail}",
        hint=refusals[0].hint if refusals else None,
    )


def load_model_adapter(
    descr: ModelDescr,
    *,
    weights_format: str | None = None,
    devices: Sequence[str] | None = None,
    server: str | None = None,
    source: object = None,
) -> tuple[ModelAdapter, str]:
    """Load the model with the chosen (or best usable) weight format; returns adapter and format.

    Without ``weights_format``, a format whose loading fails is reported and the next usable one
    is tried; so is a format whose code is refused (a model with ``torchscript`` next to a remote
    ``pytorch_state_dict`` runs the ``torchscript`` weights). With ``server`` (a URL), the server
    loads the model and the ``remote`` adapter sends it each forward call; ``source`` is what
    the user named the model by (a URL or id is fetched by the server, anything else is
    uploaded).

    Raises:
        UnsupportedWeightFormatError: no weight format the model provides can run here (or on
            the server).
        CodeRefusedError: the chosen format (or the only one tried) would run code that is not
            allowed (:mod:`bioimageio_core.consent`); not wrapped.
        PluginError: loading failed (for every format tried).
        ServerError: the server cannot be reached or refused the request.
    """
    if server is not None:
        from bioimageio_core.remote import create_remote_adapter

        remote = create_remote_adapter(
            descr, server, weights_format=weights_format, devices=devices, source=source
        )
        return remote, remote.weights_format
    from bioimageio_core.adapters import AdapterRequest
    from bioimageio_core.errors import CodeRefusedError, UnsupportedWeightFormatError
    from bioimageio_core.plugins import choose_weight_format
    from bioimageio_core.settings import get_settings
    from bioimageio_core.sources import FolderRoot, open_file
    from bioimageio_core.spec import UnknownWeightsDescr, structure

    root = getattr(descr, "root", None) or FolderRoot(_cwd())
    present = list(descr.weights.available_formats)
    failures: dict[str, str] = {}
    refusals: list[CodeRefusedError] = []
    while True:
        remaining = [f for f in present if f not in failures]
        try:
            if not remaining:
                raise UnsupportedWeightFormatError("no weight format left to try")
            wf = choose_weight_format(remaining, weights_format)
        except UnsupportedWeightFormatError as e:
            if not failures:
                raise
            if len(failures) == len(refusals) == 1:
                raise refusals[0] from None
            detail = "\n    ".join(f"{k}: {v}" for k, v in failures.items())
            raise PluginError(
                f"could not load the model with any weight format:\n    {detail}",
                hint=refusals[0].hint if refusals else e.hint,
            ) from None
        entry = descr.weights[wf.name]
        try:
            if isinstance(entry, UnknownWeightsDescr):
                entry = structure(dict(entry.raw), wf.entry_class)
            request = AdapterRequest(
                model=descr,
                weights_format=wf.name,
                weights=entry,
                devices=None if devices is None else tuple(devices),
                open_file=lambda ref, sha: open_file(root, ref, sha),
                settings=get_settings(),
            )
            return wf.create_adapter(request), wf.name
        except CodeRefusedError as e:
            # another format may need no code; if none can run, the refusal is what to act on
            if weights_format is not None:
                raise
            refusals.append(e)
            failures[wf.name] = f"{type(e).__name__}: {e.message}"
        except Exception as e:
            message = f"{type(e).__name__}: {e}"
            if weights_format is not None:
                raise PluginError(
                    f"could not load the {wf.name} weights: {message}", loc=f"weights.{wf.name}"
                ) from e
            failures[wf.name] = message


def _cwd() -> Any:
    from pathlib import Path

    return Path.cwd()


__all__ = [
    "DEFAULT_BLOCKSIZE_PARAMETER",
    "POINTWISE_OPS",
    "OutputArrays",
    "OutputFactory",
    "Outputs",
    "PredictionPipeline",
    "ProgressCallback",
    "as_model_description",
    "create_model_adapter",
    "create_prediction_pipeline",
    "load_model_adapter",
]
