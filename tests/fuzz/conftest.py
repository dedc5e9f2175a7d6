"""Fixtures of the fuzz suite (helpers in ``fuzz_support``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from fuzz_models import seed_v0_4, seed_v0_5, write_files
from fuzz_support import FuzzModels, WriteGuard
from optional import skip_module, unmet_dists

from bioimageio_core import plugins

skip_module(unmet_dists("numpy_models", what="the fuzz suite"))

_GUARD = WriteGuard()
sys.addaudithook(_GUARD)


@pytest.fixture(scope="session")
def write_guard() -> WriteGuard:
    return _GUARD


@pytest.fixture(scope="module")
def fuzz_models(tmp_path_factory: pytest.TempPathFactory) -> FuzzModels:
    folder = tmp_path_factory.mktemp("fuzz-model")
    sha = write_files(folder)
    return FuzzModels(
        folder,
        {"0.5": seed_v0_5(sha), "0.4": seed_v0_4(sha)},
        tmp_path_factory.getbasetemp(),
    )


@pytest.fixture(autouse=True)
def _fuzz_environment(
    monkeypatch: pytest.MonkeyPatch, fuzz_models: FuzzModels
) -> Iterator[None]:
    # only the numpy test weight format (no framework, no model code); unreachable URLs fail fast
    monkeypatch.setenv("BIOIMAGEIO_LOAD_PLUGINS", "numpy_models")
    monkeypatch.setenv("BIOIMAGEIO_HTTP_TIMEOUT", "1")
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.chdir(fuzz_models.folder)
    plugins.reset()
    yield
    plugins.reset()
