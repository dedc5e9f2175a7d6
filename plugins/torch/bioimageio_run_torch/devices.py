"""Device strings (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``) and the choice of one device.

Parsing and choosing are pure functions of the strings and of what the machine offers, so they are
tested without a GPU; :func:`torch_device` asks torch what the machine offers.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from bioimageio_core.plugin import Device, PluginError
from bioimageio_core.plugin import parse_device as core_parse_device
from bioimageio_run_torch._errors import DISTRIBUTION

if TYPE_CHECKING:
    import torch

DEVICE_TYPES = ("cpu", "cuda", "mps")


@attrs.frozen
class MachineDevices:
    """What this machine offers: the number of CUDA devices and whether Apple's MPS is usable."""

    cuda_count: int = 0
    mps: bool = False


def parse_device(text: str) -> Device:
    """A device string the torch backend knows (``cpu``, ``cuda``, ``cuda:N``, ``mps``), read with
    the core's one parser; raise :class:`PluginError` with the accepted forms otherwise."""
    return core_parse_device(text, types=DEVICE_TYPES, backend=f"torch ({DISTRIBUTION})")


def choose_device(devices: Sequence[str] | None, machine: MachineDevices) -> Device:
    """The device to run on: the first of ``devices``, or CUDA when available, else the CPU.

    A torch module runs on one device; further devices are ignored with a warning. A device the
    machine does not offer is an error that says which devices it does offer.
    """
    if not devices:
        return Device("cuda", None) if machine.cuda_count > 0 else Device("cpu")
    chosen = parse_device(devices[0])
    if len(devices) > 1:
        for extra in devices[1:]:
            parse_device(extra)
        warnings.warn(
            f"the torch backend runs a model on one device; using {chosen} and ignoring "
            f"{', '.join(devices[1:])}",
            stacklevel=2,
        )
    _check_available(chosen, machine)
    return chosen


def available_devices(machine: MachineDevices) -> list[str]:
    """Every device ``machine`` offers, by name: ``cpu``, ``cuda:0`` …, ``mps``."""
    names = ["cpu", *(f"cuda:{i}" for i in range(machine.cuda_count))]
    if machine.mps:
        names.append("mps")
    return names


def _offered(machine: MachineDevices) -> str:
    return ", ".join(available_devices(machine))


def _check_available(device: Device, machine: MachineDevices) -> None:
    if device.type == "cuda" and machine.cuda_count == 0:
        raise PluginError(
            f"device {device} was requested, but torch sees no CUDA device here (torch backend, "
            f"{DISTRIBUTION}; devices available: {_offered(machine)})",
            hint="ask for device 'cpu', or install a CUDA build of torch on a machine with an "
            "NVIDIA GPU",
        )
    if device.type == "cuda" and device.index is not None and device.index >= machine.cuda_count:
        raise PluginError(
            f"device {device} was requested, but this machine has {machine.cuda_count} CUDA "
            f"device(s) (torch backend, {DISTRIBUTION}; devices available: {_offered(machine)})",
            hint="CUDA devices are numbered from 0; check CUDA_VISIBLE_DEVICES",
        )
    if device.type == "mps" and not machine.mps:
        raise PluginError(
            f"device mps was requested, but torch's MPS backend is not available here (torch "
            f"backend, {DISTRIBUTION}; devices available: {_offered(machine)})",
            hint="ask for device 'cpu'",
        )


def machine_devices() -> MachineDevices:
    """Ask torch which devices this machine offers."""
    import torch

    mps_backend = getattr(torch.backends, "mps", None)
    mps = bool(mps_backend is not None and mps_backend.is_available())
    cuda_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return MachineDevices(cuda_count=cuda_count, mps=mps)


def torch_device(devices: Sequence[str] | None) -> torch.device:
    """The :class:`torch.device` to run on for the requested ``devices`` (see :func:`choose_device`)."""
    import torch

    return torch.device(str(choose_device(devices, machine_devices())))
