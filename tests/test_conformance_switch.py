"""BIOIMAGEIO_TEST_CONFORMANCE=required turns a skip for missing conformance data into a failure."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
SKIPPING_TESTS = '''
import pytest

def test_skipped_inside():
    pytest.skip("conformance data not found at /nowhere")

def test_other_skip():
    pytest.skip("something else is missing")
'''
SKIPPING_MODULE = '''
import pytest

pytest.skip("conformance data not found at /nowhere", allow_module_level=True)

def test_never_collected():
    pass
'''


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(ROOT_CONFTEST.read_text())
    pytester.makepyfile(test_inside=SKIPPING_TESTS, test_module=SKIPPING_MODULE)
    return pytester


def test_missing_data_skips_by_default(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BIOIMAGEIO_TEST_CONFORMANCE", raising=False)
    result = suite.runpytest_subprocess()
    result.assert_outcomes(skipped=3)


def test_missing_data_fails_when_required(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIOIMAGEIO_TEST_CONFORMANCE", "required")
    result = suite.runpytest_subprocess("--continue-on-collection-errors")
    result.assert_outcomes(failed=1, skipped=1, errors=1)
    result.stdout.fnmatch_lines(["*BIOIMAGEIO_TEST_CONFORMANCE=required*"])
