"""Hook implementations of the keras plugin (entry point ``keras`` in group ``bioimageio_core``)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from typing import Any

from bioimageio_core.plugin import (
    ConverterRegister,
    KerasHdf5WeightsDescr,
    WeightFormatRegister,
    WeightFormatSpec,
    hookimpl,
    missing_module,
)
from bioimageio_run_keras.adapter import DISTRIBUTION, KERAS_HDF5, create_adapter
from bioimageio_run_keras.backend import BACKEND_PACKAGES
from bioimageio_run_keras.weights import KERAS_V3, KerasV3WeightsDescr


def keras_unavailable() -> str | None:
    """None when keras 3 and at least one of its backends can be imported (imports nothing)."""
    if missing_module("keras") is not None:
        return "keras is not installed"
    try:
        version = importlib.metadata.version("keras")
    except importlib.metadata.PackageNotFoundError:
        version = ""
    major = version.split(".", 1)[0]
    if major.isdigit() and int(major) < 3:
        return f"keras {version} is installed; Keras 3 is needed (pip install 'keras>=3')"
    if not any(importlib.util.find_spec(p) is not None for p in BACKEND_PACKAGES.values()):
        return "keras has no backend installed (install torch, tensorflow or jax)"
    return None


@hookimpl
def bioimageio_weight_formats(register: WeightFormatRegister) -> None:
    """Register ``keras_hdf5`` and ``keras_v3``: one adapter, one availability check."""
    hint = f"pip install {DISTRIBUTION} (and torch, tensorflow or jax as Keras backend)"
    entries: tuple[tuple[str, type[Any], int], ...] = (
        (KERAS_HDF5, KerasHdf5WeightsDescr, 50),
        (KERAS_V3, KerasV3WeightsDescr, 45),
    )
    for name, entry_class, priority in entries:
        register.add(
            WeightFormatSpec(
                name=name,
                entry_class=entry_class,
                create_adapter=create_adapter,
                is_available=keras_unavailable,
                priority=priority,
                install_hint=hint,
                enable_determinism=seed_keras,
            )
        )


@hookimpl
def bioimageio_weight_converters(register: ConverterRegister) -> None:
    """Register keras_hdf5 -> keras_v3 and keras_hdf5 / keras_v3 -> tensorflow_saved_model_bundle."""
    from bioimageio_run_keras.converters import converter_specs

    for spec in converter_specs():
        register.add(spec)


def seed_keras(mode: str, seed: int) -> None:
    """Seed Keras and its backend (``keras.utils.set_random_seed``): now if keras is imported,
    else when a model is loaded (after its backend is chosen). ``mode="full"`` also turns
    TensorFlow's oneDNN off (``TF_ENABLE_ONEDNN_OPTS=0`` unless set; read when TensorFlow is
    first imported) for the TensorFlow backend; Keras itself needs nothing more."""
    from bioimageio_run_keras.backend import request_seed

    if mode == "full":
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

    request_seed(seed)
