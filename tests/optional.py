"""Tests that need an optional package or a test distribution: skip with what to install, or,
where a nox session sets ``BIOIMAGEIO_TEST_<WHAT>=required``, fail instead.

Import as ``from optional import …`` (``tests/`` is on ``sys.path`` through ``tests/conftest.py``).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

import pytest

PLUGIN_DISTS = "BIOIMAGEIO_TEST_PLUGIN_DISTS"
"""The variable the nox sessions set to make missing test distributions a failure."""
TEST_DISTS = {
    "numpy_models": "bioimageio_numpy_models",
    "toy": "bioimageio_toy_plugin",
    "lab_catalog": "bioimageio_lab_catalog",
}
"""Import package of each test distribution, by its folder under ``tests/plugin_dists``."""


def unmet(
    needed: Mapping[str, Iterable[str]],
    what: str,
    install: str,
    *,
    variable: str,
    session: str = "tests",
) -> str | None:
    """Why ``what`` cannot run here (None: every module of ``needed`` is importable).

    ``needed`` maps why modules are needed (an extra, a test distribution's folder) to the
    modules; ``install`` is what to pass to ``pip install -c constraints.txt``. Raises
    ``RuntimeError`` with the reason when ``variable`` is ``required``.
    """
    missing = [
        f"{m} ({why})"
        for why, modules in needed.items()
        for m in modules
        if importlib.util.find_spec(m) is None
    ]
    if not missing:
        return None
    reason = (
        f"{what} need {', '.join(missing)}: pip install -c constraints.txt {install} "
        f"(the nox `{session}` session does)"
    )
    if os.environ.get(variable) == "required":
        raise RuntimeError(f"{reason} ({variable}=required)")
    return reason


def unmet_dists(*folders: str, what: str) -> str | None:
    """:func:`unmet` for test distributions (``folders``: names in :data:`TEST_DISTS`)."""
    return unmet(
        {f"tests/plugin_dists/{f}": (TEST_DISTS[f],) for f in folders},
        what,
        " ".join(f"-e tests/plugin_dists/{f}" for f in folders),
        variable=PLUGIN_DISTS,
    )


def skip_module(reason: str | None) -> None:
    """Skip the calling test module when ``reason`` is not None."""
    if reason is not None:
        pytest.skip(reason, allow_module_level=True)


def skip_folder(
    reason: str | None,
    folder: Path,
    items: list[pytest.Item],
    modules: Collection[str] | None = None,
) -> None:
    """In ``pytest_collection_modifyitems``: skip the items below ``folder`` (only those of the
    file names ``modules`` when given) when ``reason`` is not None."""
    if reason is None:
        return
    for item in items:
        if folder in item.path.parents and (modules is None or item.path.name in modules):
            item.add_marker(pytest.mark.skip(reason=reason))
