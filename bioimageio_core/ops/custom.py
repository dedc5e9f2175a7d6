"""``custom`` postprocessing: a Python callable shipped with the model (``source`` + ``callable``).

When the pipeline is built, the step's code may run only with the project's consent check
(:func:`bioimageio_core.consent.require_code_consent`: code of a local model runs, code fetched
from a URL needs ``BIOIMAGEIO_ALLOW_REMOTE_CODE=1`` / ``--allow-remote-code``); then the file is
fetched (``sha256`` checked when given), executed as a fresh module, and ``callable(**kwargs)``
is called once: a class gives an instance with ``__call__``, a factory gives its function.

Each application calls it with **one** array: the output tensor's data after the earlier
postprocessing steps, the whole stitched sample (batch included), axes in the described order.
It must return an array of the same shape; the dtype may change (the format's trailing
``ensure_dtype`` casts to the described data type). The step runs on the stitched output, never
per tile, so a callable that looks at neighbourhoods gives the same result tiled or not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import numpy as np

from bioimageio_core.consent import exec_code_file
from bioimageio_core.errors import BioimageioError, PluginError
from bioimageio_core.hookspecs import OpContext, OpTarget
from bioimageio_core.ops.elementwise import _member
from bioimageio_core.stats import Measure, MeasureValue
from bioimageio_core.tensor import Tensor

OP_ID = "custom"


@attrs.frozen(eq=False)
class PreparedCustom:
    """The callable a ``custom`` step made, and where it came from (for messages)."""

    function: Callable[[np.ndarray[Any, Any]], Any]
    origin: str
    loc: str


def prepare_custom(kwargs: Any, target: OpTarget, context: OpContext) -> PreparedCustom:
    """Consent, fetch, import, ``callable(**kwargs)`` (see the module docstring)."""
    source, name = str(kwargs.source), str(kwargs.callable)
    origin = f"{source}:{name}"
    context.require_code_consent(
        f"the custom postprocessing code {origin} of output {target.member_id!r}", reference=source
    )
    try:
        path = context.open_file(source, kwargs.sha256)
    except BioimageioError as e:
        if e.loc is None:
            e.loc = f"{context.loc}.source"
        raise
    module = import_code_file(path, source, loc=f"{context.loc}.source")
    factory = getattr(module, name, None)
    if factory is None or not callable(factory):
        public = sorted(n for n, v in vars(module).items() if not n.startswith("_") and callable(v))
        raise PluginError(
            f"{source} has no callable {name!r}; callables defined there: {public}",
            loc=f"{context.loc}.callable",
        )
    arguments = dict(kwargs.kwargs or {})
    try:
        function = factory(**arguments)
    except Exception as e:
        raise PluginError(
            f"calling {origin}(**{arguments!r}) failed: {type(e).__name__}: {e}",
            loc=f"{context.loc}.kwargs",
        ) from e
    if not callable(function):
        raise PluginError(
            f"{origin}(**kwargs) returned a {type(function).__name__}, which is not callable",
            loc=f"{context.loc}.callable",
            hint="the callable must be a class with __call__ or a function that returns one",
        )
    return PreparedCustom(function, origin, context.loc)


def custom(
    prepared: PreparedCustom,
    target: OpTarget,
    members: Mapping[str, Tensor],
    stat: Mapping[Measure, MeasureValue],
) -> Tensor:
    """``function(data)`` for the target tensor's data (whole sample, described axis order)."""
    x = _member(target, members)
    try:
        result = prepared.function(x.data)
    except Exception as e:
        raise PluginError(
            f"the custom postprocessing {prepared.origin} failed on output {target.member_id!r}: "
            f"{type(e).__name__}: {e}",
            loc=prepared.loc,
        ) from e
    array = np.asarray(result)
    if array.shape != x.shape:
        raise PluginError(
            f"the custom postprocessing {prepared.origin} returned shape {array.shape} for "
            f"output {target.member_id!r} of shape {x.shape} ({', '.join(x.dims)}); it must keep "
            "the shape",
            loc=prepared.loc,
        )
    return Tensor(array, x.dims)


def import_code_file(path: Path, source: str, *, loc: str | None = None) -> ModuleType:
    """Execute the Python file at ``path`` as a fresh module with a unique name
    (:func:`~bioimageio_core.consent.exec_code_file`); a failure is a :class:`PluginError`."""
    try:
        return exec_code_file(path, source)
    except Exception as e:
        raise PluginError(
            f"executing {source} failed: {type(e).__name__}: {e}",
            loc=loc,
            hint="the file may need a package that is not installed here",
        ) from e
