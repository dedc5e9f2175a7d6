"""Small helpers shared by weight-format backends: framework import, one device, tensor
matching, file placing.

Nothing here imports a deep-learning framework; backends translate the results into their own
device names and call orders.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Literal

import attrs

from bioimageio_core.errors import PluginError


def import_framework(module: str, *, weights_format: str, distribution: str) -> ModuleType:
    """Import a backend's framework (call it when building an adapter, never at plugin import).

    Raises :class:`PluginError` saying which weight format needs ``module`` and what to install.
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise PluginError(
            f"the {weights_format} weight format needs {module}, which failed to import: {e}",
            hint=f"pip install {distribution}",
        ) from e


_CUDA_DEVICE = re.compile(r"cuda(?::(\d+))?")
DEVICE_HINT = "use 'cpu', 'cuda' or 'cuda:N' (N: the GPU index)"


@attrs.frozen
class Device:
    """A device a single-device backend runs on: the CPU or CUDA GPU ``index``."""

    kind: Literal["cpu", "cuda"]
    index: int = 0


def single_device(
    devices: Sequence[str] | None, *, backend: str, stacklevel: int = 2
) -> Device | None:
    """The one device to run on, from the devices a user asked for (None: the backend's default).

    Accepts ``"cpu"``, ``"cuda"`` (GPU 0) and ``"cuda:N"``, in any case and with surrounding
    spaces. A backend runs a model on one device: further devices are ignored with a warning
    (``stacklevel`` as for :func:`warnings.warn`, counted from the caller of this function).
    Raises :class:`PluginError` naming ``backend`` for any other device.
    """
    if not devices:
        return None
    if len(devices) > 1:
        warnings.warn(
            f"the {backend} backend runs a model on one device; using {devices[0]!r} and "
            f"ignoring {list(devices[1:])}",
            stacklevel=stacklevel + 1,
        )
    device = devices[0].strip().lower()
    if device == "cpu":
        return Device("cpu")
    match = _CUDA_DEVICE.fullmatch(device)
    if match is None:
        raise PluginError(
            f"the {backend} backend does not know device {devices[0]!r}", hint=DEVICE_HINT
        )
    return Device("cuda", int(match.group(1) or 0))


def match_tensors(
    names: Sequence[str], tensor_ids: Sequence[str], *, what: str, holder: str, noun: str
) -> tuple[int, ...]:
    """For each tensor id (description order), the position in ``names`` of its graph tensor.

    By name when ``names`` are exactly the tensor ids (in any order), else by position. ``what``
    is "inputs" or "outputs"; ``holder`` names what declares ``names`` for messages (e.g. "the
    onnx graph in model.onnx") and ``noun`` what it is ("graph"). Raises :class:`PluginError`
    when the counts differ.
    """
    if sorted(names) == sorted(tensor_ids):
        position = {name: i for i, name in enumerate(names)}
        return tuple(position[tid] for tid in tensor_ids)
    if len(names) != len(tensor_ids):
        raise PluginError(
            f"{holder} has {len(names)} {what} {list(names)}, but the description declares "
            f"{len(tensor_ids)}: {list(tensor_ids)}",
            hint=f"the description's {what} must match the {noun}'s {what} in number and order",
        )
    return tuple(range(len(tensor_ids)))


def link_or_copy(source: Path, target: Path) -> None:
    """Make ``target`` a hard link to ``source``, or a copy where links fail (other file system)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
