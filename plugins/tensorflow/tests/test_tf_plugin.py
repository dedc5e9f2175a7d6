"""The tensorflow plugin's hook registers its format with the core's class and adapter factory.

Registration checks, the light import and the entry point are part of the conformance battery
(``TestTensorflowBackend`` in test_tensorflow_e2e.py).
"""

from __future__ import annotations

from bioimageio_run_tensorflow import create_adapter, plugin

from bioimageio_core.plugin import TensorflowSavedModelBundleWeightsDescr
from bioimageio_core.plugin.testing import checked_weight_formats


def test_hook_registers_saved_model_bundle() -> None:
    (spec,) = checked_weight_formats(plugin, framework_modules=("tensorflow",)).values()
    assert spec.name == "tensorflow_saved_model_bundle"
    assert spec.entry_class is TensorflowSavedModelBundleWeightsDescr
    assert spec.create_adapter is create_adapter
    assert spec.is_available() is None
    assert spec.install_hint == ""  # the registry fills it in from the distribution
