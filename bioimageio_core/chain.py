"""Model chaining at run time: inputs fed by another model's output (``inputs[i].output_of``).

A model whose input ``mask`` says ``output_of: <upstream>`` is the downstream end of a chain: the
upstream model (read relative to the downstream description, like any source: a file or folder
next to it, a URL, an id) computes ``mask`` from its own inputs. A prediction pipeline of the
downstream model runs each upstream model first, but only when the sample lacks one of the inputs
that upstream feeds (a sample that has them, e.g. the downstream's own test inputs, is used as
it is); the upstream's outputs are added to the sample, the sample's other inputs are kept, and
the downstream model runs on the result. Chains of chains work the same way, one level at a time.

The inputs a chain takes (:func:`chain_inputs`) are the downstream's own inputs and every
upstream's inputs (an id shared by both is given once and fed to both). Upstream descriptions are
read when the pipeline is built; their weights are loaded the first time they are needed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from bioimageio_core.errors import InputError, ValidationError, loc_to_path
from bioimageio_core.loading import as_model_description, upstream_source
from bioimageio_core.sample import Sample
from bioimageio_core.shapes import TensorShape, model_shape
from bioimageio_core.spec.chaining import upstream_references

if TYPE_CHECKING:
    from bioimageio_core.pipeline import PredictionPipeline
    from bioimageio_core.spec import ModelDescr

MAX_CHAIN_LENGTH = 16


@attrs.define(eq=False)
class Upstream:
    """One model whose outputs feed inputs of a downstream model."""

    reference: str
    """The ``output_of`` value as written in the downstream description."""
    source: str
    """Where the upstream description was read from (path or URL)."""
    model: ModelDescr
    feeds: tuple[str, ...]
    """Ids of the downstream inputs this model's outputs feed (its output ids)."""
    upstreams: tuple[Upstream, ...]
    """This model's own upstream models."""
    make_pipeline: Callable[[Upstream], PredictionPipeline] = attrs.field(repr=False)
    _pipeline: PredictionPipeline | None = attrs.field(default=None, init=False, repr=False)

    def pipeline(self) -> PredictionPipeline:
        """The upstream's prediction pipeline, created (weights loaded) on first use."""
        if self._pipeline is None:
            self._pipeline = self.make_pipeline(self)
        return self._pipeline

    def unload(self) -> None:
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            pipeline.unload()


def resolve_upstreams(
    model: ModelDescr,
    make_pipeline: Callable[[Upstream], PredictionPipeline],
    chain: tuple[str, ...] = (),
) -> tuple[Upstream, ...]:
    """The upstream models of ``model`` (one per distinct ``output_of``, in input order), each
    with its own upstream models; descriptions only, no weights.

    ``make_pipeline(upstream)`` builds an upstream's pipeline when it is first needed.

    Raises:
        ValidationError: an upstream description is invalid.
        InputError: the chain is circular, too long, or an upstream lacks the output it feeds.
    """
    references = upstream_references(model)
    if references and len(chain) >= MAX_CHAIN_LENGTH:
        raise InputError(
            f"the chain of models (output_of) is longer than {MAX_CHAIN_LENGTH}: "
            + " -> ".join(chain)
        )
    upstreams = []
    for reference, indices in references.items():
        source = str(upstream_source(getattr(model, "root", None), reference))
        locs = ", ".join(loc_to_path(("inputs", i, "output_of")) for i in indices)
        if source in chain:
            raise InputError(
                f"the models form a cycle through output_of: {' -> '.join((*chain, source))}",
                loc=locs,
            )
        try:
            upstream = as_model_description(upstream_source(getattr(model, "root", None), reference))
        except ValidationError as e:
            raise ValidationError(
                e.summary, f"the model {reference!r} named at {locs} is invalid: {e.message}"
            ) from None
        feeds = tuple(str(model.inputs[i].id) for i in indices)
        outputs = {str(o.id) for o in upstream.outputs}
        lacking = [f for f in feeds if f not in outputs]
        if lacking:
            raise InputError(
                f"the model {reference!r} ({locs}) has no output(s) {lacking}; its outputs are "
                f"{sorted(outputs)}",
                loc=locs,
            )
        nested = resolve_upstreams(upstream, make_pipeline, (*chain, source))
        upstreams.append(Upstream(reference, source, upstream, feeds, nested, make_pipeline))
    return tuple(upstreams)


