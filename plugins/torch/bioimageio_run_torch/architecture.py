"""Build the network of a ``pytorch_state_dict`` entry from its ``architecture``.

Two kinds of architecture exist:

* from a file (``source`` + ``sha256`` + ``callable``): a Python file shipped with the model. It is
  fetched through the request's ``open_file`` (which checks ``sha256``), executed as a module with a
  unique name that is removed from ``sys.modules`` again, and ``callable(**kwargs)`` is called.
* from a library (``import_from`` + ``callable``): ``importlib.import_module(import_from)`` of a
  module installed in this environment.

Running a model's architecture file executes its code. Code from a local file or folder the user
gave runs. Code fetched from a URL (the file's reference is a URL, or the model itself was opened
from a URL) runs only when ``Settings.allow_remote_code`` is true.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import re
import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path, PurePath
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from bioimageio_core.errors import BioimageioError
from bioimageio_run_torch._errors import backend_error, locate

if TYPE_CHECKING:
    import torch

    from bioimageio_core.adapters import AdapterRequest

FORMAT = "pytorch_state_dict"
LOC = "$.weights.pytorch_state_dict.architecture"
ALLOW_REMOTE_CODE_HINT = (
    "if you trust this model's authors, allow it with the environment variable "
    "BIOIMAGEIO_ALLOW_REMOTE_CODE=1 or the command line flag --allow-remote-code; or download the "
    "model, read the architecture file, and run the model from the local folder"
)


def is_url(reference: object) -> bool:
    """Whether a file reference or root is a URL (and not a local path, e.g. ``C:\\x``).

    A root is judged by ``str(root)``: the loader's roots give their URL there (a remote folder, or
    a zip package downloaded from a URL) and a local path otherwise.
    """
    if reference is None or isinstance(reference, PurePath):
        return False
    scheme = urlparse(str(reference)).scheme
    return len(scheme) > 1 and scheme != "file"


def architecture_is_remote(request: AdapterRequest) -> bool:
    """Whether the architecture file came (or would come) from a remote source."""
    architecture = request.weights.architecture
    return is_url(getattr(architecture, "source", None)) or is_url(
        getattr(request.model, "root", None)
    )


def build_architecture(request: AdapterRequest) -> torch.nn.Module:
    """Create the (untrained) network the state dict of ``request.weights`` belongs to."""
    import torch

    architecture = request.weights.architecture
    name = str(architecture.callable)
    if getattr(architecture, "import_from", None) is not None:
        origin = f"{architecture.import_from}.{name}"
        factory = _callable_from_library(str(architecture.import_from), name)
    else:
        origin = f"{architecture.source}:{name}"
        factory = _callable_from_file(request, name)
    kwargs: Mapping[str, Any] = dict(architecture.kwargs or {})
    try:
        network = factory(**kwargs)
    except Exception as error:
        raise backend_error(
            FORMAT,
            origin,
            f"calling the architecture {origin}(**{dict(kwargs)!r}) failed: "
            f"{type(error).__name__}: {error}",
            loc=f"{LOC}.kwargs",
            hint="check the architecture's kwargs in the description",
        ) from error
    if not isinstance(network, torch.nn.Module):
        raise backend_error(
            FORMAT,
            origin,
            f"the architecture {origin} returned a {type(network).__name__}, not a torch.nn.Module",
            loc=f"{LOC}.callable",
        )
    return network


def _callable_from_library(import_from: str, name: str) -> Callable[..., Any]:
    try:
        module = importlib.import_module(import_from)
    except ImportError as error:
        raise backend_error(
            FORMAT,
            import_from,
            f"the architecture module {import_from!r} cannot be imported: {error}",
            loc=f"{LOC}.import_from",
            hint=f"install the package that provides {import_from!r} into this environment",
        ) from error
    return _get_callable(module, name, import_from)


def _callable_from_file(request: AdapterRequest, name: str) -> Callable[..., Any]:
    architecture = request.weights.architecture
    source = str(architecture.source)
    if architecture_is_remote(request) and not request.settings.allow_remote_code:
        where = source if is_url(source) else f"{source} (model opened from {request.model.root})"
        raise backend_error(
            FORMAT,
            source,
            f"refusing to run the architecture code {where}: it comes from a remote source, and "
            "running it executes arbitrary Python code",
            loc=f"{LOC}.source",
            hint=ALLOW_REMOTE_CODE_HINT,
        )
    try:
        path = request.open_file(source, architecture.sha256)
    except BioimageioError as error:
        raise locate(error, LOC) from None
    except OSError as error:
        raise backend_error(
            FORMAT, source, f"the architecture file cannot be read: {error}", loc=f"{LOC}.source"
        ) from error
    module = import_file(path, source)
    return _get_callable(module, name, source)


def import_file(path: Path, source: str) -> ModuleType:
    """Execute the Python file at ``path`` as a fresh module with a unique name.

    The module is in ``sys.modules`` only while its code runs (some code, e.g. dataclasses, looks
    itself up there), so importing the same file twice gives two independent modules.
    """
    stem = re.sub(r"\W", "_", Path(source).stem) or "architecture"
    module_name = f"_bioimageio_architecture_{stem}_{uuid.uuid4().hex[:12]}"
    loader = importlib.machinery.SourceFileLoader(module_name, str(path))
    spec = importlib.util.spec_from_loader(module_name, loader)
    if spec is None:  # pragma: no cover - spec_from_loader only fails for exotic loaders
        raise backend_error(FORMAT, source, "cannot create an import spec for the file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        loader.exec_module(module)
    except Exception as error:
        raise backend_error(
            FORMAT,
            source,
            f"executing the architecture file failed: {type(error).__name__}: {error}",
            loc=f"{LOC}.source",
            hint="the file may need a package that is not installed here",
        ) from error
    finally:
        sys.modules.pop(module_name, None)
    return module


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
            loc=f"{LOC}.callable",
        )
    return factory  # type: ignore[no-any-return]
