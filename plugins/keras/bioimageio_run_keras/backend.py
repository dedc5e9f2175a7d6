"""Pick and activate the Keras 3 backend, and map device names to Keras device scopes.

Keras reads ``KERAS_BACKEND`` once, when ``keras`` is first imported. :func:`activate_backend`
therefore sets that variable before the first import; when keras is already imported with another
backend, the request cannot be honoured and is either an error (the backend was asked for
explicitly) or a warning (the default was in effect).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import attrs

from bioimageio_core.backend_utils import single_device
from bioimageio_core.errors import PluginError
from bioimageio_core.settings import Settings

BACKEND_PACKAGES: dict[str, str] = {"torch": "torch", "tensorflow": "tensorflow", "jax": "jax"}
"""Keras backends this plugin runs models with, and the package each needs."""

DEFAULT_BACKEND: str = str(attrs.fields(Settings).keras_backend.default)


def requested_backend(
    settings: Settings, environ: dict[str, str] | None = None
) -> tuple[str, bool]:
    """The backend asked for and whether it was asked for explicitly.

    Explicit: ``KERAS_BACKEND`` is set, or ``settings.keras_backend`` differs from the default.
    """
    env = os.environ if environ is None else environ
    name = settings.keras_backend.strip().lower()
    explicit = bool(env.get("KERAS_BACKEND", "").strip()) or name != DEFAULT_BACKEND
    return name, explicit


def activate_backend(name: str, *, explicit: bool) -> Any:
    """Import keras with backend ``name`` (if not imported yet) and return the keras module."""
    if name not in BACKEND_PACKAGES:
        raise PluginError(
            f"unknown Keras backend {name!r}",
            hint=f"set KERAS_BACKEND to one of {', '.join(BACKEND_PACKAGES)}",
        )
    if "keras" not in sys.modules:
        package = BACKEND_PACKAGES[name]
        if importlib.util.find_spec(package) is None:
            raise PluginError(
                f"Keras backend {name!r} asked for (KERAS_BACKEND or settings.keras_backend), "
                f"but {package} is not installed",
                hint=f"install {package} (torch: pip install torch==2.13.0), or set KERAS_BACKEND "
                "to a backend you have: torch, tensorflow or jax",
            )
        os.environ["KERAS_BACKEND"] = name
    try:
        keras = importlib.import_module("keras")
    except ImportError as e:
        raise PluginError(
            f"keras failed to import: {e}", hint="pip install bioimageio-run-keras"
        ) from e
    active = str(keras.backend.backend())
    if active != name:
        message = (
            f"keras was imported with backend {active!r} before the model was loaded; "
            f"backend {name!r} cannot be used any more in this process"
        )
        if explicit:
            raise PluginError(
                message,
                hint=f"set KERAS_BACKEND={name} before anything imports keras, or set "
                f"KERAS_BACKEND={active}",
            )
        warnings.warn(f"{message}; running the model with {active!r}", stacklevel=3)
    return keras


def backend_entry(keras: Any) -> tuple[str, str]:
    """``(name, version)`` of the active Keras backend, as ``weights.keras_v3.backend`` records it.

    The version is the backend framework's release (``2.13.0`` for torch ``2.13.0+cpu``).
    """
    name = str(keras.backend.backend())
    package = BACKEND_PACKAGES.get(name, name)
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        module = sys.modules.get(package)
        version = str(getattr(module, "__version__", "0"))
    return name, version.split("+", 1)[0]


def keras_device(devices: Sequence[str] | None) -> str | None:
    """The Keras device scope name for ``devices`` (None: Keras' default, a GPU if it has one)."""
    device = single_device(devices, backend="keras", stacklevel=3)
    if device is None:
        return None
    return "cpu:0" if device.kind == "cpu" else f"gpu:{device.index}"


def gpu_count(backend: str) -> int:
    """Number of GPUs the active Keras backend can use."""
    if backend == "torch":
        torch = importlib.import_module("torch")
        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    if backend == "tensorflow":
        tf = importlib.import_module("tensorflow")
        return len(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        jax = importlib.import_module("jax")
        try:
            return len(jax.devices("gpu"))
        except RuntimeError:
            return 0
    return 0
