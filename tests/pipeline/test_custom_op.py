"""The ``custom`` postprocessing op: code shipped with the model, run with the consent check, on
the stitched output (never per tile), called with one array that it must not reshape."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from pipeline_models import OutputDef, conv_model, kernel, oracle_conv

from bioimageio_core import predict
from bioimageio_core.errors import HashMismatchError, PluginError, RemoteCodeError
from bioimageio_core.pipeline import create_prediction_pipeline
from bioimageio_core.sources import sha256_of_file

POST = '''
import numpy as np

CALLS = []


class CentreAndScale:
    """Subtracts the mean of the whole array (not a pointwise op), then scales."""

    def __init__(self, factor):
        self.factor = factor

    def __call__(self, x):
        CALLS.append(x.shape)
        return (x - x.mean()) * self.factor


def make_threshold(threshold):
    def threshold_fn(x):
        return (x > threshold).astype("uint8")
    return threshold_fn


def cropper():
    return lambda x: x[..., 1:, :]


def marker(path):
    open(path, "w").close()
    return lambda x: x
'''


def rand(*shape: int, seed: int = 0) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def custom_model(folder: Path, callable_name: str, kwargs: dict[str, Any], **step: Any) -> Any:
    (folder / "post.py").write_text(POST)
    custom = {"id": "custom", "source": "post.py", "callable": callable_name, "kwargs": kwargs}
    custom.update(step)
    output = OutputDef("out", kernel(1), halo=1, postprocessing=[custom])
    return conv_model(folder, outputs=[output])


def test_custom_op_runs_once_on_the_stitched_output(tmp_path: Path) -> None:
    model = custom_model(tmp_path, "CentreAndScale", {"factor": 2.0})
    x = rand(2, 1, 96, 80, seed=1)
    conv = oracle_conv(x, kernel(1))
    expected = (conv - conv.mean()) * 2.0
    with create_prediction_pipeline(model) as pp:
        assert not pp.postprocessing_is_pointwise()
        module_name = pp.postprocessing[0].prepared.function.__class__.__module__
        whole = pp.predict_sample_without_blocking(x).members["out"].data
        tiled = pp.predict_sample_with_blocking(x, ns=0).members["out"].data  # 64x64 blocks
    assert module_name not in sys.modules  # the code's module does not stay imported
    np.testing.assert_allclose(whole, expected, atol=1e-5)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    # one array per call: the whole batch, in the described axis order
    function = pp.postprocessing[0].prepared.function
    shapes = function.__call__.__globals__["CALLS"]
    assert shapes == [(2, 1, 96, 80), (2, 1, 96, 80)]


def test_factory_result_is_cast_to_the_described_dtype(tmp_path: Path) -> None:
    model = custom_model(tmp_path, "make_threshold", {"threshold": 0.0})
    raw = yaml.safe_load((tmp_path / "rdf.yaml").read_text())
    raw["outputs"][0]["data"] = {"type": "uint8"}
    (tmp_path / "rdf.yaml").write_text(yaml.safe_dump(raw))
    x = rand(1, 1, 64, 64, seed=2)
    result = predict(model=tmp_path / "rdf.yaml", inputs=x).members["out"].data
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, oracle_conv(x, kernel(1)) > 0)
    assert model.outputs[0].postprocessing[-1].id == "ensure_dtype"


def test_a_custom_op_must_keep_the_shape(tmp_path: Path) -> None:
    model = custom_model(tmp_path, "cropper", {})
    with create_prediction_pipeline(model) as pp, pytest.raises(PluginError) as err:
        pp.predict_sample_without_blocking(rand(1, 1, 64, 64))
    assert "must keep the shape" in str(err.value)
    assert "outputs[0].postprocessing[0]" in str(err.value)


def test_unknown_callable_and_wrong_sha256(tmp_path: Path) -> None:
    model = custom_model(tmp_path, "nothing_here", {})
    with pytest.raises(PluginError, match="has no callable 'nothing_here'.*CentreAndScale"):
        create_prediction_pipeline(model)
    (tmp_path / "other").mkdir()
    model = custom_model(tmp_path / "other", "cropper", {}, sha256="0" * 64)
    with pytest.raises(HashMismatchError) as err:
        create_prediction_pipeline(model)
    assert err.value.loc == "$.outputs[0].postprocessing[0].source"


def test_pinned_sha256_is_checked_and_accepted(tmp_path: Path) -> None:
    (tmp_path / "post.py").write_text(POST)
    model = custom_model(tmp_path, "cropper", {}, sha256=sha256_of_file(tmp_path / "post.py"))
    with create_prediction_pipeline(model):
        pass


def test_custom_code_counts_as_code_of_the_description(tmp_path: Path) -> None:
    from bioimageio_core.consent import code_references

    model = custom_model(tmp_path, "cropper", {})
    assert list(code_references(model)) == [
        (("outputs", 0, "postprocessing", 0, "source"), "post.py")
    ]


def test_code_of_a_remote_model_needs_consent(
    http_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The custom code of a model opened from a URL must not run without consent."""
    folder = tmp_path / "model"
    folder.mkdir()
    flag = tmp_path / "ran"
    custom_model(folder, "marker", {"path": str(flag)})
    shutil.copytree(folder, http_server.root / "model")
    url = http_server.url("model/rdf.yaml")
    x = rand(1, 1, 64, 64)
    monkeypatch.delenv("BIOIMAGEIO_ALLOW_REMOTE_CODE", raising=False)
    with pytest.raises(RemoteCodeError) as err:
        predict(model=url, inputs=x)
    assert not flag.exists()
    assert "post.py" in str(err.value)
    assert http_server.count("model/post.py") == 0  # not even fetched
    monkeypatch.setenv("BIOIMAGEIO_ALLOW_REMOTE_CODE", "1")
    predict(model=url, inputs=x)
    assert flag.exists()
