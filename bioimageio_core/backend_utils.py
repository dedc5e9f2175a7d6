"""Small helpers shared by weight-format backends: framework import, device strings, tensor
matching, file placing.

Nothing here imports a deep-learning framework; backends translate the results into their own
device names and call orders.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shutil
import warnings
from collections.abc import Collection, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import numpy as np

from bioimageio_core.errors import InputError, PluginError
from bioimageio_core.plugins import install_hint_for


def import_framework(module: str, *, weights_format: str) -> ModuleType:
    """Import a backend's framework (call it when building an adapter, never at plugin import).

    Raises :class:`PluginError` saying which weight format needs ``module`` and what to install
    (the format's install hint, :func:`bioimageio_core.plugins.install_hint_for`).
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise PluginError(
            f"the {weights_format} weight format needs {module}, which failed to import: {e}",
            hint=install_hint_for(weights_format),
        ) from e


def missing_module(*modules: str, why: str = "") -> str | None:
    """An ``is_available`` reason: None when every one of ``modules`` can be imported here, else
    ``"<module> is not installed"`` (and `` (why)``) for the first that cannot.

    Asks :func:`importlib.util.find_spec` and imports nothing (a framework stays unimported
    until an adapter needs it).
    """
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent package that fails, a module without spec
            found = False
        if not found:
            return f"{module} is not installed" + (f" ({why})" if why else "")
    return None


_DEVICE = re.compile(r"(?P<type>[a-z]+)(?::(?P<index>\d+))?")
NUMBERED_DEVICE_TYPES = frozenset({"cuda"})
"""Device types that come as several devices told apart by an index (``cuda:1``); other types
(``cpu``, ``mps``) name one device, and ``type:0`` means the same as ``type``."""


@attrs.frozen
class Device:
    """A device: its type (``"cpu"``, ``"cuda"``, ``"mps"`` …) and, for a numbered device type,
    its index (None: not given, the backend's default device of that type)."""

    type: str
    index: int | None = None

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


def device_hint(types: Collection[str] | None = None) -> str:
    """The accepted device names, for error messages (``types``: those a backend knows)."""
    names = [f"'{t}'" for t in sorted(types or ("cpu", "cuda"), key=_device_order)]
    if "'cuda'" in names:
        names.insert(names.index("'cuda'") + 1, "'cuda:N' (N: the GPU index)")
    if types is None:
        names.append("another device the backend knows (e.g. 'mps')")
    return "use " + (", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0])


def _device_order(device_type: str) -> tuple[int, str]:
    return (("cpu", "cuda").index(device_type) if device_type in ("cpu", "cuda") else 2, device_type)


def parse_device(
    text: str, *, types: Collection[str] | None = None, backend: str | None = None
) -> Device:
    """Parse a device string, the one way every backend and the CLI read them.

    Accepts ``type`` or ``type:N`` in any case and with surrounding spaces: ``"cpu"``,
    ``"CUDA"``, ``"cuda:1"``, ``"mps"``. Only ``cuda`` devices are numbered
    (:data:`NUMBERED_DEVICE_TYPES`); ``cpu:0`` is ``cpu``. ``types`` are the device types the
    ``backend`` knows (None: any, for callers that only check the form, such as the CLI).
    Raises :class:`PluginError` with the accepted names for anything else.
    """
    match = _DEVICE.fullmatch(text.strip().lower())
    if match is None or (types is not None and match["type"] not in types):
        raise _unknown_device(text, types, backend)
    device_type = match["type"]
    index = None if match["index"] is None else int(match["index"])
    if index is not None and device_type not in NUMBERED_DEVICE_TYPES:
        if index != 0:
            raise _unknown_device(text, types, backend, " (only 'cuda' devices are numbered)")
        index = None
    return Device(device_type, index)


def _unknown_device(
    text: str, types: Collection[str] | None, backend: str | None, why: str = ""
) -> PluginError:
    message = (
        f"the {backend} backend does not know device {text!r}"
        if backend
        else f"{text!r} is not a device name"
    )
    return PluginError(message + why, hint=device_hint(types))


def single_device(
    devices: Sequence[str] | None, *, backend: str, stacklevel: int = 2
) -> Device | None:
    """The one CPU or CUDA device to run on, from the devices a user asked for (None: the
    backend's default).

    Reads ``"cpu"``, ``"cuda"`` and ``"cuda:N"`` with :func:`parse_device`; the result has index
    0 for ``cpu`` and ``cuda``. A backend runs a model on one device: further devices are ignored
    with a warning (``stacklevel`` as for :func:`warnings.warn`, counted from the caller of this
    function). Raises :class:`PluginError` naming ``backend`` for any other device.
    """
    if not devices:
        return None
    if len(devices) > 1:
        warnings.warn(
            f"the {backend} backend runs a model on one device; using {devices[0]!r} and "
            f"ignoring {list(devices[1:])}",
            stacklevel=stacklevel + 1,
        )
    device = parse_device(devices[0], types=("cpu", "cuda"), backend=backend)
    return Device(device.type, device.index or 0)


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


def unloaded_error(model: str) -> PluginError:
    """The error ``forward`` raises after ``unload``; ``model`` names it (``"the onnx model
    weights.onnx"``)."""
    return PluginError(f"{model} was unloaded", hint="create a new adapter")


def fit_input(
    array: np.ndarray[Any, Any],
    tensor_id: str,
    what: str,
    *,
    rank: int | None,
    dtype: np.dtype[Any] | None,
) -> np.ndarray[Any, Any]:
    """``array`` for a framework input that takes ``rank`` dimensions and ``dtype`` (None: any):
    cast when numpy casts it within its kind (float64 to float32, int to int), else an
    :class:`InputError` naming input ``tensor_id`` and ``what`` ("graph input 'x' of m.onnx")."""
    if rank is not None and array.ndim != rank:
        raise InputError(
            f"input {tensor_id!r} has {array.ndim} dimensions, but {what} takes {rank}"
        )
    if dtype is not None and array.dtype != dtype:
        if not np.can_cast(array.dtype, dtype, casting="same_kind"):
            raise InputError(
                f"input {tensor_id!r} has dtype {array.dtype}, but {what} takes {dtype}",
                hint=f"convert the input to {dtype} (e.g. an ensure_dtype preprocessing step)",
            )
        array = array.astype(dtype)
    return array


def link_or_copy(source: Path, target: Path) -> None:
    """Make ``target`` a hard link to ``source``, or a copy where links fail (other file system)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
