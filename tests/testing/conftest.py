"""Fixtures for model-testing and CLI tests: small ``numpy_conv`` / ``toy_scale`` models on disk.

The models run through the test weight formats of ``tests/plugin_dists`` (no deep-learning
framework); they are written by ``model_testing_helpers``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from model_testing_helpers import MakeModel, write_model
from optional import skip_folder, unmet_dists

from bioimageio_core import plugins

_RUN_MODELS = {
    "test_model_testing.py",
    "test_model_testing_tolerance.py",
    "test_cli_test.py",
    "test_cli_predict.py",
    "test_cli_predict_stats.py",
    "test_docs_porting.py",
    "test_cli_outputs_complete.py",
    "test_cli_predict_containers.py",
}
"""Test modules that run models through the test weight formats."""
_MISSING = unmet_dists("numpy_models", "toy", what="tests that run models")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests of this folder that run models when the test plugins are missing."""
    skip_folder(_MISSING, Path(__file__).parent, items, _RUN_MODELS)


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # only the test weight formats: installed backend plugins (onnx, torch …) must not change
    # which formats these tests see as runnable
    monkeypatch.setenv("BIOIMAGEIO_LOAD_PLUGINS", "numpy_models,toy")
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture
def make_model(tmp_path: Path) -> MakeModel:
    """``make_model(name="model", **write_model kwargs) -> path of rdf.yaml``."""

    def make(name: str = "model", **kwargs: Any) -> Path:
        return write_model(tmp_path / name, **kwargs)

    return make
