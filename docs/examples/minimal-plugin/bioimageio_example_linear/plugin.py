"""Hook implementations: the module the entry point names.

bioimageio-run imports this module whenever it loads plugins (``bioimageio-run plugins``, loading a
description, predicting), so it imports only light modules. Hook implementations take exactly the
hook's parameters, without defaults. Everything comes from one module, ``bioimageio_core.plugin``;
install hints default to ``pip install bioimageio-run-example-linear`` (this distribution).
"""

from __future__ import annotations

from bioimageio_core.plugin import (
    OpRegister,
    OpSpec,
    WeightFormatRegister,
    WeightFormatSpec,
    hookimpl,
    missing_module,
)
from bioimageio_example_linear.linear import LinearNpzWeightsDescr, create_adapter
from bioimageio_example_linear.power import PowerKwargs, apply_power, power_measures


def linear_npz_is_available() -> str | None:
    """None when ``linear_npz`` weights can run here, else why not (never imports the framework)."""
    # a real backend checks its framework, e.g. missing_module("onnxruntime"); this one needs numpy
    return missing_module("numpy")


@hookimpl
def bioimageio_weight_formats(register: WeightFormatRegister) -> None:
    register.add(
        WeightFormatSpec(
            name="linear_npz",
            entry_class=LinearNpzWeightsDescr,
            create_adapter=create_adapter,
            is_available=linear_npz_is_available,
            priority=60,
        )
    )


@hookimpl
def bioimageio_processing_ops(register: OpRegister) -> None:
    register.add(
        OpSpec(
            id="example_power",
            kwargs_classes=(PowerKwargs,),
            apply=apply_power,
            required_measures=power_measures,
        )
    )
