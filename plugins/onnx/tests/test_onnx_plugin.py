"""The onnx plugin's hook registers the format with the core's class and its adapter factory.

Registration checks, the light import and the entry point are part of the conformance battery
(``TestOnnxBackend`` in test_onnx_e2e.py).
"""

from __future__ import annotations

from bioimageio_run_onnx import plugin
from bioimageio_run_onnx.adapter import create_adapter

from bioimageio_core.plugin import OnnxWeightsDescr
from bioimageio_core.plugin.testing import checked_weight_formats


def test_hook_registers_onnx() -> None:
    (spec,) = checked_weight_formats(plugin, framework_modules=("onnxruntime", "onnx")).values()
    assert spec.name == "onnx"
    assert spec.entry_class is OnnxWeightsDescr
    assert spec.create_adapter is create_adapter
    assert spec.is_available() is None
    assert spec.install_hint == ""  # the registry fills it in from the distribution