def chain_input_specs(
    model_spec: Any, upstreams: Sequence[Upstream]
) -> tuple[list[TensorShape], set[str]]:
    """The inputs a chain takes: the downstream's, then each upstream's inputs not named yet
    (recursively); and the ids among them that may be missing (fed inputs, and inputs only
    upstreams need: whether those are needed depends on the fed inputs)."""
    specs = list(model_spec.inputs)
    known = {t.id for t in specs}
    maybe_missing: set[str] = set()

    def walk(level: Sequence[Upstream]) -> None:
        for u in level:
            maybe_missing.update(u.feeds)
            for t in model_shape(u.model).inputs:
                if t.id not in known:
                    specs.append(t)
                    known.add(t.id)
                    maybe_missing.add(t.id)
            walk(u.upstreams)

    walk(upstreams)
    return specs, maybe_missing


def chain_inputs(model: ModelDescr) -> tuple[list[str], list[str]]:
    """The inputs a user gives a chained model: ids of the inputs of the whole chain that no model
    of it computes (downstream's first), and those of them that may be left out. Reads the
    upstream descriptions (no weights). For a model without ``output_of``: its inputs and its
    optional inputs."""
    upstreams = resolve_upstreams(model, _no_pipeline)
    fed: set[str] = set()
    ids: list[str] = []
    optional: list[str] = []

    def walk(descr: ModelDescr, level: Sequence[Upstream]) -> None:
        fed.update(f for u in level for f in u.feeds)
        for t in descr.inputs:
            tid = str(t.id)
            if tid in fed or tid in ids:
                continue
            ids.append(tid)
            if getattr(t, "optional", False):
                optional.append(tid)
        for u in level:
            walk(u.model, u.upstreams)

    walk(model, upstreams)
    return ids, optional


def fed_ids(upstreams: Sequence[Upstream]) -> frozenset[str]:
    """Ids of the inputs the ``upstreams`` (one level) feed."""
    return frozenset(f for u in upstreams for f in u.feeds)


def _all_feeds(upstreams: Sequence[Upstream]) -> Iterator[str]:
    """Ids of inputs fed by upstream models, at every level of a chain."""
    for u in upstreams:
        yield from u.feeds
        yield from _all_feeds(u.upstreams)


def upstream_leaves(
    ids: Sequence[str],
    maybe_missing: set[str],
    optional: Sequence[str],
    upstreams: Sequence[Upstream],
) -> list[str]:
    """The inputs of a chain that one value given for a chained model can be: the required
    ones, else those no model of the chain computes."""
    required = [i for i in ids if i not in maybe_missing and i not in optional]
    fed_anywhere = set(_all_feeds(upstreams))
    return required or [i for i in ids if i not in fed_anywhere]


def check_chain_inputs(members: Mapping[str, Any], upstreams: Sequence[Upstream]) -> None:
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
        check_chain_inputs(members, u.upstreams)


def run_chained(
    pipeline: PredictionPipeline,
    sample: Sample,
    run_upstream: Callable[[PredictionPipeline, Sample], Sample],
    predict_own: Callable[[Sample], Sample],
) -> Sample:
    """Run the upstream models whose fed inputs the digested ``sample`` lacks (each with
    ``run_upstream(upstream pipeline, its inputs)``), then ``predict_own`` on the pipeline's own
    inputs: the sample's other members are kept, the fed ones added (and digested for the
    downstream model). With ``include_upstream_outputs`` the upstream outputs are returned too."""
    members = dict(sample.members)
    extra: dict[str, Any] = {}
    for upstream in pipeline.upstreams:
        if all(f in members for f in upstream.feeds):
            continue
        upstream_pipeline = upstream.pipeline()
        wanted = set(upstream_pipeline.input_ids)
        result = run_upstream(
            upstream_pipeline,
            Sample(members={k: v for k, v in members.items() if k in wanted}, id=sample.id),
        )
        for f in upstream.feeds:
            members[f] = result.members[f]
        extra.update(result.members)
    own_ids = {t.id for t in pipeline.shape.inputs}
    own = Sample(
        members={k: v for k, v in members.items() if k in own_ids}, stat=sample.stat, id=sample.id
    )
    out = predict_own(pipeline.digest(own))
    if not pipeline.include_upstream_outputs:
        return out
    kept = {k: v for k, v in extra.items() if k not in out.members}
    return Sample(members={**kept, **out.members}, stat=out.stat, id=out.id)


def _no_pipeline(upstream: Upstream) -> PredictionPipeline:  # pragma: no cover - never called
    raise AssertionError("chain_inputs reads descriptions only")


__all__ = [
    "MAX_CHAIN_LENGTH",
    "Upstream",
    "chain_input_specs",
    "chain_inputs",
    "check_chain_inputs",
    "fed_ids",
    "resolve_upstreams",
    "run_chained",
    "upstream_leaves",
]
