"""Fixtures for model-testing and CLI tests: small ``numpy_conv`` / ``toy_scale`` models on disk.

The models run through the test weight formats of ``tests/plugin_dists`` (no deep-learning
framework); they are written by ``model_testing_helpers``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bioimageio_core import plugins

REQUIRED = os.environ.get("BIOIMAGEIO_TEST_PLUGIN_DISTS") == "required"

_missing = [
    name
    for name, dist in (
        ("bioimageio_numpy_models", "tests/plugin_dists/numpy_models"),
        ("bioimageio_toy_plugin", "tests/plugin_dists/toy"),
    )
    if importlib.util.find_spec(name) is None
]
if _missing:
    reason = (
        f"test plugin distributions {_missing} are not installed; install them with "
        "`pip install -c constraints.txt -e tests/plugin_dists/numpy_models -e "
        "tests/plugin_dists/toy` (the nox `tests` session does)"
    )
    if REQUIRED:
        raise RuntimeError(reason)
    pytest.skip(reason, allow_module_level=True)

from model_testing_helpers import MakeModel, write_model  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture
def make_model(tmp_path: Path) -> MakeModel:
    """``make_model(name="model", **write_model kwargs) -> path of rdf.yaml``."""

    def make(name: str = "model", **kwargs: Any) -> Path:
        return write_model(tmp_path / name, **kwargs)

    return make
