"""The tensorflow plugin seeds TensorFlow when the core asks for deterministic runs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np

from bioimageio_core import enable_determinism
from bioimageio_core.plugin import registry as plugins


def test_core_enable_determinism_seeds_tensorflow_through_the_plugin() -> None:
    import tensorflow as tf

    plugins.reset()
    enable_determinism("seed_only", ["tensorflow_saved_model_bundle"])
    first = tf.random.uniform((4,)).numpy()
    tf.random.set_seed(0)
    np.testing.assert_array_equal(first, tf.random.uniform((4,)).numpy())


def _onednn_switch_at_tensorflow_import(mode: str, weights_format: str) -> str:
    """In a fresh interpreter: ``enable_determinism(mode, [weights_format])``, and the value of
    ``TF_ENABLE_ONEDNN_OPTS`` at the moment TensorFlow is first imported (``unset``; ``never``
    when it was not imported)."""
    code = textwrap.dedent(
        f"""
        import builtins, os
        seen = []
        real_import = builtins.__import__

        def watching_import(name, *args, **kwargs):
            if name.split(".")[0] == "tensorflow" and not seen:
                seen.append(os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"))
            return real_import(name, *args, **kwargs)

        builtins.__import__ = watching_import
        from bioimageio_core import enable_determinism
        enable_determinism({mode!r}, [{weights_format!r}])
        print(seen[0] if seen else "never")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return result.stdout.strip().splitlines()[-1]


def test_full_determinism_turns_onednn_off_before_tensorflow_is_imported() -> None:
    """The switch lives in the plugin's determinism hook (the core names no framework)."""
    assert _onednn_switch_at_tensorflow_import("full", "tensorflow_saved_model_bundle") == "0"
    assert _onednn_switch_at_tensorflow_import("seed_only", "tensorflow_saved_model_bundle") == (
        "unset"
    )
