"""From a tensor's processing steps to bound ops, their statistics, and their application.

Semantics copied from bioimageio.core (numbers depend on them):

* statistics are computed on the **raw** sample, before any processing step (:func:`process`
  computes them first, then applies every op);
* ``axes: null`` for ``zero_mean_unit_variance``, ``scale_range`` and ``clip`` percentiles means
  running **dataset** statistics over every sample a pipeline processes. Pass
  ``axes_none_scope="sample"`` to :func:`build_ops` for per-sample statistics instead.

The ``ensure_dtype`` steps the format adds at the start and end of processing are inserted by
:mod:`bioimageio_core.spec` when a description is built; nothing is inserted here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol

import attrs

from bioimageio_core.errors import Loc, PluginError, loc_to_path
from bioimageio_core.hookspecs import OpContext, OpSpec, OpTarget
from bioimageio_core.plugins import processing_ops, unavailable_reason
from bioimageio_core.settings import get_settings
from bioimageio_core.shapes import TensorShape
from bioimageio_core.sources import open_file, root_of, root_or_cwd
from bioimageio_core.stats import Measure, MeasureValue
from bioimageio_core.tensor import Tensor


class StepLike(Protocol):
    """A processing step as in a description: ``id`` and ``kwargs``."""

    @property
    def id(self) -> str: ...

    @property
    def kwargs(self) -> Any: ...


@attrs.frozen
class BoundOp:
    """One processing step bound to its op and to the tensor it processes.

    ``prepared`` is what the op's ``prepare`` returned (None for ops without one); ``apply``
    receives it instead of ``kwargs``.
    """

    spec: OpSpec
    kwargs: Any
    target: OpTarget
    prepared: Any = None

    @property
    def required_measures(self) -> frozenset[Measure]:
        return frozenset(self.spec.required_measures(self.kwargs, self.target))

    def __call__(self, members: Mapping[str, Tensor], stat: Mapping[Measure, MeasureValue]) -> Tensor:
        arguments = self.prepared if self.spec.prepare is not None else self.kwargs
        return self.spec.apply(arguments, self.target, members, stat)

    def input_axes(self, described: TensorShape) -> TensorShape:
        """The axes this op reads for an output it turns into ``described`` (see
        ``OpSpec.input_axes``)."""
        if self.spec.input_axes is None:
            return described
        return self.spec.input_axes(self.kwargs, described)


def build_ops(
    member_id: str,
    steps: Sequence[StepLike],
    *,
    ops: Mapping[str, OpSpec] | None = None,
    axes_none_scope: Literal["dataset", "sample"] = "dataset",
    loc: Loc | None = None,
    context: Callable[[str], OpContext] | None = None,
) -> list[BoundOp]:
    """Bind the processing ``steps`` of tensor ``member_id`` to registered ops.

    ``ops`` defaults to :func:`bioimageio_core.plugins.processing_ops`. ``loc`` (e.g.
    ``("inputs", 0, "preprocessing")``) is used in error messages. ``context(step_loc)`` gives ops
    with a ``prepare`` their model context (default: no model, files relative to the current
    folder).

    Raises:
        PluginError: a step's id has no registered op, or its op cannot run here.
        BioimageioError: preparing a step failed (e.g. its code may not run here).
    """
    if ops is None:
        ops = processing_ops()
    target = OpTarget(member_id=member_id, axes_none_scope=axes_none_scope)
    bound = []
    for i, step in enumerate(steps):
        where = loc_to_path((*loc, i)) if loc is not None else f"step {i} of {member_id!r}"
        spec = ops.get(str(step.id))
        if spec is None:
            raise PluginError(
                f"no installed plugin provides processing op {step.id!r}",
                loc=where,
                hint="install the plugin that provides it; `bioimageio-run plugins` lists the ops "
                f"available here: {', '.join(sorted(ops))}",
            )
        reason = unavailable_reason(spec)
        if reason is not None:
            raise PluginError(
                f"processing op {step.id!r} cannot run here: {reason}",
                loc=where,
                hint=spec.install_hint or None,
            )
        prepared = None
        if spec.prepare is not None:
            make = context or _standalone_context
            prepared = spec.prepare(step.kwargs, target, make(where))
        bound.append(BoundOp(spec, step.kwargs, target, prepared))
    return bound


def _standalone_context(loc: str) -> OpContext:
    root = root_or_cwd(None)
    return OpContext(
        model=None,
        loc=loc,
        open_file=lambda reference, sha256: open_file(root, reference, sha256),
        settings=get_settings(),
    )


def model_op_context(model: Any) -> Callable[[str], OpContext]:
    """Contexts for the steps of ``model``: its files resolve against ``model.root``."""
    root = root_of(model)
    settings = get_settings()

    def context(loc: str) -> OpContext:
        return OpContext(
            model=model,
            loc=loc,
            open_file=lambda reference, sha256: open_file(root, reference, sha256),
            settings=settings,
        )

    return context


def build_model_ops(
    model: Any,
    which: Literal["pre", "post"],
    *,
    ops: Mapping[str, OpSpec] | None = None,
    axes_none_scope: Literal["dataset", "sample"] = "dataset",
) -> list[BoundOp]:
    """One flat op list for all inputs (``"pre"``) or all outputs (``"post"``), in tensor order.

    ``model`` is a 0.5 ``ModelDescr`` (0.4 descriptions are converted when built, including the
    ``ensure_dtype`` steps the format adds).
    """
    tensors, field = (model.inputs, "preprocessing") if which == "pre" else (model.outputs, "postprocessing")
    group = "inputs" if which == "pre" else "outputs"
    context = model_op_context(model)
    bound: list[BoundOp] = []
    for i, tensor in enumerate(tensors):
        bound.extend(
            build_ops(
                str(tensor.id),
                tuple(getattr(tensor, field, None) or ()),
                ops=ops,
                axes_none_scope=axes_none_scope,
                loc=(group, i, field),
                context=context,
            )
        )
    return bound


def model_output_axes(described: TensorShape, ops: Sequence[BoundOp]) -> TensorShape:
    """The axes a model returns for an output whose postprocessing ``ops`` end in ``described``:
    walks the ops that change the shape backwards (``OpSpec.input_axes``)."""
    tensor = described
    for op in reversed([o for o in ops if o.target.member_id == described.id]):
        tensor = op.input_axes(tensor)
    return tensor


def required_measures(ops: Iterable[BoundOp]) -> frozenset[Measure]:
    """Union of the statistics every op needs."""
    out: set[Measure] = set()
    for op in ops:
        out |= op.required_measures
    return frozenset(out)


def apply_ops(
    ops: Iterable[BoundOp], members: Mapping[str, Tensor], stat: Mapping[Measure, MeasureValue]
) -> dict[str, Tensor]:
    """Apply ``ops`` in order; each replaces its target member. ``members`` is not modified."""
    current = dict(members)
    for op in ops:
        current[op.target.member_id] = op(current, stat)
    return current
