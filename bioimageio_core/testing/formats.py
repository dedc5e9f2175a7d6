"""Which weight formats a test runs here (or on a server) and why the others cannot run."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from bioimageio_core import plugins
from bioimageio_core.remote import ServerInfo
from bioimageio_core.spec import ModelDescr


@attrs.frozen
class FormatPlan:
    """Which formats run and why the others do not."""

    run: tuple[str, ...]
    skipped: Mapping[str, str]
    """Format → why it cannot run here (with what to install)."""


def plan_weight_formats(
    model: ModelDescr, weights_format: str | None = None, server: ServerInfo | None = None
) -> FormatPlan:
    """The present formats that can run here (or on ``server``; or the chosen one) and reasons
    for the others."""
    present = list(model.weights.available_formats)
    specs = plugins.weight_formats()
    wanted = present if weights_format is None else [weights_format]
    run: list[str] = []
    skipped: dict[str, str] = {}
    for wf in wanted:
        if wf not in present:
            skipped[wf] = f"the model has no {wf} weights (it has {', '.join(present)})"
            continue
        if server is not None:
            remote = server.weight_formats.get(wf)
            if remote is None or remote.reason is not None:
                why = "no plugin there provides it" if remote is None else remote.reason
                hint = (
                    remote.install_hint
                    if remote is not None and remote.install_hint
                    else plugins.install_hint_for(wf)
                )
                skipped[wf] = (
                    f"the server at {server.url} cannot run {wf} weights: {why}; to test them "
                    f"there: {hint}"
                )
            else:
                run.append(wf)
            continue
        spec = specs.get(wf)
        if spec is None:
            hint = plugins.install_hint_for(wf)
            skipped[wf] = f"no installed plugin runs {wf} weights; to test them: {hint}"
            continue
        reason = plugins.unavailable_reason(spec)
        if reason is not None:
            hint = f"; to test them: {spec.install_hint}" if spec.install_hint else ""
            skipped[wf] = f"{wf} weights cannot run here: {reason}{hint}"
            continue
        run.append(wf)
    return FormatPlan(tuple(run), skipped)
