"""Statistics are computed on the whole raw sample before blocking; dataset statistics over every
input of a call, first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pipeline_models import InputDef, OutputDef, conv_model, kernel, oracle_conv

from bioimageio_core.errors import InputError
from bioimageio_core.pipeline import create_prediction_pipeline
from bioimageio_core.prediction import predict_many
from bioimageio_core.stats import DatasetMean, DatasetStd, Measure, MeasureValue

Array = np.ndarray[Any, Any]
EPS = 1e-6


def rand(*shape: int, seed: int = 0, loc: float = 0.0, scale: float = 1.0) -> Array:
    rng = np.random.default_rng(seed)
    return (loc + scale * rng.normal(size=shape)).astype(np.float32)


def zmuv(x: Array, mean: float, std: float) -> Array:
    return (x.astype(np.float64) - mean) / (std + EPS)


def test_per_sample_normalisation_uses_whole_sample_statistics(tmp_path: Path) -> None:
    k = kernel(2, seed=1)
    model = conv_model(
        tmp_path,
        inputs=[
            InputDef(
                "raw",
                preprocessing=[{"id": "zero_mean_unit_variance", "kwargs": {"axes": ["y", "x"]}}],
            )
        ],
        outputs=[OutputDef("out", k, halo=2)],
    )
    # a strong gradient: block-local statistics would differ a lot from global ones
    x = rand(1, 1, 300, 260, seed=2) + np.linspace(0, 50, 260, dtype=np.float32)
    with create_prediction_pipeline(model) as pp:
        whole = pp.predict_sample_without_blocking(x)
        blocked = pp.predict_sample_with_blocking(x, ns=1, batch_size=2)
    expected = oracle_conv(zmuv(x, float(x.astype(np.float64).mean()), float(x.astype(np.float64).std())), k)
    np.testing.assert_allclose(whole.members["out"].data, expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(blocked.members["out"].data, whole.members["out"].data, atol=1e-5, rtol=0)


def test_percentile_scaling_before_blocking(tmp_path: Path) -> None:
    k = kernel(1, seed=3)
    step = {
        "id": "scale_range",
        "kwargs": {"axes": ["y", "x"], "min_percentile": 5.0, "max_percentile": 95.0},
    }
    model = conv_model(
        tmp_path,
        inputs=[InputDef("raw", preprocessing=[step])],
        outputs=[OutputDef("out", k, halo=1)],
    )
    x = rand(1, 1, 200, 180, seed=4, scale=10.0) + np.linspace(0, 100, 200, dtype=np.float32)[:, None]
    with create_prediction_pipeline(model) as pp:
        blocked = pp.predict_sample_with_blocking(x, ns=0)
    lo, hi = np.percentile(x.astype(np.float64), [5.0, 95.0])
    expected = oracle_conv((x - lo) / (hi - lo + EPS), k)
    np.testing.assert_allclose(blocked.members["out"].data, expected, atol=1e-4, rtol=0)


def test_postprocessing_statistics_on_stitched_output_and_reference_input(tmp_path: Path) -> None:
    k = kernel(2, seed=5)
    post = [
        {
            "id": "scale_mean_variance",
            "kwargs": {"reference_tensor": "raw", "axes": ["y", "x"]},
        }
    ]
    model = conv_model(tmp_path, outputs=[OutputDef("out", k, halo=2, bias=3.0, postprocessing=post)])
    x = rand(1, 1, 256, 200, seed=6, loc=7.0, scale=2.0)
    with create_prediction_pipeline(model) as pp:
        whole = pp.predict_sample_without_blocking(x)
        blocked = pp.predict_sample_with_blocking(x, ns=2)
    y = oracle_conv(x, k, bias=3.0)
    x64 = x.astype(np.float64)
    expected = (y - y.mean()) / (y.std() + EPS) * (x64.std() + EPS) + x64.mean()
    np.testing.assert_allclose(whole.members["out"].data, expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(blocked.members["out"].data, whole.members["out"].data, atol=1e-5, rtol=0)


def _dataset_model(tmp_path: Path) -> Any:
    # axes: null → running dataset statistics (bioimageio.core's default)
    return conv_model(
        tmp_path,
        inputs=[InputDef("raw", preprocessing=[{"id": "zero_mean_unit_variance"}])],
        outputs=[OutputDef("out", np.ones((1, 1), dtype=np.float32))],
    )


def test_predict_many_normalises_every_sample_with_statistics_of_all_inputs(tmp_path: Path) -> None:
    model = _dataset_model(tmp_path)
    a = rand(1, 1, 64, 64, seed=7, loc=1.0)
    b = rand(1, 1, 64, 80, seed=8, loc=5.0, scale=3.0)
    out_a, out_b = list(predict_many(model=model, inputs=[a, b]))
    both = np.concatenate([a.ravel(), b.ravel()]).astype(np.float64)
    np.testing.assert_allclose(out_a.members["out"].data, zmuv(a, both.mean(), both.std()), atol=1e-4)
    np.testing.assert_allclose(out_b.members["out"].data, zmuv(b, both.mean(), both.std()), atol=1e-4)
    # the order of the inputs does not matter (with running statistics, the sample coming first
    # would be normalised with its own statistics only)
    again_b, again_a = list(predict_many(model=model, inputs=iter([b, a])))
    np.testing.assert_allclose(again_a.members["out"].data, out_a.members["out"].data, atol=1e-6, rtol=0)
    np.testing.assert_allclose(again_b.members["out"].data, out_b.members["out"].data, atol=1e-6, rtol=0)
    assert again_a.stat[DatasetMean("raw")] == pytest.approx(both.mean(), rel=1e-12)


def test_dataset_percentiles_are_exact_and_order_independent(tmp_path: Path) -> None:
    step = {"id": "scale_range", "kwargs": {"min_percentile": 1.0, "max_percentile": 99.5}}
    model = conv_model(
        tmp_path,
        inputs=[InputDef("raw", preprocessing=[step])],
        outputs=[OutputDef("out", np.ones((1, 1), dtype=np.float32))],
    )
    images = [rand(1, 1, 64, 64 + 16 * i, seed=20 + i, loc=3 * i, scale=1 + i) for i in range(4)]
    forward = [s.members["out"].data for s in predict_many(model=model, inputs=images)]
    backward = [s.members["out"].data for s in predict_many(model=model, inputs=images[::-1])][::-1]
    lo, hi = np.percentile(np.concatenate([x.ravel() for x in images]).astype(np.float64), [1.0, 99.5])
    for x, f, b in zip(images, forward, backward, strict=True):
        np.testing.assert_array_equal(f, b)
        np.testing.assert_allclose(f, (x.astype(np.float64) - lo) / (hi - lo + EPS), atol=1e-5)


def test_a_pipeline_used_sample_by_sample_keeps_running_statistics(tmp_path: Path) -> None:
    """Without predict_many a pipeline does not know the dataset: bioimageio.core's running
    statistics (see ``running_dataset_measures``)."""
    model = _dataset_model(tmp_path)
    a = rand(1, 1, 64, 64, seed=7, loc=1.0)
    b = rand(1, 1, 64, 80, seed=8, loc=5.0, scale=3.0)
    with create_prediction_pipeline(model) as pp:
        assert pp.running_dataset_measures == {DatasetMean("raw"), DatasetStd("raw")}
        out_a = pp.predict_sample_without_blocking(a).members["out"].data
        out_b = pp.predict_sample_without_blocking(b).members["out"].data
    np.testing.assert_allclose(out_a, zmuv(a, a.mean(), a.std()), atol=1e-4)
    both = np.concatenate([a.ravel(), b.ravel()]).astype(np.float64)
    np.testing.assert_allclose(out_b, zmuv(b, both.mean(), both.std()), atol=1e-4)


def test_output_dataset_statistics_run_the_model_first(tmp_path: Path) -> None:
    """Postprocessing with dataset statistics of the outputs: computed over every raw output."""
    post = [{"id": "zero_mean_unit_variance", "kwargs": {"axes": ["batch", "y", "x"]}}]
    k = kernel(1, seed=9)
    model = conv_model(tmp_path, outputs=[OutputDef("out", k, halo=1, postprocessing=post)])
    images = [rand(1, 1, 64, 64, seed=30 + i, loc=2 * i) for i in range(3)]
    results = list(predict_many(model=model, inputs=images))
    raw = [oracle_conv(x, k) for x in images]
    pooled = np.concatenate([r.ravel() for r in raw])
    for r, result in zip(raw, results, strict=True):
        np.testing.assert_allclose(
            result.members["out"].data, zmuv(r, pooled.mean(), pooled.std()), atol=1e-4
        )
    again = list(predict_many(model=model, inputs=images[::-1]))[::-1]
    for first, second in zip(results, again, strict=True):
        np.testing.assert_allclose(first.members["out"].data, second.members["out"].data, atol=1e-6)


def test_statistics_file_is_saved_reused_and_checked(tmp_path: Path) -> None:
    model = _dataset_model(tmp_path)
    images = [rand(1, 1, 64, 64, seed=40 + i, loc=i) for i in range(3)]
    path = tmp_path / "stats" / "dataset.json"
    first = list(predict_many(model=model, inputs=images, dataset_statistics_path=path))
    data = json.loads(path.read_text())
    assert data["model"]["name"] == model.name and data["n_samples"] == 3
    assert {(e["measure"], e["tensor_id"], e["axes"]) for e in data["statistics"]} == {
        ("mean", "raw", None),
        ("std", "raw", None),
    }
    # a later run on one image only: normalised with the saved statistics of all three
    (later,) = predict_many(model=model, inputs=[images[1]], dataset_statistics_path=path)
    np.testing.assert_array_equal(later.members["out"].data, first[1].members["out"].data)
    # a file of another model is refused
    other = tmp_path / "other.json"
    data["model"] = {"id": None, "name": "another model"}
    other.write_text(json.dumps(data))
    with pytest.raises(InputError, match="holds dataset statistics of model 'another model'"):
        list(predict_many(model=model, inputs=images, dataset_statistics_path=other))
    data["model"]["name"] = model.name
    data["statistics"] = data["statistics"][:1]
    other.write_text(json.dumps(data))
    with pytest.raises(InputError, match="lacks dataset statistics this model needs: std of 'raw'"):
        list(predict_many(model=model, inputs=images, dataset_statistics_path=other))
    other.write_text("{not json")
    with pytest.raises(InputError, match="is not a JSON file"):
        list(predict_many(model=model, inputs=images, dataset_statistics_path=other))


@pytest.mark.parametrize("keep_updating", [False, True])
def test_initial_dataset_statistics(tmp_path: Path, keep_updating: bool) -> None:
    model = _dataset_model(tmp_path)
    seeds = [rand(1, 1, 64, 64, seed=s, loc=s, scale=1 + s) for s in (10, 11)]
    x = rand(1, 1, 64, 64, seed=12, loc=-4.0)
    with create_prediction_pipeline(
        model,
        dataset_for_initial_statistics=[{"raw": s} for s in seeds],
        keep_updating_dataset_statistics=keep_updating,
    ) as pp:
        out = pp.predict_sample_without_blocking(x).members["out"].data
        again = pp.predict_sample_without_blocking(x).members["out"].data
    data = [*seeds, x] if keep_updating else seeds
    pooled = np.concatenate([d.ravel() for d in data]).astype(np.float64)
    np.testing.assert_allclose(out, zmuv(x, pooled.mean(), pooled.std()), atol=1e-4)
    if keep_updating:
        pooled2 = np.concatenate([pooled, x.ravel()])
        np.testing.assert_allclose(again, zmuv(x, pooled2.mean(), pooled2.std()), atol=1e-4)
    else:
        np.testing.assert_array_equal(again, out)


def test_fixed_dataset_statistics_are_used(tmp_path: Path) -> None:
    model = _dataset_model(tmp_path)
    x = rand(1, 1, 64, 64, seed=13)
    fixed: dict[Measure, MeasureValue] = {DatasetMean("raw"): 2.0, DatasetStd("raw"): 4.0}
    with create_prediction_pipeline(model, fixed_dataset_statistics=fixed) as pp:
        out = pp.predict_sample_with_blocking(x).members["out"].data
    np.testing.assert_allclose(out, zmuv(x, 2.0, 4.0), atol=1e-5)
