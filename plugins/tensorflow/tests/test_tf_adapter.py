"""TensorflowModelAdapter on SavedModels built here (TF2 and TF1), against numpy and TF itself."""

from __future__ import annotations

import os
import shutil
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from bioimageio_run_tensorflow import TensorflowModelAdapter, create_adapter
from tf_testing import describe, make_request, max_pool_numpy, zip_folder

from bioimageio_core.plugin import InputError, PluginError

RNG = np.random.default_rng(3)
SPEC = tf.TensorSpec([None, None, None, 1], tf.float32)


class TupleModule(tf.Module):
    """Returns a tuple: signature outputs output_0 = a * b - a, output_1 = max_pool(b)."""

    @tf.function(input_signature=[SPEC, SPEC])
    def __call__(self, a: Any, b: Any) -> Any:
        return a * b - a, tf.nn.max_pool2d(b, 2, 2, "VALID")


class NamedModule(tf.Module):
    """Named inputs/outputs equal to the tensor ids; uint8 input 'mask'."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = tf.Variable(0.5)

    @tf.function(input_signature=[SPEC, tf.TensorSpec([None, None, None, 1], tf.uint8)])
    def __call__(self, raw: Any, mask: Any) -> Any:
        masked = raw * tf.cast(mask, tf.float32) * self.scale
        return {"pooled": tf.nn.max_pool2d(raw, 2, 2, "VALID"), "masked": masked}


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("saved_models")
    tf.saved_model.save(TupleModule(), str(root / "tuple"))
    named = NamedModule()
    tf.saved_model.save(named, str(root / "named"), signatures=named.__call__)
    zip_folder(root / "tuple", root / "tuple.zip")
    zip_folder(root / "named", root / "named.zip", prefix="named/")  # nested folder in the zip
    return root


def test_tuple_outputs_by_signature_name_order(saved_models: Path, tmp_path: Path) -> None:
    shutil.copy(saved_models / "tuple.zip", tmp_path / "model.zip")
    raw_in = RNG.standard_normal((2, 4, 6, 1)).astype(np.float32)
    mask = RNG.standard_normal((2, 4, 6, 1)).astype(np.float32)
    expected = {"combined": raw_in * mask - raw_in, "pooled": max_pool_numpy(mask)}
    raw = describe(tmp_path, {"raw": raw_in, "mask": mask}, expected, "model.zip")

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with create_adapter(make_request(tmp_path, raw)) as adapter:
            out = adapter.forward({"mask": mask, "raw": raw_in})
    finally:
        os.chdir(old)

    assert list(cwd.iterdir()) == []  # nothing unpacked into the working directory
    assert out["pooled"].shape == (2, 2, 3, 1)
    np.testing.assert_allclose(out["combined"], expected["combined"], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out["pooled"], expected["pooled"])
    direct = tf.saved_model.load(str(saved_models / "tuple")).signatures["serving_default"]
    result = direct(a=tf.constant(raw_in), b=tf.constant(mask))
    np.testing.assert_array_equal(out["combined"], result["output_0"].numpy())


def test_named_outputs_uint8_input_and_nested_zip(saved_models: Path, tmp_path: Path) -> None:
    shutil.copy(saved_models / "named.zip", tmp_path / "model.zip")
    raw_in = RNG.standard_normal((3, 4, 4, 1)).astype(np.float32)
    mask = RNG.integers(0, 3, size=(3, 4, 4, 1), dtype=np.uint8)
    # description order differs from the signature's sorted order ("masked" < "pooled")
    expected = {"pooled": max_pool_numpy(raw_in), "masked": raw_in * mask * np.float32(0.5)}
    raw = describe(tmp_path, {"mask": mask, "raw": raw_in}, expected, "model.zip")

    with create_adapter(make_request(tmp_path, raw)) as adapter:
        # unpacked once into the cache, keyed by the zip's sha256
        (unpacked,) = (tmp_path / "cache" / "tensorflow-saved-model").iterdir()
        shutil.rmtree(unpacked)  # loaded once: forward never reads the files again
        out = adapter.forward({"raw": raw_in, "mask": mask})
        assert adapter.forward({"raw": raw_in, "mask": mask}).keys() == out.keys()
        np.testing.assert_array_equal(out["pooled"], expected["pooled"])
        np.testing.assert_allclose(out["masked"], expected["masked"], rtol=1e-6)
        with pytest.raises(InputError, match="dtype float32"):
            adapter.forward({"raw": raw_in, "mask": mask.astype(np.float32)})
        with pytest.raises(InputError, match="3 dimensions"):
            adapter.forward({"raw": raw_in[0], "mask": mask})


def test_tf1_saved_model(tmp_path: Path) -> None:
    export = tmp_path / "tf1"
    weight = np.float32(1.5)
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        x = tf.compat.v1.placeholder(tf.float32, [None, None, None, 1], name="x")
        w = tf.compat.v1.Variable(weight, name="w")
        y = tf.identity(x * w + 1.0, name="y")
        session.run(tf.compat.v1.global_variables_initializer())
        tf.compat.v1.saved_model.simple_save(session, str(export), {"input": x}, {"output": y})
    zip_folder(export, tmp_path / "tf1.zip")
    x_in = RNG.standard_normal((2, 3, 3, 1)).astype(np.float32)
    raw = describe(tmp_path, {"raw": x_in}, {"out": x_in * weight + 1}, "tf1.zip")

    with create_adapter(make_request(tmp_path, raw)) as adapter:
        out = adapter.forward({"raw": x_in})
    np.testing.assert_allclose(out["out"], x_in * weight + 1, rtol=1e-6)


def test_unload_frees_the_model(saved_models: Path, tmp_path: Path) -> None:
    shutil.copy(saved_models / "tuple.zip", tmp_path / "model.zip")
    x = np.ones((1, 2, 2, 1), np.float32)
    raw = describe(tmp_path, {"raw": x, "mask": x}, {"c": x, "p": x[:, :1, :1]}, "model.zip")
    adapter = TensorflowModelAdapter(make_request(tmp_path, raw))
    loaded_ref = weakref.ref(adapter._loaded)
    with adapter:
        adapter.forward({"raw": x, "mask": x})
    assert loaded_ref() is None
    with pytest.raises(PluginError, match="unloaded"):
        adapter.forward({"raw": x, "mask": x})


def test_mismatch_and_missing_gpu(saved_models: Path, tmp_path: Path) -> None:
    shutil.copy(saved_models / "tuple.zip", tmp_path / "model.zip")
    x = np.ones((1, 2, 2, 1), np.float32)
    raw = describe(tmp_path, {"raw": x}, {"c": x, "p": x}, "model.zip")
    with pytest.raises(PluginError, match=r"has 2 inputs \['a', 'b'\].*declares 1"):
        create_adapter(make_request(tmp_path, raw))
    if not tf.config.list_physical_devices("GPU"):
        with pytest.raises(PluginError, match="sees 0 GPU"):
            create_adapter(make_request(tmp_path, raw, devices=("cuda:0",)))
