from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from torch_helpers import import_nets, write_nets


@pytest.fixture(scope="session")
def nets(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The test networks, imported once as the reference the adapters are compared with."""
    return import_nets(write_nets(tmp_path_factory.mktemp("reference_nets")))


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A model folder holding the architecture file ``tiny_nets.py``."""
    write_nets(tmp_path)
    return tmp_path


def pytest_configure(config: pytest.Config) -> None:
    # torch 2.9+ deprecates TorchScript in favour of torch.export; the tests still export it
    config.addinivalue_line("filterwarnings", "ignore:`torch.jit.:DeprecationWarning")
