"""Helpers of the torch backend tests: write models and 0.5 descriptions, build adapter requests."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

import attrs
import numpy as np
import torch
from torch_nets import NETS_SOURCE

from bioimageio_core.plugin import (
    AdapterRequest,
    HashMismatchError,
    ModelDescr,
    Settings,
    SourceError,
)
from bioimageio_core.plugin.testing import (
    ModelDef,
    Ref,
    TensorDef,
    WeightsDef,
    file_entry,
    model_description,
    sha256_of,
)
from bioimageio_core.plugin.testing import build_model as core_build_model
from bioimageio_core.plugin.testing import make_request as core_make_request

__all__ = ["Ref", "TensorDef"]  # the test-model DSL, for the test modules

NETS_FILE = "tiny_nets.py"
PYTORCH_VERSION = torch.__version__.split("+")[0]


def write_nets(folder: Path, name: str = NETS_FILE) -> Path:
    path = folder / name
    path.write_text(NETS_SOURCE)
    return path


def import_nets(path: Path) -> ModuleType:
    """Import the networks file under its own name (the reference the adapters are compared to)."""
    name = f"reference_{path.stem}_{abs(hash(path))}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # torch.jit.script looks the module up for type annotations
    spec.loader.exec_module(module)
    return module


def seeded(factory: Any, *args: Any, seed: int = 0, **kwargs: Any) -> torch.nn.Module:
    torch.manual_seed(seed)
    module: torch.nn.Module = factory(*args, **kwargs)
    return module.eval()


def run_eager(module: torch.nn.Module, *arrays: np.ndarray) -> Any:
    with torch.no_grad():
        return module(*(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays))


# ---- descriptions ------------------------------------------------------------------------------


def model_rdf(
    folder: Path,
    inputs: Sequence[TensorDef],
    outputs: Sequence[TensorDef],
    weights: Mapping[str, WeightsDef | Mapping[str, Any]],
) -> dict[str, Any]:
    """A minimal 0.5 model description; test tensors are written next to it as .npy files.

    ``weights`` are definitions, or raw entries (mappings) written as they are."""
    defined = tuple(w for w in weights.values() if isinstance(w, WeightsDef))
    model = ModelDef("tiny torch test model", tuple(inputs), tuple(outputs), defined)
    rdf = model_description(folder, model)
    for name, entry in weights.items():
        if not isinstance(entry, WeightsDef):
            rdf["weights"][name] = dict(entry)
    return rdf


def torchscript_weights(
    folder: Path, module: torch.jit.ScriptModule, name: str = "weights.pt"
) -> WeightsDef:
    torch.jit.save(module, str(folder / name))
    return WeightsDef("torchscript", name, {"pytorch_version": PYTORCH_VERSION})


def same_size_rdf(
    folder: Path, x: np.ndarray, expected: np.ndarray, weights: WeightsDef
) -> dict[str, Any]:
    """A description of one input ``raw`` (bcyx, test input ``x``) and one output ``out`` of the
    same size (test output ``expected``) with ``weights``."""
    return model_rdf(
        folder,
        [TensorDef("raw", "bcyx", x)],
        [TensorDef("out", "bcyx", expected, Ref("raw"))],
        {weights.format: weights},
    )


def scripted_model_rdf(folder: Path, module: torch.nn.Module, x: np.ndarray) -> dict[str, Any]:
    """The torchscript description of ``module`` scripted (``raw`` to ``out`` of the same size, as
    a TinyConv): ``x`` its test input, what ``module`` computes on it its test output."""
    weights = torchscript_weights(folder, torch.jit.script(module))
    return same_size_rdf(folder, x, run_eager(module, x).numpy(), weights)


def state_dict_weights(
    folder: Path,
    state: Mapping[str, Any],
    architecture: dict[str, Any],
    name: str = "weights.pth",
) -> WeightsDef:
    torch.save(dict(state), folder / name)
    return WeightsDef(
        "pytorch_state_dict",
        name,
        {"architecture": architecture, "pytorch_version": PYTORCH_VERSION},
    )


def file_architecture(nets_path: Path, callable_name: str, **kwargs: Any) -> dict[str, Any]:
    return file_entry(nets_path.parent, nets_path.name, callable=callable_name, kwargs=kwargs)


def state_dict_model_rdf(
    folder: Path,
    module: torch.nn.Module,
    x: np.ndarray,
    architecture: dict[str, Any] | None = None,
    state: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The pytorch_state_dict description of ``module`` (``raw`` to ``out`` of the same size, as
    a TinyConv): its state (or ``state``) saved, ``architecture`` by default ``TinyConv`` of the
    nets file in ``folder``; ``x`` its test input, what ``module`` computes on it its test output."""
    if architecture is None:
        architecture = file_architecture(folder / NETS_FILE, "TinyConv")
    weights = state_dict_weights(
        folder, module.state_dict() if state is None else state, architecture
    )
    return same_size_rdf(folder, x, run_eager(module, x).numpy(), weights)


# ---- requests ----------------------------------------------------------------------------------


def _is_url(reference: str) -> bool:
    return len(urlparse(reference).scheme) > 1


@attrs.define
class LocalOpener:
    """``open_file`` for tests: files of one folder, sha256 checked; URLs below ``url_root`` are
    served from that folder (a stand-in for a download), other URLs fail."""

    root: Path
    url_root: str | None = None
    calls: list[tuple[str, str | None]] = attrs.field(factory=list)

    def __call__(self, reference: str, sha256: str | None) -> Path:
        self.calls.append((reference, sha256))
        if _is_url(reference):
            if self.url_root is None or not reference.startswith(self.url_root):
                raise SourceError(f"the tests do not download {reference}")
            reference = reference[len(self.url_root) :].lstrip("/")
        path = self.root / reference
        if not path.is_file():
            raise SourceError(f"{reference} does not exist in {self.root}")
        if sha256 is not None and sha256_of(path) != sha256:
            raise HashMismatchError(reference, sha256, sha256_of(path))
        return path


def build_model(rdf: dict[str, Any], root: object, *, allow_warnings: bool = False) -> ModelDescr:
    """The 0.5 ``ModelDescr`` of ``rdf`` (built without IO) with ``root`` set."""
    return core_build_model(rdf, root, allow_warnings=allow_warnings)


def make_request(
    folder: Path,
    rdf: dict[str, Any],
    weights_format: str,
    *,
    devices: tuple[str, ...] | None = ("cpu",),
    settings: Settings | None = None,
    root: object = None,
    opener: LocalOpener | None = None,
) -> AdapterRequest[Any]:
    model = build_model(rdf, folder if root is None else root)
    return core_make_request(
        model,
        weights_format,
        devices,
        settings=settings if settings is not None else Settings(),
        open_file=opener if opener is not None else LocalOpener(folder),
    )
