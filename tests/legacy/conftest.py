"""Fixtures for the legacy (0.3/0.4) tests: a small valid 0.4 model and the conformance corpus."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from _legacy_data import CORPUS, MODEL_V0_4


@pytest.fixture
def model_v0_4() -> Callable[..., dict[str, Any]]:
    """A factory: a fresh valid 0.4 model, with top-level fields replaced by the keyword args."""

    def make(**fields: Any) -> dict[str, Any]:
        data = copy.deepcopy(MODEL_V0_4)
        data.update(copy.deepcopy(fields))
        return data

    return make


def corpus_file(name: str) -> dict[str, Any]:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"conformance data not found at {path}")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture
def load_corpus_file() -> Callable[[str], dict[str, Any]]:
    return corpus_file
