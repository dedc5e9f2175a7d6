"""Tests of the ops that need optional packages (stardist, cellpose), run by the nox session
``tests_optional_ops`` with those packages installed (and required there).

Elsewhere these tests are skipped when a package is missing; the install hints shown without the
packages are tested in ``tests/plugins/test_ops.py``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        path = Path(str(item.fspath))
        missing = _missing.get(path.name) if path.parent == here else None
        if missing:
            item.add_marker(pytest.mark.skip(reason=f"not installed: {', '.join(missing)}"))
