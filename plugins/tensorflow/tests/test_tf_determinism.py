"""The tensorflow plugin seeds TensorFlow when the core asks for deterministic runs."""

from __future__ import annotations

import numpy as np

from bioimageio_core import plugins
from bioimageio_core.testing import enable_determinism


def test_core_enable_determinism_seeds_tensorflow_through_the_plugin() -> None:
    import tensorflow as tf

    plugins.reset()
    enable_determinism("seed_only", ["tensorflow_saved_model_bundle"])
    first = tf.random.uniform((4,)).numpy()
    tf.random.set_seed(0)
    np.testing.assert_array_equal(first, tf.random.uniform((4,)).numpy())
