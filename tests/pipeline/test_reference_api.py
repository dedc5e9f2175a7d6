"""The names and keywords of bioimageio.core's API, so that code written for it runs here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pipeline_models import InputDef, OutputDef, conv_model, kernel, oracle_conv

import bioimageio_core
from bioimageio_core import (
    ValidationError,
    create_model_adapter,
    create_prediction_pipeline,
    load_dataset_description,
    load_description,
    load_description_and_validate_format_only,
    load_model_description,
    predict,
    predict_many,
    test_description,
    test_model,
)
from bioimageio_core.errors import InputError
from bioimageio_core.sample import Sample
from bioimageio_core.tensor import Tensor

Array = np.ndarray[Any, Any]
DATASET = "format_version: 0.3.0\ntype: dataset\nname: some images\ndescription: images\n"
REFERENCE_NAMES = (
    "PredictionPipeline", "Sample", "Settings", "Tensor", "ValidationSummary", "__version__",
    "add_weights", "compute_dataset_measures", "create_model_adapter", "create_prediction_pipeline",
    "dump_description", "enable_determinism", "load_dataset_description", "load_description",
    "load_description_and_validate_format_only", "load_model", "load_model_description",
    "load_resource", "predict", "predict_many", "save_bioimageio_package",
    "save_bioimageio_package_as_folder", "save_bioimageio_yaml_only", "test_description",
    "test_model", "test_resource", "validate_format",
)  # fmt: skip


def zmuv_model(folder: Path) -> Any:
    folder.mkdir(parents=True, exist_ok=True)
    step = {"id": "zero_mean_unit_variance", "kwargs": {"axes": ["y", "x"]}}
    return conv_model(
        folder,
        inputs=[InputDef("raw", preprocessing=[step])],
        outputs=[OutputDef("out", kernel(1), halo=1)],
    )


def test_the_reference_names_exist_and_aliases_are_the_same_functions() -> None:
    missing = [n for n in REFERENCE_NAMES if not hasattr(bioimageio_core, n)]
    assert not missing
    assert set(REFERENCE_NAMES) <= set(bioimageio_core.__all__)
    assert bioimageio_core.load_model is load_model_description
    assert bioimageio_core.load_resource is load_description
    assert bioimageio_core.test_resource is test_description


def test_typed_loaders_check_the_type(tmp_path: Path) -> None:
    zmuv_model(tmp_path / "m")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "rdf.yaml").write_text(DATASET)
    model = load_model_description(tmp_path / "m" / "rdf.yaml")
    assert model.type == "model"
    assert load_dataset_description(tmp_path / "d").type == "dataset"
    with pytest.raises(ValidationError, match=r"\$\.type: expected a model description, got type 'dataset'"):
        load_model_description(tmp_path / "d")
    with pytest.raises(ValidationError, match="expected a dataset description, got type 'model'"):
        load_dataset_description(tmp_path / "m", perform_io_checks=False)
    summary = load_description_and_validate_format_only(tmp_path / "d")
    assert summary.status == "valid-format" and summary.type == "dataset"


def test_weight_format_is_accepted_wherever_weights_format_is(tmp_path: Path) -> None:
    model = zmuv_model(tmp_path)
    x = np.random.default_rng(0).normal(size=(1, 1, 64, 64)).astype(np.float32)
    a = predict(model=model, inputs=x, weight_format="numpy_conv").members["out"].data
    b = predict(model=model, inputs=x, weights_format="numpy_conv").members["out"].data
    np.testing.assert_array_equal(a, b)
    (many,) = predict_many(model=model, inputs=[x], weight_format="numpy_conv")
    np.testing.assert_array_equal(many.members["out"].data, a)
    with create_prediction_pipeline(model, weight_format="numpy_conv") as pp:
        assert pp.weights_format == "numpy_conv"
    assert test_model(model, weight_format="numpy_conv").status == "valid-format"  # no test tensors
    assert test_description(model, weight_format="numpy_conv").status == "valid-format"
    adapter = create_model_adapter(model, weight_format="numpy_conv")
    adapter.unload()
    with pytest.raises(TypeError, match="two spellings of one option"):
        predict(model=model, inputs=x, weights_format="numpy_conv", weight_format="onnx")
    with pytest.raises(TypeError, match="give only weights_format"):
        test_model(model, "numpy_conv", weight_format="onnx")


def test_create_model_adapter_returns_the_adapter(tmp_path: Path) -> None:
    k = kernel(1)
    model = conv_model(tmp_path, outputs=[OutputDef("out", k, halo=1)])
    x = np.random.default_rng(1).normal(size=(1, 1, 64, 64)).astype(np.float32)
    adapter = create_model_adapter(model, weight_format_priority_order=["onnx", "numpy_conv"])
    try:
        out = adapter.forward({"raw": x})["out"]
    finally:
        adapter.unload()
    np.testing.assert_allclose(out, oracle_conv(x, k), atol=1e-5)
    with pytest.raises(bioimageio_core.UnsupportedWeightFormatError, match="none of the weight formats"):
        create_model_adapter(model, weight_format_priority_order=["onnx"])
    with create_prediction_pipeline(model, model_adapter=create_model_adapter(model)) as pp:
        np.testing.assert_allclose(
            pp.predict_sample_without_blocking(x).members["out"].data, out, atol=1e-6
        )


def test_reference_style_in_place_processing_gives_the_normalised_result(tmp_path: Path) -> None:
    """bioimageio.core code ignores what apply_preprocessing returns: the sample must change."""
    model = zmuv_model(tmp_path)
    x = np.random.default_rng(2).normal(size=(1, 1, 64, 64)).astype(np.float32) * 5 + 3
    original = x.copy()
    dims = ("batch", "channel", "y", "x")
    with create_prediction_pipeline(model) as pp:
        expected = pp.predict_sample_without_blocking(x).members["out"].data
        sample = Sample(members={"raw": Tensor(x, dims)}, stat={}, id="s")
        pp.apply_preprocessing(sample)  # the reference's pattern: the return value is ignored
        assert abs(float(sample.members["raw"].data.mean())) < 1e-5
        output = pp.predict_sample_without_blocking(
            sample, skip_preprocessing=True, skip_postprocessing=True
        )
        pp.apply_postprocessing(output)
        np.testing.assert_allclose(output.members["out"].data, expected, atol=1e-6)
        with pytest.raises(InputError, match="(?s)preprocessed already.*skip_preprocessing=True"):
            pp.predict_sample_without_blocking(sample)  # would normalise twice
        with pytest.raises(InputError, match="preprocessed already"):
            predict(model=pp, inputs=sample)
        # the returned value is the same sample, so code using it works too
        fresh = Sample(members={"raw": Tensor(x, dims)}, id="t")
        assert pp.apply_preprocessing(fresh) is fresh
    np.testing.assert_array_equal(x, original)  # the caller's array is never written to
    assert pp.name == model.name and pp.model_description is model
    pp.load()  # a no-op kept for reference code
