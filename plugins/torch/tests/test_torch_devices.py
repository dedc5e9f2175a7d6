"""Device strings and the choice of a device (pure; no GPU needed)."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from bioimageio_run_torch.devices import (
    Device,
    MachineDevices,
    choose_device,
    parse_device,
    torch_device,
)
from bioimageio_run_torch.plugin import create_torchscript_adapter
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from torch_helpers import make_request, scripted_model_rdf, seeded

from bioimageio_core.plugin import PluginError

NO_GPU = MachineDevices(cuda_count=0)
TWO_GPUS = MachineDevices(cuda_count=2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cpu", Device("cpu")),
        ("CPU", Device("cpu")),
        (" cuda ", Device("cuda")),
        ("cuda:0", Device("cuda", 0)),
        ("cuda:1", Device("cuda", 1)),
        ("mps", Device("mps")),
        ("cpu:0", Device("cpu")),
    ],
)
def test_parse_device(text: str, expected: Device) -> None:
    assert parse_device(text) == expected


@hypothesis_settings(max_examples=50)
@given(index=st.integers(0, 127), upper=st.booleans())  # torch keeps the index in an int8
def test_numbered_cuda_round_trips(index: int, upper: bool) -> None:
    text = f"cuda:{index}"
    device = parse_device(text.upper() if upper else text)
    assert device == Device("cuda", index)
    assert str(device) == text
    # torch agrees with our reading of the string
    parsed = torch.device(text)
    assert (parsed.type, parsed.index) == (device.type, device.index)


@pytest.mark.parametrize(
    "text", ["", "gpu", "cuda:", "cuda:-1", "cuda:x", "cuda 1", "tpu:0", "cpu:1", "mps:2"]
)
def test_invalid_device_strings(text: str) -> None:
    with pytest.raises(PluginError, match="cuda:N"):
        parse_device(text)


def test_default_is_cuda_when_available_else_cpu() -> None:
    assert choose_device(None, NO_GPU) == Device("cpu")
    assert choose_device((), NO_GPU) == Device("cpu")
    assert choose_device(None, TWO_GPUS) == Device("cuda")


def test_requested_devices_are_honoured() -> None:
    assert choose_device(("cpu",), TWO_GPUS) == Device("cpu")
    assert choose_device(("cuda:1",), TWO_GPUS) == Device("cuda", 1)
    assert choose_device(("mps",), MachineDevices(mps=True)) == Device("mps")


def test_cuda_without_gpu_is_a_clear_error() -> None:
    with pytest.raises(PluginError) as info:
        choose_device(("cuda",), NO_GPU)
    text = str(info.value)
    assert "no CUDA device" in text and "bioimageio-run-torch" in text and "'cpu'" in text


def test_cuda_index_beyond_the_machine() -> None:
    with pytest.raises(PluginError, match=r"has 2 CUDA device\(s\).*cuda:0, cuda:1"):
        choose_device(("cuda:2",), TWO_GPUS)


def test_mps_not_available() -> None:
    with pytest.raises(PluginError, match="MPS backend is not available"):
        choose_device(("mps",), NO_GPU)


def test_extra_devices_warn_and_first_is_used() -> None:
    with pytest.warns(UserWarning, match="ignoring cuda:1"):
        assert choose_device(("cuda:0", "cuda:1"), TWO_GPUS) == Device("cuda", 0)
    with pytest.raises(PluginError):  # a bad extra device is still reported
        choose_device(("cpu", "gpu"), TWO_GPUS)


def test_single_device_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        choose_device(("cpu",), TWO_GPUS)


def test_torch_device_on_this_machine() -> None:
    assert torch_device(("cpu",)) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert torch_device(None).type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_adapter_with_cuda_on_a_cpu_machine(nets: ModuleType, model_dir: Path) -> None:
    x = np.zeros((1, 1, 4, 4), np.float32)
    rdf = scripted_model_rdf(model_dir, seeded(nets.TinyConv), x)
    with pytest.raises(PluginError, match="no CUDA device"):
        create_torchscript_adapter(make_request(model_dir, rdf, "torchscript", devices=("cuda",)))
