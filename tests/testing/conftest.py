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
from model_testing_helpers import MakeModel, write_model

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
_REASON = (
    f"test plugin distributions {_missing} are not installed; install them with "
    "`pip install -c constraints.txt -e tests/plugin_dists/numpy_models -e "
    "tests/plugin_dists/toy` (the nox `tests` session does)"
)
if _missing and REQUIRED:
    raise RuntimeError(_REASON)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests of this folder that run models when the test plugins are missing."""
    if not _missing:
        return
    here = Path(__file__).parent
    for item in items:
        path = Path(str(item.fspath))
        if path.parent == here and path.name in _RUN_MODELS:
            item.add_marker(pytest.mark.skip(reason=_REASON))


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
