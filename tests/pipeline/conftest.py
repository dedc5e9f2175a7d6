"""Pipeline tests run real models of the ``numpy_conv`` weight format (tests/plugin_dists/numpy_models)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REQUIRED = os.environ.get("BIOIMAGEIO_TEST_PLUGIN_DISTS") == "required"

MISSING = (
    "the numpy_models test distribution is not installed; install it with "
    "`pip install -c constraints.txt -e tests/plugin_dists/numpy_models` (the nox `tests` "
    "session does)"
    if importlib.util.find_spec("bioimageio_numpy_models") is None
    else None
)
if MISSING and REQUIRED:
    raise RuntimeError(MISSING)

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip this folder's tests (only these) when the test distribution is not installed."""
    if MISSING is None:
        return
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.skip(reason=MISSING))
