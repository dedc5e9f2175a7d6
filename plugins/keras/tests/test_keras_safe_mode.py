"""Keras files are data: Python code inside them (Lambda layers) is never deserialised.

``safe_mode`` stays on whatever the model's origin (local or fetched, consent or not): a Lambda
layer carries Python bytecode, and allowing remote code is about code files a description names,
not about code hidden in a weights file.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from bioimageio_run_keras import create_adapter
from keras_testing import describe, keras_entry, make_request

from bioimageio_core.plugin import PluginError, Settings


def _lambda_model(marker: Path) -> keras.Model:
    """A model whose Lambda layer (Python bytecode in the file) creates ``marker``."""
    inputs = keras.Input((None, None, 1), name="image")
    # the path is a constant of the lambda's code (Keras cannot store defaults or closures)
    function = eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]")
    touch = keras.layers.Lambda(function, name="side_effect")
    return keras.Model(inputs, touch(inputs))


@pytest.mark.parametrize(("fmt", "file"), [("keras_v3", "m.keras"), ("keras_hdf5", "m.h5")])
@pytest.mark.parametrize("allow_remote_code", [False, True])
def test_lambda_layers_are_refused(
    tmp_path: Path, fmt: str, file: str, allow_remote_code: bool
) -> None:
    marker = tmp_path / "lambda-ran"
    model = _lambda_model(marker)
    x = np.ones((1, 4, 4, 1), np.float32)
    model.save(tmp_path / file)
    marker.unlink(missing_ok=True)  # saving may trace the layer
    raw = describe(tmp_path, {"image": x}, {"out": x}, {fmt: keras_entry(tmp_path, file, fmt)})
    settings = Settings(cache_path=tmp_path / "cache", allow_remote_code=allow_remote_code)
    with pytest.raises(PluginError, match="(?i)lambda"):
        create_adapter(make_request(tmp_path, raw, fmt, settings=settings))
    assert not marker.exists()
