"""Weight converters of the keras plugin: converted models give the numbers of the original."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import keras
import numpy as np
import pytest
import yaml
from bioimageio_run_keras import plugin
from bioimageio_run_keras.converters import convert_to_keras_v3, convert_to_saved_model
from keras_testing import conv_model, conv_numpy, describe, keras_entry

import bioimageio_core.plugin.testing as kit
from bioimageio_core import load_description
from bioimageio_core.plugin import PluginError

RNG = np.random.default_rng(7)
FILES = {"keras_hdf5": "model.h5", "keras_v3": "model.keras"}


@pytest.fixture
def keras_registry() -> Iterator[None]:
    """The registry holds the keras plugin (so keras_v3 entries parse) and nothing else."""
    with kit.only_plugins({"keras": plugin}):
        yield


def write_model(folder: Path, fmt: str) -> tuple[Path, Any]:
    """A model folder with ``fmt`` weights of :func:`conv_model`; test output from numpy."""
    folder.mkdir(parents=True, exist_ok=True)
    network = conv_model()
    network.save(folder / FILES[fmt])
    kernel, bias = (np.asarray(w) for w in network.get_layer("conv").get_weights())
    x = RNG.standard_normal((1, 8, 8, 1)).astype(np.float32)
    expected = conv_numpy(x, kernel, bias).astype(np.float32)
    raw = describe(
        folder, {"image": x}, {"conv": expected}, {fmt: keras_entry(folder, FILES[fmt], fmt)}
    )
    (folder / "rdf.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder / "rdf.yaml", network


def predict(network: Any, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.asarray(network.predict(x, verbose=0))


OTHER_INPUTS = [
    RNG.standard_normal((2, 8, 8, 1)).astype(np.float32),
    RNG.standard_normal((1, 8, 8, 1)).astype(np.float32),
]


def test_h5_to_keras_v3(tmp_path: Path, keras_registry: None) -> None:
    rdf, network = write_model(tmp_path / "m", "keras_hdf5")
    model = load_description(rdf)
    out = tmp_path / "m" / "weights_keras_v3.keras"
    entry = convert_to_keras_v3(model, "keras_hdf5", out, {})
    assert (entry.source, entry.parent, entry.keras_version) == (
        out.name,
        "keras_hdf5",
        keras.__version__,
    )
    # the backend the file was written with (format 0.5.8+: required)
    backend_name, backend_version = entry.backend
    assert backend_name == keras.backend.backend()
    assert backend_version and "+" not in backend_version
    assert "converted from keras_hdf5 with keras" in entry.comment
    with zipfile.ZipFile(out) as archive:  # a Keras 3 file is a zip with the config
        assert "config.json" in archive.namelist()
    reloaded = keras.saving.load_model(out, compile=False)
    for x in OTHER_INPUTS:
        np.testing.assert_allclose(predict(reloaded, x), predict(network, x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("fmt", ["keras_hdf5", "keras_v3"])
def test_keras_to_saved_model(tmp_path: Path, keras_registry: None, fmt: str) -> None:
    tf = pytest.importorskip("tensorflow")
    rdf, network = write_model(tmp_path / "m", fmt)
    model = load_description(rdf)
    out = tmp_path / "m" / "weights.zip"
    entry = convert_to_saved_model(model, fmt, out, {})
    assert (entry.source, entry.parent) == ("weights.zip", fmt)
    assert entry.tensorflow_version == tf.__version__.split("+")[0]
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(out) as archive:
        assert "saved_model.pb" in archive.namelist()
        archive.extractall(unpacked)
    saved = tf.saved_model.load(str(unpacked))
    for x in OTHER_INPUTS:
        np.testing.assert_allclose(
            np.asarray(saved.serve(x)), predict(network, x), rtol=1e-5, atol=1e-5
        )


def test_export_failure_is_reported(tmp_path: Path, keras_registry: None) -> None:
    pytest.importorskip("tensorflow")
    rdf, _ = write_model(tmp_path / "m", "keras_hdf5")
    (tmp_path / "m" / "model.h5").write_bytes(b"not an hdf5 file")
    model = load_description(rdf, perform_io_checks=False)
    unpinned = attrs.evolve(model.weights["keras_hdf5"], sha256=None)
    model = attrs.evolve(
        model, weights=attrs.evolve(model.weights, formats={"keras_hdf5": unpinned})
    )
    with pytest.raises(
        PluginError, match="exporting the keras_hdf5 weights as a SavedModel failed"
    ):
        convert_to_saved_model(model, "keras_hdf5", tmp_path / "m" / "w.zip", {})
    assert not (tmp_path / "m" / "w.zip").exists()


def test_converters_refuse_other_sources(tmp_path: Path, keras_registry: None) -> None:
    model = load_description(write_model(tmp_path / "m", "keras_v3")[0])
    with pytest.raises(PluginError, match="not keras_v3"):
        convert_to_keras_v3(model, "keras_v3", tmp_path / "x.keras", {})


def test_plugin_registers_the_converters() -> None:
    assert set(kit.registered_converters(plugin)) == {
        ("keras_hdf5", "keras_v3"),
        ("keras_hdf5", "tensorflow_saved_model_bundle"),
        ("keras_v3", "tensorflow_saved_model_bundle"),
    }


@pytest.fixture
def keras_and_tf_registry() -> Iterator[None]:
    """The keras and tensorflow plugins (skips when the tensorflow plugin is absent)."""
    tf_plugin = pytest.importorskip("bioimageio_run_tensorflow.plugin")
    with kit.only_plugins({"keras": plugin, "tensorflow": tf_plugin}):
        yield


def test_add_weights_keras_to_keras_v3_and_saved_model(
    tmp_path: Path, keras_and_tf_registry: None
) -> None:
    from bioimageio_core import add_weights, save_bioimageio_package, test_model

    rdf, _ = write_model(tmp_path / "m", "keras_hdf5")
    report = add_weights(rdf, tmp_path / "converted")
    assert [(r.source_format, r.target_format, r.status) for r in report.results] == [
        ("keras_hdf5", "keras_v3", "added"),
        ("keras_hdf5", "tensorflow_saved_model_bundle", "added"),
    ], report.format_text()
    package = save_bioimageio_package(tmp_path / "converted", tmp_path / "model.zip")
    summary = test_model(package)
    assert summary.status == "passed", summary.format_text()
    reloaded = load_description(package, perform_io_checks=True)
    assert reloaded.weights.available_formats == (
        "keras_hdf5",
        "keras_v3",
        "tensorflow_saved_model_bundle",
    )
