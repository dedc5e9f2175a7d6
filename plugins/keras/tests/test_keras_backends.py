"""keras_v3 weights run on the Keras backend they declare: in this process when keras is not yet
imported with another backend, else in a worker process; a declared backend that is not installed
falls back with a warning that says what to install."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import yaml
from attrs import evolve
from bioimageio_run_keras import KerasModelAdapter
from bioimageio_run_keras.backend import framework_version, plan_backend
from keras_testing import conv_model, conv_numpy, describe, keras_entry, make_request

from bioimageio_core import test_model
from bioimageio_core.plugin import PluginError, Settings

BOTH = ["torch", "tensorflow"]


def test_declared_backend_is_used_when_installed() -> None:
    plan = plan_backend(("tensorflow", "2.21.0"), Settings(), environ={}, installed=BOTH)
    assert (plan.name, plan.in_worker, plan.warnings) == ("tensorflow", False, ())
    # keras is already imported here with torch: the model runs in a worker process
    plan = plan_backend(("tensorflow", "2.21"), Settings(), environ={}, active="torch", installed=BOTH)
    assert (plan.name, plan.in_worker) == ("tensorflow", True)
    # even when KERAS_BACKEND asks for another one: the declared backend is the model's own
    explicit = {"KERAS_BACKEND": "torch"}
    plan = plan_backend(("tensorflow", "2.21"), Settings(), environ=explicit, installed=BOTH)
    assert plan.name == "tensorflow"


def test_a_missing_declared_backend_falls_back_with_an_install_hint() -> None:
    plan = plan_backend(("jax", "0.4.30"), Settings(), environ={}, installed=BOTH)
    assert plan.name == "torch" and not plan.in_worker
    (note,) = plan.warnings
    assert "jax 0.4.30, which is not installed" in note and 'pip install "jax==0.4.30"' in note
    tf = evolve(Settings(), keras_backend="tensorflow")
    assert plan_backend(("jax", "0.4"), tf, environ={}, installed=BOTH).name == "tensorflow"
    only_tf = plan_backend(("jax", "0.4"), Settings(), environ={}, installed=["tensorflow"])
    assert only_tf.name == "tensorflow"


def test_formats_without_a_declared_backend_follow_the_settings() -> None:
    tf = evolve(Settings(), keras_backend="tensorflow")
    plan = plan_backend(None, tf, environ={}, active="torch", installed=BOTH)
    assert (plan.name, plan.in_worker) == ("tensorflow", True)  # asked for explicitly
    plan = plan_backend(None, Settings(), environ={}, active="tensorflow", installed=BOTH)
    assert (plan.name, plan.in_worker) == ("tensorflow", False)  # the default gives way
    assert "running the model with 'tensorflow'" in plan.warnings[0]


def _model(tmp_path: Path, backend: list[str]) -> tuple[dict[str, Any], np.ndarray[Any, Any]]:
    model = conv_model()
    model.save(tmp_path / "model.keras")
    x = np.random.default_rng(3).normal(size=(1, 8, 8, 1)).astype(np.float32)
    kernel, bias = (np.asarray(w) for w in model.get_layer("conv").get_weights())
    expected = conv_numpy(x, kernel, bias).astype(np.float32)
    entry = keras_entry(tmp_path, "model.keras", "keras_v3")
    entry["backend"] = backend
    raw = describe(tmp_path, {"raw": x}, {"features": expected}, {"keras_v3": entry})
    return raw, x


@pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="the tests import keras with the torch backend"
)
def test_a_tensorflow_model_runs_in_a_worker_process(tmp_path: Path) -> None:
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed")
    version = framework_version("tensorflow")
    assert version is not None
    raw, x = _model(tmp_path, ["tensorflow", version])
    expected = raw["outputs"][0]
    with KerasModelAdapter(make_request(tmp_path, raw, "keras_v3")) as adapter:
        assert adapter.in_worker and adapter.backend == "tensorflow"
        out = adapter.forward({"raw": x})["features"]
        again = adapter.forward({"raw": x * 2})["features"]
    reference = np.load(tmp_path / expected["test_tensor"]["source"])
    np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-5)
    assert not np.allclose(again, out)
    with pytest.raises(PluginError, match="unloaded"):
        adapter.forward({"raw": x})
    # the whole model test passes on the declared backend
    (tmp_path / "rdf.yaml").write_text(yaml.safe_dump(raw))
    summary = test_model(tmp_path / "rdf.yaml", weights_format="keras_v3")
    assert summary.status == "passed", summary.format_text()


def test_worker_errors_come_back_as_plugin_errors(tmp_path: Path) -> None:
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed")
    if keras.backend.backend() != "torch":
        pytest.skip("the tests import keras with the torch backend")
    raw, _ = _model(tmp_path, ["tensorflow", "2.21"])
    (tmp_path / "model.keras").write_bytes(b"not a keras file")
    raw["weights"]["keras_v3"].pop("sha256", None)
    with pytest.raises(PluginError, match=r"keras could not load.*worker process"):
        KerasModelAdapter(make_request(tmp_path, raw, "keras_v3"))


def test_a_model_declaring_a_missing_backend_runs_with_a_warning(tmp_path: Path) -> None:
    raw, x = _model(tmp_path, ["jax", "0.4.30"])
    if "jax" in [d.metadata["Name"] for d in importlib.metadata.distributions()]:
        pytest.skip("jax is installed here")
    with pytest.warns(UserWarning, match=r'pip install "jax==0\.4\.30"'):
        adapter = KerasModelAdapter(make_request(tmp_path, raw, "keras_v3"))
    with adapter:
        out = adapter.forward({"raw": x})["features"]
    reference = np.load(tmp_path / raw["outputs"][0]["test_tensor"]["source"])
    np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-5)
    (tmp_path / "rdf.yaml").write_text(yaml.safe_dump(raw))
    summary = test_model(tmp_path / "rdf.yaml", weights_format="keras_v3")
    assert summary.status == "passed", summary.format_text()
    load = next(d for d in summary.details if d.name == "load keras_v3 weights")
    assert "jax" in load.warnings[0].msg
