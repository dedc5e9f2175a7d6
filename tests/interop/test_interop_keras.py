"""``add-weights`` keras_hdf5 -> keras_v3: the result (with ``backend``) is accepted by the
reference as model 0.5.14, and the reference's package of it passes ``bioimageio-run test``."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import yaml
from interop_helpers import read_yaml, reference_load, reference_verdict, run

from bioimageio_core.plugin.testing import ModelDef, WeightsDef, model_description
from bioimageio_core.settings import get_settings

REQUIRED = os.environ.get("BIOIMAGEIO_TEST_INTEROP") == "required"


@pytest.fixture
def keras_model(tmp_path: Path) -> Path:
    """A 3x3 'same' convolution saved as keras_hdf5, with test tensors computed by keras."""
    if importlib.util.find_spec("bioimageio_run_keras") is None:
        if REQUIRED:
            pytest.fail("the keras plugin is not installed (BIOIMAGEIO_TEST_INTEROP=required)")
        pytest.skip("the keras plugin is not installed")
    from bioimageio_run_keras.backend import activate_backend

    keras = activate_backend(get_settings().keras_backend, explicit=False)
    keras.utils.set_random_seed(3)
    x = keras.Input((None, None, 1), name="image")
    y = keras.layers.Conv2D(1, 3, padding="same", name="conv")(x)
    network = keras.Model(x, y)
    folder = tmp_path / "keras_model"
    folder.mkdir()
    network.save(folder / "model.h5")
    image = np.random.default_rng(0).standard_normal((1, 16, 16, 1)).astype(np.float32)
    out = np.asarray(network.predict(image, verbose=0)).astype(np.float32)
    model = ModelDef.from_arrays(
        "tiny keras interop model",
        {"image": image},
        {"conv": out},
        [WeightsDef("keras_hdf5", "model.h5", {"tensorflow_version": "2.16"})],
        letters="byxc",
        license="MIT",
    )
    raw = model_description(folder, model)
    (folder / "rdf.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder / "rdf.yaml"


def test_keras_v3_from_add_weights(
    reference: ModuleType, keras_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "with_v3"
    code, text = run("add-weights", str(keras_model), str(out), "--target-format", "keras_v3")
    assert code == 0, text
    entry = read_yaml(out / "rdf.yaml")["weights"]["keras_v3"]
    assert entry["backend"][0] in ("torch", "tensorflow", "jax") and entry["keras_version"]
    descr = reference_load(reference, out, io_checks=True)
    status, version, errors = reference_verdict(descr)
    assert (status, version, errors) == ("valid-format", "0.5.14", [])
    zipped = reference.save_bioimageio_package(descr, output_path=tmp_path / "ref.zip")
    code, text = run("test", str(zipped), "--weights-format", "keras_v3")
    assert code == 0, text
