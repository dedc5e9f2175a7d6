"""Tests of the ops that need optional packages (stardist, cellpose), run by the nox session
``tests_optional_ops`` with those packages installed (and required there).

Elsewhere a test module whose package is missing is not collected (the report header says so); the install hints shown without the
packages are tested in ``tests/plugins/test_ops.py``.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

REQUIRED = os.environ.get("BIOIMAGEIO_TEST_OPTIONAL_OPS") == "required"
PACKAGES = {
    "test_stardist_op.py": ("stardist", "bioimageio_numpy_models"),
    "test_cellpose_op.py": ("cellpose", "bioimageio_numpy_models"),
}
_missing = {
    module: [p for p in packages if importlib.util.find_spec(p) is None]
    for module, packages in PACKAGES.items()
}
if REQUIRED and any(_missing.values()):
    raise RuntimeError(
        f"optional packages missing for the optional op tests: {_missing}; the nox session "
        "tests_optional_ops installs them"
    )


# a module that imports a missing package cannot even be collected: it is left out, and the
# report header says so (the session tests_optional_ops requires every package)
collect_ignore = [module for module, missing in _missing.items() if missing]


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"optional op tests not collected: {module} (not installed: {', '.join(missing)})"
        for module, missing in _missing.items()
        if missing
    ]
