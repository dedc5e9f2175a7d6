"""The keras plugin seeds Keras when the core asks for deterministic runs."""

from __future__ import annotations

import numpy as np

from bioimageio_core import plugins
from bioimageio_core.testing import enable_determinism


def test_core_enable_determinism_seeds_keras_through_the_plugin() -> None:
    plugins.reset()
    np.random.seed(123)
    enable_determinism("seed_only", ["keras_hdf5", "keras_v3"])
    # keras.utils.set_random_seed(0) seeds Python, numpy and the backend
    np.testing.assert_array_equal(np.random.random(3), np.random.RandomState(0).random_sample(3))
