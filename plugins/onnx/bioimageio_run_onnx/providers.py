"""Choose onnxruntime execution providers for the devices a user asked for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bioimageio_core.plugin import PluginError, single_device

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"

Provider = str | tuple[str, dict[str, Any]]
"""What ``onnxruntime.InferenceSession(providers=...)`` accepts: a name or (name, options)."""


def execution_providers(devices: Sequence[str] | None, available: Sequence[str]) -> list[Provider]:
    """The providers for ``devices`` given onnxruntime's ``available`` providers.

    * ``None``: CUDA device 0 when onnxruntime offers CUDA, else CPU.
    * ``"cpu"``: CPU only.
    * ``"cuda"`` / ``"cuda:N"``: CUDA device N (0 for ``"cuda"``) with CPU as fallback for
      operators CUDA lacks; an error when this onnxruntime has no CUDA provider.

    Only the first device is used; more than one gives a warning.
    """
    if not devices:
        if CUDA in available:
            return [(CUDA, {"device_id": 0}), CPU]
        return [CPU]
    device = single_device(devices, backend="onnx", stacklevel=3)
    if device is None or device.type == "cpu":
        return [CPU]
    if CUDA not in available:
        raise PluginError(
            f"device {devices[0]!r} asked for, but this onnxruntime offers no CUDA execution "
            f"provider (available: {', '.join(available) or 'none'})",
            hint="install onnxruntime-gpu in place of onnxruntime (and a matching CUDA), or run "
            "with devices=['cpu']",
        )
    return [(CUDA, {"device_id": device.index}), CPU]


def devices_of_providers(available: Sequence[str]) -> list[str]:
    """Device names (as ``devices`` takes them) for onnxruntime's ``available`` providers:
    ``cpu``, and ``cuda`` when the CUDA provider is there (its GPUs are not counted without
    creating a session)."""
    return ["cpu", "cuda"] if CUDA in available else ["cpu"]
