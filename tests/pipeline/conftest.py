"""Pipeline tests run real models of the ``numpy_conv`` weight format (tests/plugin_dists/numpy_models)."""

from __future__ import annotations

from pathlib import Path

import pytest
from optional import skip_folder, unmet_dists

MISSING = unmet_dists("numpy_models", what="pipeline tests")
HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip this folder's tests (only these) when the test distribution is not installed."""
    skip_folder(MISSING, HERE, items)
