"""Pipeline tests run real models of the ``numpy_conv`` weight format (tests/plugin_dists/numpy_models)."""

from __future__ import annotations

import importlib.util
import os

import pytest

REQUIRED = os.environ.get("BIOIMAGEIO_TEST_PLUGIN_DISTS") == "required"

if importlib.util.find_spec("bioimageio_numpy_models") is None:
    reason = (
        "the numpy_models test distribution is not installed; install it with "
        "`pip install -c constraints.txt -e tests/plugin_dists/numpy_models` (the nox `tests` "
        "session does)"
    )
    if REQUIRED:
        raise RuntimeError(reason)
    pytest.skip(reason, allow_module_level=True)
