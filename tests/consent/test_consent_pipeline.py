"""Loading a model: a format whose code is refused gives way to one that needs none, and a
refusal the user has to act on reaches them unwrapped."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

from bioimageio_core.adapter_loading import create_model_adapter, load_model_adapter
from bioimageio_core.adapters import AdapterRequest, ModelAdapter
from bioimageio_core.errors import PluginError, RemoteCodeError
from bioimageio_core.hookspecs import WeightFormatRegister, WeightFormatSpec, hookimpl
from bioimageio_core.plugin.testing import (
    ModelDef,
    WeightsDef,
    build_model,
    model_description,
    only_plugins,
)
from bioimageio_core.sources import UrlRoot
from bioimageio_core.spec import ModelDescr
from bioimageio_core.spec.weights import BUILTIN_WEIGHT_FORMATS

CODE, DATA = "pytorch_state_dict", "onnx"


class _Scale(ModelAdapter):
    """Multiplies by a constant; for CODE, asks for consent first like a backend with code."""

    def __init__(self, request: AdapterRequest) -> None:
        super().__init__(request)
        if request.weights_format == CODE:
            request.require_code_consent("the network code", loc=f"$.weights.{CODE}.source")
        self.factor = 3.0 if request.weights_format == CODE else 2.0

    def forward(self, inputs: Mapping[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
        (x,) = self.ordered_inputs(inputs)
        assert x is not None
        return self.outputs_by_id([x * self.factor])

    def unload(self) -> None:
        pass


class _Plugin:
    @hookimpl
    def bioimageio_weight_formats(self, register: WeightFormatRegister) -> None:
        for priority, name in enumerate((CODE, DATA)):  # the code format would be preferred
            register.add(
                WeightFormatSpec(name, BUILTIN_WEIGHT_FORMATS[name], _Scale, lambda: None, priority)
            )


@pytest.fixture(autouse=True)
def _only_this_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("BIOIMAGEIO_ALLOW_REMOTE_CODE", raising=False)
    with only_plugins({"scale": _Plugin()}):
        yield


def _remote_model(tmp_path: Path, formats: tuple[str, ...]) -> ModelDescr:
    (tmp_path / "w.bin").write_bytes(b"w")
    entries = {
        CODE: {"architecture": {"source": "net.py", "callable": "Net"}, "pytorch_version": "2.13"},
        DATA: {"opset_version": 17},
    }
    x = np.ones((1, 1, 2, 2), np.float32)
    weights = [WeightsDef(f, "w.bin", entries[f]) for f in formats]
    model = ModelDef.from_arrays("remote model", {"raw": x}, {"out": x}, weights, letters="bcyx")
    raw = model_description(tmp_path, model)
    return attrs.evolve(build_model(raw, tmp_path), root=UrlRoot("https://example.com/m/"))


def test_a_refused_format_gives_way_to_one_without_code(tmp_path: Path) -> None:
    model = _remote_model(tmp_path, (CODE, DATA))
    adapter, chosen = load_model_adapter(model)
    assert chosen == DATA
    # the same through the public API, with the plugins' priorities or an order of the user's
    x = np.ones((1, 1, 2, 2), np.float32)
    for order in (None, [CODE, DATA]):
        adapter = create_model_adapter(model, weight_format_priority_order=order)
        np.testing.assert_array_equal(adapter.forward({"raw": x})["out"], x * 2.0)


def test_a_chosen_format_that_is_refused_raises_the_refusal(tmp_path: Path) -> None:
    model = _remote_model(tmp_path, (CODE, DATA))
    with pytest.raises(RemoteCodeError) as info:
        load_model_adapter(model, weights_format=CODE)
    assert info.value.loc == f"$.weights.{CODE}.source"
    with pytest.raises(RemoteCodeError):
        create_model_adapter(model, weights_format=CODE)
    with pytest.raises(RemoteCodeError):
        create_model_adapter(model, weight_format_priority_order=[CODE])


def test_the_only_format_refused_raises_the_refusal(tmp_path: Path) -> None:
    with pytest.raises(RemoteCodeError, match="refusing to run the network code"):
        load_model_adapter(_remote_model(tmp_path, (CODE,)))


def test_consent_lets_the_preferred_format_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIOIMAGEIO_ALLOW_REMOTE_CODE", "1")
    _, chosen = load_model_adapter(_remote_model(tmp_path, (CODE, DATA)))
    assert chosen == CODE


def test_other_failures_keep_the_refusal_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _remote_model(tmp_path, (CODE, DATA))

    def broken(self: _Scale, request: AdapterRequest) -> None:
        if request.weights_format == DATA:
            raise RuntimeError("broken data format")
        original(self, request)

    original = _Scale.__init__
    monkeypatch.setattr(_Scale, "__init__", broken)
    for order in (None, [CODE, DATA]):
        with pytest.raises(PluginError) as info:
            create_model_adapter(model, weight_format_priority_order=order)
        assert "RemoteCodeError: refusing to run the network code" in str(info.value)
        assert "broken data format" in str(info.value)
        assert info.value.hint is not None and "--allow-remote-code" in info.value.hint
