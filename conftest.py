"""Settings shared by every test folder (core tests and each plugin's tests)."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# CI runs the same examples every time (reproducible, no flaky failures); locally hypothesis
# explores new examples on each run. Select explicitly with HYPOTHESIS_PROFILE=ci|dev.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev")
# the long fuzzing run of `nox -s fuzz` (tests/fuzz): many more examples, new ones every run
settings.register_profile("fuzz", max_examples=2000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))

# Tests that read the published example models in ../shared/conformance skip with a reason that
# contains CONFORMANCE_MISSING when that folder is absent. BIOIMAGEIO_TEST_CONFORMANCE=required
# (set by .ci/run) turns every such skip, of a test or of a whole module, into a failure.
CONFORMANCE_MISSING = "conformance data not found"
CONFORMANCE_REQUIRED = os.environ.get("BIOIMAGEIO_TEST_CONFORMANCE") == "required"


def _fail_missing_conformance(report: pytest.TestReport | pytest.CollectReport) -> None:
    if CONFORMANCE_REQUIRED and report.skipped and CONFORMANCE_MISSING in str(report.longrepr):
        report.outcome = "failed"
        report.longrepr = f"{report.longrepr} (BIOIMAGEIO_TEST_CONFORMANCE=required)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[None, Any, None]:
    outcome = yield
    _fail_missing_conformance(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    _fail_missing_conformance(outcome.get_result())


CONFORMANCE = Path(__file__).resolve().parent / ".." / "shared" / "conformance"


@pytest.fixture
def conformance() -> Path:
    """The shared conformance data (published models); skips when ``../shared`` is absent."""
    if not CONFORMANCE.is_dir():
        pytest.skip(
            f"{CONFORMANCE_MISSING} at {CONFORMANCE} (needs ../shared next to the project)"
        )
    return CONFORMANCE.resolve()


@pytest.fixture
def unet2d_nuclei_broad(conformance: Path) -> Path:
    """The folder of the published model unet2d_nuclei_broad (onnx and torchscript weights)."""
    return conformance / "models" / "unet2d_nuclei_broad"


@pytest.fixture(params=["bioimageio.yaml", "v0_4_0.bioimageio.yaml", "v0_4_9.bioimageio.yaml"])
def unet2d_nuclei_broad_description(unet2d_nuclei_broad: Path, request: pytest.FixtureRequest) -> Path:
    """Each of its descriptions: format 0.5 and two 0.4 versions."""
    return unet2d_nuclei_broad / str(request.param)
