"""``stardist_postprocessing`` against the real stardist package (2D and 3D, grid, tiling)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bioimageio_numpy_models.plugin import downscale
from label_models import Array, best_iou, discs, label_model
from stardist.geometry import polygons_to_label, polyhedron_to_label, star_dist, star_dist3D
from stardist.nms import non_maximum_suppression, non_maximum_suppression_3d
from stardist.rays3d import Rays_GoldenSpiral
from stardist.utils import edt_prob

from bioimageio_core import predict
from bioimageio_core.pipeline import create_prediction_pipeline
from bioimageio_core.testing import test_model

N_RAYS = 16
CENTRES_2D = [(14, 14), (20, 44), (46, 22), (48, 50)]
RADII_2D = [7, 9, 8, 6]


def maps_2d(labels: Array) -> Array:
    """(1, 1 + n_rays, y, x): object probability, then the ray distances stardist trains on."""
    prob = edt_prob(labels)
    dist = star_dist(labels, N_RAYS)
    return np.concatenate([prob[None], np.moveaxis(dist, -1, 0)])[None].astype(np.float32)


def step_2d(grid: tuple[int, int] = (1, 1), b: Any = 2) -> dict[str, Any]:
    kwargs = {"prob_threshold": 0.5, "nms_threshold": 0.4, "n_rays": N_RAYS, "grid": list(grid), "b": b}
    return {"id": "stardist_postprocessing", "kwargs": kwargs}


def oracle_2d(maps: Array, grid: tuple[int, int], b: Any = 2) -> Array:
    prob, dist = maps[0, 0], np.ascontiguousarray(np.moveaxis(maps[0, 1:], 0, -1))
    shape = (prob.shape[0] * grid[0], prob.shape[1] * grid[1])
    points, probi, disti = non_maximum_suppression(
        dist, prob, grid=grid, b=b, prob_thresh=0.5, nms_thresh=0.4
    )
    return np.asarray(polygons_to_label(disti, points, prob=probi, shape=shape))[None, None]


@pytest.fixture(scope="module")
def truth_2d() -> Array:
    return discs((64, 64), CENTRES_2D, RADII_2D)


def test_2d_labels_equal_stardist_and_recover_the_objects(tmp_path: Path, truth_2d: Array) -> None:
    maps = maps_2d(truth_2d)
    path = label_model(tmp_path, channels=N_RAYS + 1, postprocessing=[step_2d()])
    labels = predict(model=path, inputs=maps).members["labels"].data
    assert labels.shape == (1, 1, 64, 64) and labels.dtype == np.int32
    np.testing.assert_array_equal(labels, oracle_2d(maps, (1, 1)))
    assert labels.max() == len(CENTRES_2D)
    assert min(best_iou(truth_2d, labels[0, 0])) > 0.8


@pytest.mark.parametrize("b", [0, [[2, 2], [0, 3]]])
def test_2d_grid_upsamples_to_the_described_size(tmp_path: Path, truth_2d: Array, b: Any) -> None:
    """A model with grid 2 returns maps of half the size; the labels have the input's size."""
    maps = maps_2d(truth_2d)
    path = label_model(
        tmp_path, channels=N_RAYS + 1, postprocessing=[step_2d((2, 2), b)], downscale=2
    )
    with create_prediction_pipeline(path) as pp:
        raw = pp.io_shape.outputs[0]
        assert [a.size.size for a in raw.axes if a.id == "channel"] == [N_RAYS + 1]  # type: ignore[union-attr]
        whole = pp.predict_sample_without_blocking(maps).members["labels"].data
        tiled = pp.predict_sample_with_fixed_blocking(maps, {"raw": {"y": 32, "x": 32}})
    pooled = downscale(maps, 2)
    expected = oracle_2d(pooled, (2, 2), b if isinstance(b, int) else tuple(map(tuple, b)))
    assert whole.shape == (1, 1, 64, 64)
    np.testing.assert_array_equal(whole, expected)
    # labels are made once, from the stitched maps: tiling does not change them
    np.testing.assert_array_equal(tiled.members["labels"].data, whole)
    assert min(best_iou(truth_2d, whole[0, 0])) > 0.6


def test_model_test_reproduces_stardist_labels_exactly(tmp_path: Path, truth_2d: Array) -> None:
    maps = maps_2d(truth_2d)
    path = label_model(
        tmp_path,
        channels=N_RAYS + 1,
        postprocessing=[step_2d()],
        test_tensors=(maps, oracle_2d(maps, (1, 1)).astype(np.int32)),
    )
    summary = test_model(path)
    assert summary.status == "passed", summary.format_text()
    detail = next(d for d in summary.details if d.name.startswith("reproduce test output"))
    assert "compared exactly" in detail.name


def test_outputs_are_written_into_the_callers_arrays(tmp_path: Path, truth_2d: Array) -> None:
    maps = maps_2d(truth_2d)
    path = label_model(tmp_path, channels=N_RAYS + 1, postprocessing=[step_2d()])
    target = np.full((1, 1, 64, 64), -1, dtype=np.int32)
    with create_prediction_pipeline(path) as pp:
        pp.predict_sample_without_blocking(maps, outputs={"labels": target})
    np.testing.assert_array_equal(target, oracle_2d(maps, (1, 1)))


def test_3d_polyhedra(tmp_path: Path) -> None:
    truth = discs((16, 32, 32), [(8, 10, 10), (8, 22, 20)], [5, 6])
    rays = Rays_GoldenSpiral(N_RAYS, anisotropy=(1.0, 1.0, 1.0))
    prob = edt_prob(truth)
    dist = star_dist3D(truth, rays)
    maps = np.concatenate([prob[None], np.moveaxis(dist, -1, 0)])[None].astype(np.float32)
    kwargs = {
        "prob_threshold": 0.5,
        "nms_threshold": 0.3,
        "n_rays": N_RAYS,
        "grid": [1, 1, 1],
        "b": 1,
        "anisotropy": [1.0, 1.0, 1.0],
    }
    path = label_model(
        tmp_path,
        channels=N_RAYS + 1,
        spatial=("z", "y", "x"),
        postprocessing=[{"id": "stardist_postprocessing", "kwargs": kwargs}],
    )
    labels = predict(model=path, inputs=maps).members["labels"].data
    points, probi, disti = non_maximum_suppression_3d(
        np.ascontiguousarray(dist.astype(np.float32)), prob.astype(np.float32), rays,
        grid=(1, 1, 1), b=1, prob_thresh=0.5, nms_thresh=0.3,
    )
    expected = polyhedron_to_label(
        disti, points, rays=rays, prob=probi, shape=truth.shape, verbose=False
    )
    assert labels.shape == (1, 1, 16, 32, 32)
    np.testing.assert_array_equal(labels[0, 0], expected)
    assert min(best_iou(truth, labels[0, 0])) > 0.6


def test_wrong_channel_count_names_the_op(tmp_path: Path, truth_2d: Array) -> None:
    from bioimageio_core.errors import BioimageioError

    maps = maps_2d(truth_2d)[:, :-1]  # one ray missing
    path = label_model(tmp_path, channels=N_RAYS, postprocessing=[step_2d()])
    with pytest.raises(BioimageioError, match="stardist_postprocessing"):
        predict(model=path, inputs=maps)
