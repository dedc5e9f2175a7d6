"""Entry point of the torch backend (group ``bioimageio_core``, name ``torch``).

Registers two weight formats:

==================== ======== ==========================================================
format               priority why
==================== ======== ==========================================================
torchscript          10       self-contained archive: runs no Python code of the model
pytorch_state_dict   40       needs the model's architecture code (executes Python code)
==================== ======== ==========================================================

Lower priorities are tried first when the user chose no weight format; the gap leaves room for
other backends in between (onnx 20, tensorflow_saved_model_bundle 30). Install hints default to
``pip install bioimageio-run-torch`` (the entry point's distribution). This module imports neither torch nor the adapters: torch is
imported only when an adapter is created.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bioimageio_core.plugin import (
    AdapterRequest,
    ConverterRegister,
    ModelAdapter,
    PluginError,
    WeightFormatRegister,
    WeightFormatSpec,
    hookimpl,
    missing_module,
    spec,
)
from bioimageio_run_torch._errors import DISTRIBUTION

if TYPE_CHECKING:
    from bioimageio_core.plugin import PytorchStateDictWeightsDescr, TorchscriptWeightsDescr

TORCHSCRIPT_PRIORITY = 10
PYTORCH_STATE_DICT_PRIORITY = 40


def torch_missing_reason() -> str | None:
    """None when torch can be imported here, else why not (checked without importing torch)."""
    return missing_module("torch")


def create_torchscript_adapter(request: AdapterRequest[TorchscriptWeightsDescr]) -> ModelAdapter:
    """Load torchscript weights (imports torch)."""
    from bioimageio_run_torch.torchscript import TorchscriptAdapter

    return TorchscriptAdapter(request)


def create_pytorch_state_dict_adapter(
    request: AdapterRequest[PytorchStateDictWeightsDescr],
) -> ModelAdapter:
    """Build the architecture and load pytorch_state_dict weights (imports torch)."""
    from bioimageio_run_torch.state_dict import PytorchStateDictAdapter

    return PytorchStateDictAdapter(request)


def _spec_class(name: str) -> type[Any]:
    """The weights-entry class ``name`` of the core's data model, looked up when registering so
    that a core too old for this plugin is reported with what to do."""
    entry_class = getattr(spec, name, None)
    if not isinstance(entry_class, type):
        raise PluginError(
            f"bioimageio_core.spec has no class {name}; {DISTRIBUTION} needs a bioimageio-run "
            "version that defines it",
            hint="upgrade bioimageio-run and bioimageio-run-torch together",
        )
    return entry_class


def weight_format_specs() -> tuple[WeightFormatSpec[Any], ...]:
    """The weight formats this plugin provides."""
    formats: tuple[tuple[str, str, Callable[..., ModelAdapter], int], ...] = (
        ("torchscript", "TorchscriptWeightsDescr", create_torchscript_adapter, TORCHSCRIPT_PRIORITY),
        (
            "pytorch_state_dict",
            "PytorchStateDictWeightsDescr",
            create_pytorch_state_dict_adapter,
            PYTORCH_STATE_DICT_PRIORITY,
        ),
    )
    return tuple(
        WeightFormatSpec(
            name=name,
            entry_class=_spec_class(entry_class),
            create_adapter=create,
            is_available=torch_missing_reason,
            priority=priority,
            enable_determinism=seed_torch,
            list_devices=list_torch_devices,
        )
        for name, entry_class, create, priority in formats
    )


@hookimpl
def bioimageio_weight_formats(register: WeightFormatRegister) -> None:
    """Register ``torchscript`` and ``pytorch_state_dict``."""
    for format_spec in weight_format_specs():
        register.add(format_spec)


@hookimpl
def bioimageio_weight_converters(register: ConverterRegister) -> None:
    """Register pytorch_state_dict -> torchscript / onnx and torchscript -> onnx."""
    from bioimageio_run_torch.converters import converter_specs

    for converter in converter_specs():
        register.add(converter)


def list_torch_devices() -> list[str]:
    """The devices torch can run on here (``WeightFormatSpec.list_devices``); imports torch."""
    from bioimageio_run_torch.devices import available_devices, machine_devices

    return available_devices(machine_devices())


def seed_torch(mode: str, seed: int) -> None:
    """Seed torch (``WeightFormatSpec.enable_determinism``); imports torch."""
    from bioimageio_run_torch.determinism import enable_determinism

    if mode not in ("seed_only", "full"):
        raise ValueError(f"determinism mode must be 'seed_only' or 'full' (got {mode!r})")
    enable_determinism("full" if mode == "full" else "seed_only", seed=seed)
