"""Statistics are computed on the whole raw sample before blocking; dataset statistics accumulate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pipeline_models import InputDef, OutputDef, conv_model, kernel, oracle_conv

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


def test_dataset_statistics_accumulate_over_samples(tmp_path: Path) -> None:
    model = _dataset_model(tmp_path)
    a = rand(1, 1, 64, 64, seed=7, loc=1.0)
    b = rand(1, 1, 64, 80, seed=8, loc=5.0, scale=3.0)
    out_a, out_b = list(predict_many(model=model, inputs=[a, b]))
    np.testing.assert_allclose(out_a.members["out"].data, zmuv(a, a.mean(), a.std()), atol=1e-4)
    both = np.concatenate([a.ravel(), b.ravel()]).astype(np.float64)
    np.testing.assert_allclose(out_b.members["out"].data, zmuv(b, both.mean(), both.std()), atol=1e-4)


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
