"""Build the network of a ``pytorch_state_dict`` entry from its ``architecture``.

Two kinds of architecture exist:

* from a file (``source`` + ``sha256`` + ``callable``): a Python file shipped with the model. It is
  fetched through the request's ``open_file`` (which checks ``sha256``), executed as a module with a
  unique name that is removed from ``sys.modules`` again, and ``callable(**kwargs)`` is called.
* from a library (``import_from`` + ``callable``): a callable of a package installed here
  (:func:`bioimageio_core.consent.import_library_callable`: never the standard library or
  builtins).

Both are code execution. Before anything is fetched or imported, the request's
``require_code_consent`` decides: code of a local model the user named runs; code of a fetched
model (or an architecture file referenced by URL) runs only with ``Settings.allow_remote_code``.
A class must be a ``torch.nn.Module`` subclass before it is called, and whatever the callable
returns must be a ``torch.nn.Module``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from bioimageio_core.plugin import (
    BioimageioError,
    CodeRefusedError,
    Loc,
    check_library_object,
    exec_code_file,
    import_library_callable,
    spec,
)
from bioimageio_run_torch._errors import backend_error, locate

if TYPE_CHECKING:
    import torch

    from bioimageio_core.plugin import AdapterRequest, PytorchStateDictWeightsDescr

FORMAT = "pytorch_state_dict"
LOC: Loc = ("weights", FORMAT, "architecture")


def build_architecture(request: AdapterRequest[PytorchStateDictWeightsDescr]) -> torch.nn.Module:
    """Create the (untrained) network the state dict of ``request.weights`` belongs to.

    Raises:
        RemoteCodeError: the model was fetched and remote code is not allowed.
        CodeRefusedError: the architecture names the standard library, or a class that is no
            ``torch.nn.Module``.
        PluginError: the architecture cannot be imported, called, or returns no module.
    """
    import torch

    architecture = request.weights.architecture
    name = str(architecture.callable)
    if isinstance(architecture, spec.ArchitectureFromLibraryDescr):
        origin = f"{architecture.import_from}.{name}"
        request.require_code_consent(
            f"the architecture {origin} (imported and called with the description's kwargs) of "
            f"the {FORMAT} weights",
            loc=(*LOC, "import_from"),
        )
        factory = _callable_from_library(str(architecture.import_from), name)
    else:
        origin = f"{architecture.source}:{name}"
        request.require_code_consent(
            f"the architecture code {origin} of the {FORMAT} weights",
            loc=(*LOC, "source"),
            reference=str(architecture.source),
        )
        factory = _callable_from_file(architecture, request, name)
    if inspect.isclass(factory) and not issubclass(factory, torch.nn.Module):
        raise CodeRefusedError(
            f"refusing to call the architecture {origin}: it is the class "
            f"{factory.__module__}.{factory.__qualname__}, not a torch.nn.Module subclass",
            loc=(*LOC, "callable"),
        )
    kwargs: Mapping[str, Any] = dict(architecture.kwargs or {})
    try:
        network = factory(**kwargs)
    except Exception as error:
        raise backend_error(
            FORMAT,
            origin,
            f"calling the architecture {origin}(**{dict(kwargs)!r}) failed: "
            f"{type(error).__name__}: {error}",
            loc=(*LOC, "kwargs"),
            hint="check the architecture's kwargs in the description",
        ) from error
    if not isinstance(network, torch.nn.Module):
        raise backend_error(
            FORMAT,
            origin,
            f"the architecture {origin} returned a {type(network).__name__}, not a torch.nn.Module",
            loc=(*LOC, "callable"),
        )
    return network


def _callable_from_library(import_from: str, name: str) -> Callable[..., Any]:
    try:
        return import_library_callable(import_from, name, loc=LOC)
    except CodeRefusedError:
        raise
    except BioimageioError as error:
        raise backend_error(
            FORMAT, import_from, error.message, loc=error.loc, hint=error.hint
        ) from error.__cause__


def _callable_from_file(
    architecture: spec.ArchitectureFromFileDescr,
    request: AdapterRequest[PytorchStateDictWeightsDescr],
    name: str,
) -> Callable[..., Any]:
    source = str(architecture.source)
    try:
        path = request.open_file(source, architecture.sha256)
    except BioimageioError as error:
        raise locate(error, LOC) from None
    except OSError as error:
        raise backend_error(
            FORMAT, source, f"the architecture file cannot be read: {error}", loc=(*LOC, "source")
        ) from error
    module = import_file(path, source)
    return _get_callable(module, name, source)


def import_file(path: Path, source: str) -> ModuleType:
    """Execute the architecture file at ``path`` as a fresh module with a unique name
    (:func:`bioimageio_core.plugin.exec_code_file`)."""
    try:
        return exec_code_file(path, source, kind="architecture")
    except Exception as error:
        raise backend_error(
            FORMAT,
            source,
            f"executing the architecture file failed: {type(error).__name__}: {error}",
            loc=(*LOC, "source"),
            hint="the file may need a package that is not installed here",
        ) from error


def _get_callable(module: ModuleType, name: str, origin: str) -> Callable[..., Any]:
    factory = getattr(module, name, None)
    if factory is None or not callable(factory):
        public = sorted(
            n for n in vars(module) if not n.startswith("_") and callable(vars(module)[n])
        )
        raise backend_error(
            FORMAT,
            origin,
            f"{origin} has no callable {name!r}; callables defined there: {public}",
            loc=(*LOC, "callable"),
        )
    check_library_object(factory, label=f"{origin}:{name}", loc=(*LOC, "callable"))
    return factory  # type: ignore[no-any-return]
