"""Distributed prediction tests need the ``distributed`` extra (dask[distributed], zarr) and
the ``numpy_conv`` test models; without them this folder is skipped with the reason, except
under ``BIOIMAGEIO_TEST_DISTRIBUTED=required`` (the nox ``tests_distributed`` session), where it
fails."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from optional import skip_folder, unmet

MISSING = unmet(
    {
        "distributed extra": ("dask", "distributed", "zarr"),
        "tests/plugin_dists/numpy_models": ("bioimageio_numpy_models",),
    },
    "distributed tests",
    "-e '.[distributed,test]' -e tests/plugin_dists/numpy_models",
    variable="BIOIMAGEIO_TEST_DISTRIBUTED",
    session="tests_distributed",
)
HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "pipeline"))  # the numpy_conv test models


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip this folder's tests (only these) when the extra or the test models are missing."""
    skip_folder(MISSING, HERE, items)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A local cluster of 2 worker processes with 1 thread each (CI has 2 cores)."""
    from bioimageio_core.execution.distributed import close_client, start_local_cluster

    c = start_local_cluster(2, threads=1)
    try:
        yield c
    finally:
        close_client(c, own_cluster=True)
