"""KerasModelAdapter on tiny models saved as .h5 and .keras, checked against numpy and keras."""

from __future__ import annotations

import shutil
import weakref
from pathlib import Path

import keras
import numpy as np
import pytest
from attrs import evolve
from bioimageio_run_keras import KerasModelAdapter, create_adapter
from keras_testing import (
    conv_model,
    conv_numpy,
    describe,
    keras_entry,
    make_request,
    max_pool_numpy,
    two_in_two_out_model,
)

from bioimageio_core.plugin import PluginError

RNG = np.random.default_rng(5)
FILES = {"keras_hdf5": "model.h5", "keras_v3": "model.keras"}


@pytest.mark.parametrize("fmt", ["keras_hdf5", "keras_v3"])
def test_conv_model_matches_numpy_and_keras(tmp_path: Path, fmt: str) -> None:
    model = conv_model()
    model.save(tmp_path / FILES[fmt])
    kernel, bias = (np.asarray(w) for w in model.get_layer("conv").get_weights())
    x = RNG.standard_normal((2, 6, 5, 1)).astype(np.float32)
    expected = conv_numpy(x, kernel, bias)
    raw = describe(
        tmp_path,
        {"raw": x},
        {"features": expected.astype(np.float32)},
        {fmt: keras_entry(tmp_path, FILES[fmt], fmt)},
    )

    with create_adapter(make_request(tmp_path, raw, fmt)) as adapter:
        assert adapter.weights_format == fmt
        out = adapter.forward({"raw": x})

    assert out["features"].shape == (2, 6, 5, 2)
    np.testing.assert_allclose(out["features"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        out["features"], np.asarray(model.predict_on_batch(x)), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("by_name", [False, True])
def test_two_inputs_two_outputs(tmp_path: Path, by_name: bool) -> None:
    if by_name:  # names are the tensor ids, declared in another order than the description's
        model = two_in_two_out_model(("mask", "raw"), ("combined", "pooled"), pooled_first=True)
    else:  # other names: matched by position
        model = two_in_two_out_model(("a", "b"), ("s", "p"))
    model.save(tmp_path / "model.keras")
    raw_in = RNG.standard_normal((2, 4, 6, 1)).astype(np.float32)
    mask = RNG.standard_normal((2, 4, 6, 1)).astype(np.float32)
    # the model computes (first * second - first, pool(second)) over its own input order
    first, second = (mask, raw_in) if by_name else (raw_in, mask)
    expected = {"combined": first * second - first, "pooled": max_pool_numpy(second)}
    raw = describe(
        tmp_path,
        {"raw": raw_in, "mask": mask},
        expected,
        {"keras_v3": keras_entry(tmp_path, "model.keras", "keras_v3")},
    )

    with create_adapter(make_request(tmp_path, raw, "keras_v3")) as adapter:
        out = adapter.forward({"mask": mask, "raw": raw_in})

    assert out["pooled"].shape == (2, 2, 3, 1)
    np.testing.assert_allclose(out["combined"], expected["combined"], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out["pooled"], expected["pooled"])


def test_file_without_keras_suffix_is_loaded_through_the_cache(tmp_path: Path) -> None:
    model = conv_model()
    model.save(tmp_path / "model.h5")
    x = RNG.standard_normal((1, 4, 4, 1)).astype(np.float32)
    raw = describe(
        tmp_path,
        {"raw": x},
        {"features": np.asarray(model.predict_on_batch(x))},
        {"keras_hdf5": keras_entry(tmp_path, "model.h5", "keras_hdf5")},
    )
    blob = tmp_path / "downloads" / "blob"
    blob.parent.mkdir()
    shutil.copyfile(tmp_path / "model.h5", blob)
    request = make_request(tmp_path, raw, "keras_hdf5")
    inner = request.open_file

    def open_file(reference: str, sha256: str | None) -> Path:
        inner(reference, sha256)
        return blob

    request = evolve(request, open_file=open_file)
    with create_adapter(request) as adapter:
        out = adapter.forward({"raw": x})
    np.testing.assert_allclose(out["features"], np.asarray(model.predict_on_batch(x)), rtol=1e-6)
    assert list((tmp_path / "cache" / "keras-weights").glob("*/weights.h5"))


def test_unload_frees_the_model(tmp_path: Path) -> None:
    conv_model().save(tmp_path / "model.keras")
    x = np.zeros((1, 4, 4, 1), np.float32)
    raw = describe(
        tmp_path,
        {"raw": x},
        {"features": np.zeros((1, 4, 4, 2), np.float32)},
        {"keras_v3": keras_entry(tmp_path, "model.keras", "keras_v3")},
    )
    adapter = KerasModelAdapter(make_request(tmp_path, raw, "keras_v3"))
    assert not adapter.in_worker
    model_ref = weakref.ref(adapter._runner._model)  # type: ignore[union-attr]
    with adapter:
        adapter.forward({"raw": x})
    assert model_ref() is None
    adapter.unload()
    with pytest.raises(PluginError, match="unloaded"):
        adapter.forward({"raw": x})


def test_wrong_number_of_inputs_and_missing_gpu(tmp_path: Path) -> None:
    two_in_two_out_model(("a", "b"), ("s", "p")).save(tmp_path / "model.keras")
    x = np.zeros((1, 4, 4, 1), np.float32)
    raw = describe(
        tmp_path,
        {"raw": x},
        {"s": x, "p": x[:, :2, :2]},
        {"keras_v3": keras_entry(tmp_path, "model.keras", "keras_v3")},
    )
    with pytest.raises(PluginError, match=r"has 2 inputs \['a', 'b'\].*declares 1"):
        create_adapter(make_request(tmp_path, raw, "keras_v3"))
    if keras.backend.backend() == "torch":
        import torch

        if torch.cuda.is_available():
            return
        with pytest.raises(PluginError, match="sees 0 GPU"):
            create_adapter(make_request(tmp_path, raw, "keras_v3", devices=("cuda:0",)))


def test_broken_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "model.h5").write_bytes(b"not hdf5")
    x = np.zeros((1, 2, 2, 1), np.float32)
    raw = describe(
        tmp_path,
        {"raw": x},
        {"y": x},
        {"keras_hdf5": keras_entry(tmp_path, "model.h5", "keras_hdf5")},
    )
    with pytest.raises(PluginError, match=r"keras_hdf5 weights model\.h5"):
        create_adapter(make_request(tmp_path, raw, "keras_hdf5"))


def test_dict_outputs_by_name(tmp_path: Path) -> None:
    image = keras.Input((None, None, 1), name="image")
    outputs = {
        "pooled": keras.layers.MaxPooling2D(2)(image),
        "negated": keras.layers.Rescaling(-1.0)(image),
    }
    keras.Model(image, outputs).save(tmp_path / "model.keras")
    x = RNG.standard_normal((2, 4, 4, 1)).astype(np.float32)
    expected = {"negated": -x, "pooled": max_pool_numpy(x)}
    raw = describe(
        tmp_path,
        {"raw": x},
        expected,
        {"keras_v3": keras_entry(tmp_path, "model.keras", "keras_v3")},
    )
    with create_adapter(make_request(tmp_path, raw, "keras_v3")) as adapter:
        out = adapter.forward({"raw": x})
    assert list(out) == ["negated", "pooled"]
    np.testing.assert_array_equal(out["negated"], expected["negated"])
    np.testing.assert_array_equal(out["pooled"], expected["pooled"])
