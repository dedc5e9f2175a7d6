"""enable_determinism seeds torch and switches deterministic algorithms."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from bioimageio_run_torch import enable_determinism


@pytest.fixture(autouse=True)
def _restore_torch_state() -> Iterator[None]:
    deterministic = torch.are_deterministic_algorithms_enabled()
    cudnn = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    rng = torch.get_rng_state()
    yield
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = cudnn
    torch.set_rng_state(rng)


@pytest.mark.parametrize("seed", [0, 7])
def test_seed_repeats_random_numbers(seed: int) -> None:
    enable_determinism(seed=seed)
    first = torch.rand(5)
    torch.rand(3)
    enable_determinism(seed=seed)
    assert torch.equal(torch.rand(5), first)
    torch.manual_seed(seed)
    assert torch.equal(torch.rand(5), first)


def test_modes() -> None:
    enable_determinism("full")
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    enable_determinism("seed_only")
    assert not torch.are_deterministic_algorithms_enabled()


def test_unknown_mode() -> None:
    with pytest.raises(ValueError, match="'seed_only' or 'full'"):
        enable_determinism("strict")  # type: ignore[arg-type]


def test_core_enable_determinism_seeds_torch_through_the_plugin() -> None:
    from bioimageio_core import enable_determinism as core_enable_determinism
    from bioimageio_core.plugin import registry as plugins

    plugins.reset()
    torch.manual_seed(123)
    core_enable_determinism("seed_only", ["torchscript"])
    first = torch.rand(4)
    torch.manual_seed(0)
    assert torch.equal(first, torch.rand(4))
    core_enable_determinism("full", ["pytorch_state_dict"])
    assert torch.are_deterministic_algorithms_enabled()
