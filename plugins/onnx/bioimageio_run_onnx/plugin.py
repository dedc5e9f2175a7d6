"""Hook implementations of the onnx plugin (entry point ``onnx`` in group ``bioimageio_core``)."""

from __future__ import annotations

from bioimageio_core.plugin import (
    OnnxWeightsDescr,
    WeightFormatRegister,
    WeightFormatSpec,
    hookimpl,
    missing_module,
)
from bioimageio_run_onnx.adapter import create_adapter
from bioimageio_run_onnx.providers import devices_of_providers

DISTRIBUTION = "bioimageio-run-onnx"
"""The distribution of this plugin (install hints default to ``pip install`` of it)."""


def onnx_unavailable() -> str | None:
    """None when onnxruntime can be imported here, else why not (imports nothing)."""
    return missing_module("onnxruntime")


def list_onnx_devices() -> list[str]:
    """The devices onnxruntime can run on here (``WeightFormatSpec.list_devices``)."""
    import onnxruntime

    return devices_of_providers(onnxruntime.get_available_providers())


@hookimpl
def bioimageio_weight_formats(register: WeightFormatRegister) -> None:
    register.add(
        WeightFormatSpec(
            name="onnx",
            entry_class=OnnxWeightsDescr,
            create_adapter=create_adapter,
            is_available=onnx_unavailable,
            priority=20,
            list_devices=list_onnx_devices,
        )
    )
