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

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from bioimageio_core.errors import InputError, ValidationError

if TYPE_CHECKING:
    from bioimageio_core.pipeline import PredictionPipeline
    from bioimageio_core.shapes import TensorShape
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


def upstream_source(root: Any, reference: str) -> Any:
    """The source (path or URL) of the description ``reference`` names, relative to ``root``.

    The same rule validation uses (:func:`bioimageio_core.loading.read_upstream`): an existing
    file or folder next to the description, a ``.yaml`` / ``.zip`` next to a URL description,
    else the reference itself (a path, URL or resource id for the source resolvers).
    """
    from bioimageio_core.sources import FolderRoot, UrlRoot

    if isinstance(root, FolderRoot):
        local = root.path / reference
        if local.exists():
            return local
    elif isinstance(root, UrlRoot) and reference.lower().endswith((".yaml", ".yml", ".zip")):
        return root.join(reference)
    return reference


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
    from bioimageio_core.pipeline import as_model_description
    from bioimageio_core.spec.chaining import upstream_references

    references = upstream_references(model)
    if references and len(chain) >= MAX_CHAIN_LENGTH:
        raise InputError(
            f"the chain of models (output_of) is longer than {MAX_CHAIN_LENGTH}: "
            + " -> ".join(chain)
        )
    upstreams = []
    for reference, indices in references.items():
        source = str(upstream_source(getattr(model, "root", None), reference))
        locs = ", ".join(f"inputs[{i}].output_of" for i in indices)
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
    from bioimageio_core.shapes import model_shape

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


def _no_pipeline(upstream: Upstream) -> PredictionPipeline:  # pragma: no cover - never called
    raise AssertionError("chain_inputs reads descriptions only")


__all__ = [
    "MAX_CHAIN_LENGTH",
    "Upstream",
    "chain_input_specs",
    "chain_inputs",
    "resolve_upstreams",
    "upstream_source",
]
