"""The keras plugin seeds Keras when the core asks for deterministic runs."""

from __future__ import annotations

import os

import numpy as np
import pytest

from bioimageio_core import enable_determinism
from bioimageio_core.plugin import registry as plugins


def test_core_enable_determinism_seeds_keras_through_the_plugin() -> None:
    plugins.reset()
    np.random.seed(123)
    enable_determinism("seed_only", ["keras_hdf5", "keras_v3"])
    # keras.utils.set_random_seed(0) seeds Python, numpy and the backend
    np.testing.assert_array_equal(np.random.random(3), np.random.RandomState(0).random_sample(3))


def test_full_determinism_turns_tensorflows_onednn_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """For the TensorFlow backend, set before TensorFlow's first import (read only then)."""
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    plugins.reset()
    enable_determinism("seed_only", ["keras_hdf5"])
    assert "TF_ENABLE_ONEDNN_OPTS" not in os.environ
    enable_determinism("full", ["keras_hdf5"])
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")  # a user's own choice stays
    enable_determinism("full", ["keras_v3"])
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"
