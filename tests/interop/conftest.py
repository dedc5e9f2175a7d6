"""Fixtures of the interoperability tests with the reference format library (bioimageio.spec).

These tests run in the nox session ``interop``, which installs ``bioimageio.spec==0.5.14.3`` in
its own environment (it is never a dependency of bioimageio-run). Elsewhere they skip, unless
``BIOIMAGEIO_TEST_INTEROP=required`` (set by the session) turns a missing library into a
failure. The conformance data (``../shared/conformance``) is needed by some of them:
``BIOIMAGEIO_TEST_CONFORMANCE=required`` (the session's default) makes its absence a failure
instead of a skip.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

REFERENCE_VERSION = "0.5.14.3"
REQUIRED = os.environ.get("BIOIMAGEIO_TEST_INTEROP") == "required"
CONFORMANCE_REQUIRED = os.environ.get("BIOIMAGEIO_TEST_CONFORMANCE") == "required"
CONFORMANCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "conformance"


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (BIOIMAGEIO_TEST_INTEROP=required)", pytrace=False)
    pytest.skip(f"{reason}; run `nox -s interop`")


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The reference library ``bioimageio.spec``, quiet, with its own cache folder."""
    cache = tmp_path_factory.mktemp("reference-cache")
    before = os.environ.get("BIOIMAGEIO_CACHE_PATH")
    os.environ["BIOIMAGEIO_CACHE_PATH"] = str(cache)  # read once, when the library is imported
    try:
        spec = importlib.import_module("bioimageio.spec")
    except ImportError:
        _unavailable("the reference library bioimageio.spec is not installed")
    finally:
        if before is None:
            os.environ.pop("BIOIMAGEIO_CACHE_PATH", None)
        else:
            os.environ["BIOIMAGEIO_CACHE_PATH"] = before
    version = str(getattr(spec, "__version__", "?"))
    if version != REFERENCE_VERSION:
        _unavailable(
            f"bioimageio.spec {version} is installed, the tests are for {REFERENCE_VERSION}"
        )
    from loguru import logger

    logger.remove()  # its log lines would drown the test output
    yield spec


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    """``../shared/conformance``; a failure when missing under BIOIMAGEIO_TEST_CONFORMANCE=required."""
    if not (CONFORMANCE / "rdfs" / "MANIFEST.tsv").is_file():
        reason = f"conformance data not found at {CONFORMANCE}"
        if CONFORMANCE_REQUIRED:
            pytest.fail(f"{reason} (BIOIMAGEIO_TEST_CONFORMANCE=required)", pytrace=False)
        pytest.skip(reason)
    return CONFORMANCE.resolve()
