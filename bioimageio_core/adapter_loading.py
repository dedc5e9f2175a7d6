"""Loading a model's weights for inference: the weight format chosen among the plugins'.

A format whose loading fails (or whose code is refused) is reported and the next usable one is
tried, unless the user named the format; with a server URL the ``remote`` adapter runs the
forward calls there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bioimageio_core._compat import weights_format_keyword
from bioimageio_core.adapters import AdapterRequest
from bioimageio_core.errors import CodeRefusedError, PluginError, UnsupportedWeightFormatError
from bioimageio_core.loading import as_model_description
from bioimageio_core.plugins import choose_weight_format
from bioimageio_core.remote import create_remote_adapter
from bioimageio_core.settings import get_settings
from bioimageio_core.sources import open_file, root_of
from bioimageio_core.spec import UnknownWeightsDescr, structure

if TYPE_CHECKING:
    from bioimageio_core.adapters import ModelAdapter
    from bioimageio_core.spec import ModelDescr


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
        raise UnsupportedWeightFormatError(
            f"the model has none of the weight formats {list(weight_format_priority_order)} "
            f"(it has {list(descr.weights.available_formats)})"
        )
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
        remote = create_remote_adapter(
            descr, server, weights_format=weights_format, devices=devices, source=source
        )
        return remote, remote.weights_format
    root = root_of(descr)
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
                    f"could not load the {wf.name} weights: {message}", loc=("weights", wf.name)
                ) from e
            failures[wf.name] = message


__all__ = ["create_model_adapter", "load_model_adapter"]
