"""unload() drops the module (and its memory); the adapter is a context manager."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from bioimageio_run_torch._adapter import TorchAdapter
from bioimageio_run_torch.plugin import (
    create_pytorch_state_dict_adapter,
    create_torchscript_adapter,
)
from torch_helpers import make_request, scripted_model_rdf, seeded, state_dict_model_rdf

from bioimageio_core.plugin import PluginError


def _request(
    folder: Path, nets: ModuleType, weights_format: str, devices: tuple[str, ...] | None = ("cpu",)
) -> Any:
    module = seeded(nets.TinyConv)
    x = np.ones((1, 1, 4, 4), np.float32)
    if weights_format == "torchscript":
        rdf = scripted_model_rdf(folder, module, x)
    else:
        rdf = state_dict_model_rdf(folder, module, x)
    return make_request(folder, rdf, weights_format, devices=devices)


CREATE = {
    "torchscript": create_torchscript_adapter,
    "pytorch_state_dict": create_pytorch_state_dict_adapter,
}


@pytest.mark.parametrize("weights_format", sorted(CREATE))
def test_unload_frees_the_module(weights_format: str, nets: ModuleType, model_dir: Path) -> None:
    adapter = CREATE[weights_format](_request(model_dir, nets, weights_format))
    assert isinstance(adapter, TorchAdapter)
    assert adapter.is_loaded
    adapter.forward({"raw": np.ones((1, 1, 4, 4), np.float32)})
    module_ref = weakref.ref(adapter._module)  # type: ignore[arg-type]
    parameter_refs = [weakref.ref(p) for p in adapter._module.parameters()]  # type: ignore[union-attr]
    adapter.unload()
    assert not adapter.is_loaded
    assert module_ref() is None
    assert all(ref() is None for ref in parameter_refs)
    adapter.unload()  # idempotent
    with pytest.raises(PluginError, match="unloaded"):
        adapter.forward({"raw": np.ones((1, 1, 4, 4), np.float32)})


@pytest.mark.parametrize("weights_format", sorted(CREATE))
def test_context_manager_unloads(weights_format: str, nets: ModuleType, model_dir: Path) -> None:
    with CREATE[weights_format](_request(model_dir, nets, weights_format)) as adapter:
        assert isinstance(adapter, TorchAdapter)
        module_ref = weakref.ref(adapter._module)  # type: ignore[arg-type]
    assert not adapter.is_loaded
    gc.collect()
    assert module_ref() is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("weights_format", sorted(CREATE))
def test_cuda_memory_is_returned(weights_format: str, nets: ModuleType, model_dir: Path) -> None:
    torch.cuda.empty_cache()
    baseline = torch.cuda.memory_allocated()
    adapter = CREATE[weights_format](_request(model_dir, nets, weights_format, devices=("cuda:0",)))
    x = np.random.default_rng(0).standard_normal((1, 1, 4, 4)).astype(np.float32)
    on_gpu = adapter.forward({"raw": x})["out"]
    reference = seeded(nets.TinyConv)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(on_gpu, expected, rtol=1e-4, atol=1e-5)
    assert torch.cuda.memory_allocated() > baseline
    adapter.unload()
    assert torch.cuda.memory_allocated() == baseline
    assert torch.cuda.memory_reserved() == 0 or torch.cuda.memory_reserved() <= baseline
