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

from bioimageio_core.plugin import PluginError, Settings, single_device

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


@attrs.frozen
class BackendPlan:
    """Where and with which Keras backend a model runs."""

    name: str
    """The Keras backend (torch, tensorflow or jax)."""
    in_worker: bool
    """True: in a separate Python process (keras was imported here with another backend)."""
    warnings: tuple[str, ...] = ()


def installed_backends() -> list[str]:
    """Keras backends whose framework can be imported here (nothing is imported)."""
    return [n for n, package in BACKEND_PACKAGES.items() if importlib.util.find_spec(package)]


def _install_hint(name: str, version: str | None) -> str:
    package = BACKEND_PACKAGES.get(name, name)
    pinned = f"{package}=={version}" if version else package
    return f'pip install "{pinned}"' + (" (or another release)" if version else "")


def plan_backend(
    declared: tuple[str, str] | None,
    settings: Settings,
    *,
    environ: dict[str, str] | None = None,
    active: str | None = None,
    installed: list[str] | None = None,
) -> BackendPlan:
    """Choose the backend for a model whose weights declare ``declared`` (``keras_v3``'s
    ``backend``: name, version; None for ``keras_hdf5``).

    * A declared backend whose framework is installed is used; if keras was already imported in
      this process with another backend (``active``), the model runs in a worker process.
    * A declared backend that is not installed: the backend the settings ask for
      (``KERAS_BACKEND``, default torch), else any installed one, with a warning saying what to
      install to run on the declared one.
    * No declared backend: the settings' backend; when keras is already active with another
      one, a backend asked for explicitly runs in a worker, the default gives way to the active
      backend (with a warning).
    """
    requested, explicit = requested_backend(settings, environ)
    installed = installed_backends() if installed is None else installed
    notes: list[str] = []
    binding = explicit
    target = requested
    if declared is not None:
        name, version = declared
        if name in installed:
            target, binding = name, True
        else:
            target = requested if requested in installed else (installed or [requested])[0]
            notes.append(
                f"the weights declare the Keras backend {name} {version}, which is not installed "
                f"here; running them with {target} instead. To run them on {name}: "
                f"{_install_hint(name, version)}"
            )
    if active is None or active == target:
        return BackendPlan(target, False, tuple(notes))
    if binding:
        if os.name == "nt":  # pragma: no cover - the worker needs POSIX file descriptors
            raise PluginError(
                f"keras was imported with backend {active!r} before the model was loaded; "
                f"backend {target!r} cannot be used any more in this process",
                hint=f"set KERAS_BACKEND={target} before anything imports keras",
            )
        return BackendPlan(target, True, tuple(notes))
    notes.append(
        f"keras was imported with backend {active!r} before the model was loaded; backend "
        f"{target!r} cannot be used any more in this process; running the model with {active!r}"
    )
    return BackendPlan(active, False, tuple(notes))


def version_warning(declared: tuple[str, str] | None, running: str) -> str | None:
    """A warning when the framework of the running backend differs in major version from the
    declared one (None when it does not, or nothing was declared)."""
    if declared is None or declared[0] != running:
        return None
    installed = framework_version(running)
    if installed is None:
        return None
    want, have = declared[1].split(".", 1)[0], installed.split(".", 1)[0]
    if want.isdigit() and have.isdigit() and want != have:
        return (
            f"the weights were saved with {running} {declared[1]}, {running} {installed} is "
            f"installed here; results may differ ({_install_hint(running, declared[1])})"
        )
    return None


_SEED: list[int] = []


def request_seed(seed: int) -> None:
    """Seed keras now if it is imported, and every model loaded later (in this process or in a
    worker) right after its backend is imported: seeding must not import keras, or it would fix
    the backend before a model says which one it needs."""
    _SEED[:] = [seed]
    keras = sys.modules.get("keras")
    if keras is not None:
        keras.utils.set_random_seed(seed)


def pending_seed() -> int | None:
    """The seed :func:`request_seed` asked for (None: no seeding asked)."""
    return _SEED[0] if _SEED else None


def framework_version(name: str) -> str | None:
    """The installed release of a backend's framework (also from CPU-only distributions such as
    ``tensorflow-cpu``), without local build tags; None when none is installed."""
    package = BACKEND_PACKAGES.get(name, name)
    for distribution in (package, f"{package}-cpu", f"{package}-gpu"):
        try:
            return importlib.metadata.version(distribution).split("+", 1)[0]
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def backend_entry(keras: Any) -> tuple[str, str]:
    """``(name, version)`` of the active Keras backend, as ``weights.keras_v3.backend`` records it.

    The version is the backend framework's release (``2.13.0`` for torch ``2.13.0+cpu``).
    """
    name = str(keras.backend.backend())
    version = framework_version(name)
    if version is None:
        module = sys.modules.get(BACKEND_PACKAGES.get(name, name))
        version = str(getattr(module, "__version__", "0")).split("+", 1)[0]
    return name, version


def keras_device(devices: Sequence[str] | None) -> str | None:
    """The Keras device scope name for ``devices`` (None: Keras' default, a GPU if it has one)."""
    device = single_device(devices, backend="keras", stacklevel=3)
    if device is None:
        return None
    return "cpu:0" if device.type == "cpu" else f"gpu:{device.index}"


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
