"""Hook implementations of the tensorflow plugin (entry point ``tensorflow``)."""

from __future__ import annotations

import os

from bioimageio_core.plugin import (
    TensorflowSavedModelBundleWeightsDescr,
    WeightFormatRegister,
    WeightFormatSpec,
    hookimpl,
    missing_module,
)
from bioimageio_run_tensorflow.adapter import FORMAT, create_adapter

DISTRIBUTION = "bioimageio-run-tensorflow"
"""The distribution of this plugin (install hints default to ``pip install`` of it)."""


def tensorflow_unavailable() -> str | None:
    """None when tensorflow can be imported here, else why not (imports nothing)."""
    return missing_module("tensorflow")


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


ONEDNN_SWITCH = "TF_ENABLE_ONEDNN_OPTS"
"""Environment variable TensorFlow reads when it is first imported; ``0`` turns oneDNN's
optimisations off (they reorder floating point operations between runs)."""


def seed_tensorflow(mode: str, seed: int) -> None:
    """Seed TensorFlow (``WeightFormatSpec.enable_determinism``); imports tensorflow.

    ``mode="full"`` also turns oneDNN off (``TF_ENABLE_ONEDNN_OPTS=0``, unless the user set it;
    before the import, the only time TensorFlow reads it) and enables op determinism.
    """
    if mode == "full":
        os.environ.setdefault(ONEDNN_SWITCH, "0")
    import tensorflow as tf

    tf.random.set_seed(seed)
    if mode == "full":
        tf.config.experimental.enable_op_determinism()
