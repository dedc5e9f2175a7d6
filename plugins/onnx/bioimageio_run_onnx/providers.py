"""Choose onnxruntime execution providers for the devices a user asked for."""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

from bioimageio_core.errors import PluginError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"

Provider = str | tuple[str, dict[str, Any]]
"""What ``onnxruntime.InferenceSession(providers=...)`` accepts: a name or (name, options)."""

_CUDA_DEVICE = re.compile(r"cuda(?::(\d+))?")


def execution_providers(devices: Sequence[str] | None, available: Sequence[str]) -> list[Provider]:
    """The providers for ``devices`` given onnxruntime's ``available`` providers.

    * ``None``: CUDA device 0 when onnxruntime offers CUDA, else CPU.
    * ``"cpu"``: CPU only.
    * ``"cuda"`` / ``"cuda:N"``: CUDA device N (0 for ``"cuda"``) with CPU as fallback for
      operators CUDA lacks; an error when this onnxruntime has no CUDA provider.

    Only the first device is used; more than one gives a warning.
    """
    if devices is None or len(devices) == 0:
        if CUDA in available:
            return [(CUDA, {"device_id": 0}), CPU]
        return [CPU]
    if len(devices) > 1:
        warnings.warn(
            f"the onnx backend runs a model on one device; using {devices[0]!r} and ignoring "
            f"{list(devices[1:])}",
            stacklevel=3,
        )
    device = devices[0].strip().lower()
    if device == "cpu":
        return [CPU]
    match = _CUDA_DEVICE.fullmatch(device)
    if match is None:
        raise PluginError(
            f"the onnx backend does not know device {devices[0]!r}",
            hint="use 'cpu', 'cuda' or 'cuda:N' (N: the GPU index)",
        )
    if CUDA not in available:
        raise PluginError(
            f"device {devices[0]!r} asked for, but this onnxruntime offers no CUDA execution "
            f"provider (available: {', '.join(available) or 'none'})",
            hint="install onnxruntime-gpu in place of onnxruntime (and a matching CUDA), or run "
            "with devices=['cpu']",
        )
    return [(CUDA, {"device_id": int(match.group(1) or 0)}), CPU]
