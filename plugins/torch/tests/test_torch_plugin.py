"""The plugin module: registration through pluggy, availability, no torch import, entry point."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import pytest
from bioimageio_run_torch import plugin

from bioimageio_core.plugin import PluginError, UnsupportedWeightFormatError, WeightFormatSpec
from bioimageio_core.plugin import registry as plugins
from bioimageio_core.plugin.testing import (
    assert_import_is_light,
    check_entry_point,
    checked_weight_formats,
)

PLUGIN_ROOT = Path(__file__).resolve().parents[1]


def _registered() -> dict[str, WeightFormatSpec]:
    return checked_weight_formats(plugin, framework_modules=("torch",))


def test_registers_both_formats_in_priority_order() -> None:
    specs = _registered()
    assert sorted(specs) == ["pytorch_state_dict", "torchscript"]
    assert specs["torchscript"].priority < specs["pytorch_state_dict"].priority
    assert specs["torchscript"].create_adapter is plugin.create_torchscript_adapter
    assert specs["pytorch_state_dict"].create_adapter is plugin.create_pytorch_state_dict_adapter
    for spec in specs.values():
        assert spec.is_available() is None
        assert spec.install_hint == ""  # the registry fills it in from the distribution


def test_entry_classes_are_the_spec_classes() -> None:
    from bioimageio_core.plugin import spec as spec_package

    specs = _registered()
    assert specs["torchscript"].entry_class is spec_package.TorchscriptWeightsDescr
    assert specs["pytorch_state_dict"].entry_class is spec_package.PytorchStateDictWeightsDescr


def test_missing_spec_class_is_a_plugin_error() -> None:
    with pytest.raises(PluginError, match="bioimageio_core.spec has no class NoSuchWeightsDescr"):
        plugin._spec_class("NoSuchWeightsDescr")


def test_unavailable_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "torch" else real_find_spec(name, *a),
    )
    reason = plugin.torch_missing_reason()
    assert reason == "torch is not installed"
    check_entry_point("bioimageio-run-torch", "torch", "bioimageio_run_torch.plugin")
    # what a user reads: the reason, and what to install (from the entry point's distribution)
    with pytest.raises(UnsupportedWeightFormatError) as info:
        plugins.choose_weight_format(["torchscript", "pytorch_state_dict"])
    text = str(info.value)
    assert "torch is not installed" in text and "pip install bioimageio-run-torch" in text


def test_plugin_import_does_not_import_torch() -> None:
    assert_import_is_light("bioimageio_run_torch", ("torch",), path=[PLUGIN_ROOT])
    assert_import_is_light(
        "bioimageio_run_torch.plugin", ("torch",), call="torch_missing_reason", path=[PLUGIN_ROOT]
    )


def test_entry_point_is_declared() -> None:
    pyproject = (PLUGIN_ROOT / "pyproject.toml").read_text()
    assert (
        '[project.entry-points.bioimageio_core]\ntorch = "bioimageio_run_torch.plugin"' in pyproject
    )
    loaded = check_entry_point("bioimageio-run-torch", "torch", "bioimageio_run_torch.plugin")
    assert loaded is plugin
