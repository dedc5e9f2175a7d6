"""Hook implementations of the tensorflow plugin (entry point ``tensorflow``)."""

from __future__ import annotations

import importlib.util

from bioimageio_core.hookspecs import WeightFormatRegister, WeightFormatSpec, hookimpl
from bioimageio_core.spec import TensorflowSavedModelBundleWeightsDescr
from bioimageio_run_tensorflow.adapter import FORMAT, create_adapter

DISTRIBUTION = "bioimageio-run-tensorflow"
"""The distribution of this plugin (install hints default to ``pip install`` of it)."""


def tensorflow_unavailable() -> str | None:
    """None when tensorflow can be imported here, else why not (imports nothing)."""
    if importlib.util.find_spec("tensorflow") is None:
        return "tensorflow is not installed"
    return None


@hookimpl
def bioimageio_weight_formats(register: WeightFormatRegister) -> None:
    register.add(
        WeightFormatSpec(
            name=FORMAT,
            entry_class=TensorflowSavedModelBundleWeightsDescr,
            create_adapter=create_adapter,
            is_available=tensorflow_unavailable,
            priority=30,
            enable_determinism=seed_tensorflow,
        )
    )


def seed_tensorflow(mode: str, seed: int) -> None:
    """Seed TensorFlow; ``mode="full"`` also enables op determinism. Imports tensorflow."""
    import tensorflow as tf

    tf.random.set_seed(seed)
    if mode == "full":
        tf.config.experimental.enable_op_determinism()
