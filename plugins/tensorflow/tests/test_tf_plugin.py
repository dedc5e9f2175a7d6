"""The tensorflow plugin's hook registers its format; importing it imports no tensorflow."""

from __future__ import annotations

from pathlib import Path

from bioimageio_run_tensorflow import create_adapter, plugin

from bioimageio_core import plugins
from bioimageio_core.plugin_testing import (
    assert_import_is_light,
    check_entry_point,
    checked_weight_formats,
)
from bioimageio_core.spec import TensorflowSavedModelBundleWeightsDescr

PLUGIN_ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("tensorflow",)


def test_hook_registers_saved_model_bundle() -> None:
    (spec,) = checked_weight_formats(plugin, framework_modules=FRAMEWORKS).values()
    assert spec.name == "tensorflow_saved_model_bundle"
    assert spec.entry_class is TensorflowSavedModelBundleWeightsDescr
    assert spec.create_adapter is create_adapter
    assert spec.is_available() is None
    assert spec.install_hint == ""  # the registry fills it in from the distribution


def test_plugin_import_does_not_import_tensorflow() -> None:
    assert_import_is_light(
        "bioimageio_run_tensorflow.plugin",
        FRAMEWORKS,
        call="tensorflow_unavailable",
        path=[PLUGIN_ROOT],
    )


def test_entry_point_when_installed() -> None:
    loaded = check_entry_point(
        "bioimageio-run-tensorflow", "tensorflow", "bioimageio_run_tensorflow.plugin"
    )
    assert loaded is plugin
    # the install hint a user reads comes from the entry point's distribution
    assert plugins.weight_formats()["tensorflow_saved_model_bundle"].install_hint == "pip install bioimageio-run-tensorflow"
