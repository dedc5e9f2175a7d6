"""Model chaining: an input fed by another model's output (``inputs[i].output_of``).

The referenced (upstream) model must have an output with the input's tensor id. Checking that
needs the upstream description, so the check takes a *loader* callback: the spec package does no
IO, the caller decides where descriptions come from (files, URLs, ids, the cache).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from bioimageio_core.spec.build import SpecExtensions, build_description
from bioimageio_core.spec.issues import Issue, Loc
from bioimageio_core.spec.model import ModelDescr

UpstreamLoader = Callable[[str], Mapping[str, Any]]
"""``reference -> raw description`` of the model an ``output_of`` names; raises when it cannot."""


def upstream_references(model: ModelDescr) -> dict[str, list[int]]:
    """``output_of`` references of ``model`` -> indices of the inputs naming them (file order)."""
    out: dict[str, list[int]] = {}
    for i, t in enumerate(model.inputs):
        if t.output_of is not None:
            out.setdefault(t.output_of, []).append(i)
    return out


def check_output_of(
    model: ModelDescr,
    load: UpstreamLoader,
    *,
    extensions: SpecExtensions | None = None,
) -> list[Issue]:
    """Errors for ``output_of`` references that cannot be read, are no valid model, or lack an
    output named like the input. Each reference is loaded once; nothing else is checked about it
    (its own ``output_of`` references and files are not followed)."""
    return list(_iter_issues(model, load, extensions))


def _iter_issues(
    model: ModelDescr, load: UpstreamLoader, extensions: SpecExtensions | None
) -> Iterator[Issue]:
    for reference, indices in upstream_references(model).items():
        locs: list[Loc] = [("inputs", i, "output_of") for i in indices]
        try:
            raw = load(reference)
        except Exception as e:  # the loader's errors are the user's problem to fix, not ours
            for loc in locs:
                yield Issue(
                    loc,
                    f"cannot read the model {reference!r} this input is the output of: {_text(e)}",
                    type="output_of_unavailable",
                )
            continue
        result = build_description(raw, extensions=extensions)
        upstream = result.descr
        if not isinstance(upstream, ModelDescr):
            why = (
                f"its type is {raw.get('type')!r}"
                if upstream is not None
                else f"it is invalid ({result.errors[0] if result.errors else 'no details'})"
            )
            for loc in locs:
                yield Issue(
                    loc,
                    f"{reference!r} (named by 'output_of') is not a usable model description: {why}",
                    type="output_of_invalid",
                )
            continue
        output_ids = [o.id for o in upstream.outputs]
        for i, loc in zip(indices, locs, strict=True):
            input_id = model.inputs[i].id
            if input_id not in output_ids:
                yield Issue(
                    loc,
                    f"model {reference!r} has no output {input_id!r} (its outputs: "
                    f"{', '.join(output_ids)}); an input fed by another model must have the id "
                    "of that model's output",
                    type="output_of_mismatch",
                )


def _text(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__
