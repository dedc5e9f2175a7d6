"""IEEE float32 convolutions on CUDA: the TF32 switches inside ``ieee_float32_convolutions`` and
their restoration.

The switches are process-wide flags that torch keeps on machines without a GPU too, so these
tests run everywhere; test_torch_cuda.py checks the numbers on a GPU.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from bioimageio_run_torch import precision
from bioimageio_run_torch.plugin import create_torchscript_adapter
from bioimageio_run_torch.precision import ALLOW_TF32_ENV, ieee_float32_convolutions, tf32_allowed
from torch_helpers import make_request, scripted_model_rdf, seeded

from bioimageio_core.plugin import PluginError

CUDNN: Any = torch.backends.cudnn  # the per-operation switches (torch >= 2.9) are untyped
HAS_PER_OPERATION_API = hasattr(CUDNN, "conv")


def _old_switch() -> bool | str:
    try:
        return bool(torch.backends.cudnn.allow_tf32)
    except RuntimeError:  # torch >= 2.9 after a mix of old and new switches
        return "mixed"


def _state() -> dict[str, Any]:
    """Every switch of TF32 in cuDNN, and the matmul precision (which must stay as it is)."""
    state: dict[str, Any] = {
        "cudnn": _old_switch(),
        "matmul": torch.get_float32_matmul_precision(),
    }
    if HAS_PER_OPERATION_API:
        state["conv"] = CUDNN.conv.fp32_precision
        state["rnn"] = CUDNN.rnn.fp32_precision
    return state


def _convolutions_use_no_tf32() -> bool:
    """Read through the old switch and, where torch has them, the per-operation ones."""
    per_operation = not HAS_PER_OPERATION_API or (
        CUDNN.conv.fp32_precision == CUDNN.rnn.fp32_precision == "ieee"
    )
    return _old_switch() is False and per_operation


@pytest.fixture(autouse=True)
def _restore_torch_flags() -> Iterator[None]:
    state = _state()
    yield
    if state["cudnn"] != "mixed":
        torch.backends.cudnn.allow_tf32 = state["cudnn"]
    if HAS_PER_OPERATION_API:
        CUDNN.conv.fp32_precision = state["conv"]
        CUDNN.rnn.fp32_precision = state["rnn"]
    torch.set_float32_matmul_precision(state["matmul"])


def _torch_default() -> None:
    pass


def _tf32_everywhere() -> None:
    torch.backends.cudnn.allow_tf32 = True
    torch.set_float32_matmul_precision("high")


def _legacy_off() -> None:
    torch.backends.cudnn.allow_tf32 = False


def _per_operation_mix() -> None:
    if not HAS_PER_OPERATION_API:
        pytest.skip(f"torch {torch.__version__} has no per-operation fp32_precision")
    CUDNN.conv.fp32_precision = "tf32"
    CUDNN.rnn.fp32_precision = "ieee"


SETUPS: dict[str, Callable[[], None]] = {
    "torch default": _torch_default,
    "tf32 everywhere": _tf32_everywhere,
    "cudnn tf32 off": _legacy_off,
    "per-operation mix": _per_operation_mix,
}


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_ieee_inside_and_restored_after(setup: str) -> None:
    SETUPS[setup]()
    before = _state()
    with ieee_float32_convolutions():
        assert _convolutions_use_no_tf32()
        assert torch.get_float32_matmul_precision() == before["matmul"]
    assert _state() == before


def test_restored_after_an_exception() -> None:
    _tf32_everywhere()
    before = _state()
    with pytest.raises(RuntimeError, match="boom"), ieee_float32_convolutions():
        raise RuntimeError("boom")
    assert _state() == before


def test_torch_without_per_operation_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch < 2.9 only has the global switches; the same behaviour through them."""
    monkeypatch.setattr(precision, "_per_operation_settings", lambda: None)
    _tf32_everywhere()
    before = _state()
    assert before["cudnn"] is True
    with ieee_float32_convolutions():
        assert _old_switch() is False
    assert _state() == before


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("", False), ("0", False), ("false", False), ("1", True), (" Yes ", True)],
)
def test_allow_tf32_setting(value: str | None, expected: bool) -> None:
    environ = {} if value is None else {ALLOW_TF32_ENV: value}
    assert tf32_allowed(environ) is expected


def test_invalid_allow_tf32_setting() -> None:
    with pytest.raises(PluginError, match=f"{ALLOW_TF32_ENV} must be 1 or 0; got 'maybe'"):
        tf32_allowed({ALLOW_TF32_ENV: "maybe"})


def test_cpu_forward_leaves_the_switches_alone(
    nets: ModuleType, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered: list[bool] = []

    def spy() -> Any:
        entered.append(True)
        return ieee_float32_convolutions()

    monkeypatch.setattr("bioimageio_run_torch._adapter.ieee_float32_convolutions", spy)
    x = np.ones((1, 1, 4, 4), np.float32)
    rdf = scripted_model_rdf(model_dir, seeded(nets.TinyConv), x)
    adapter = create_torchscript_adapter(
        make_request(model_dir, rdf, "torchscript", devices=("cpu",))
    )
    adapter.forward({"raw": x})
    assert entered == []


def test_invalid_setting_fails_when_the_model_is_loaded(
    nets: ModuleType, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALLOW_TF32_ENV, "2")
    x = np.ones((1, 1, 4, 4), np.float32)
    rdf = scripted_model_rdf(model_dir, seeded(nets.TinyConv), x)
    with pytest.raises(PluginError, match=ALLOW_TF32_ENV):
        create_torchscript_adapter(make_request(model_dir, rdf, "torchscript", devices=("cpu",)))
