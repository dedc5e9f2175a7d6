"""``cellpose_flow_dynamics`` against the real cellpose package (3.x; 2D and 3D)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cellpose import dynamics, utils
from label_models import Array, best_iou, discs, label_model

from bioimageio_core import predict
from bioimageio_core.pipeline import create_prediction_pipeline

CENTRES = [(14, 14), (20, 44), (46, 22), (48, 50)]
RADII = [7, 9, 8, 6]
SMALL = (58, 6)


def raw_maps(truth: Array) -> Array:
    """(1, n_flows + 1, ...): Cellpose's flows of the true masks (times 5, as its networks predict
    them) and a cell probability (logit) of +5 inside cells, -5 outside."""
    flows = np.asarray(dynamics.masks_to_flows(truth), dtype=np.float32) * 5
    prob = np.where(truth > 0, 5.0, -5.0).astype(np.float32)
    return np.concatenate([flows, prob[None]])[None]


def step(**kwargs: Any) -> dict[str, Any]:
    defaults = {"cellprob_threshold": 0.0, "flow_threshold": 0.4, "do_3D": False}
    return {"id": "cellpose_flow_dynamics", "kwargs": {**defaults, **kwargs}}


def oracle(maps: Array, *, do_3D: bool = False, min_size: int = 15) -> Array:
    result = dynamics.compute_masks(
        maps[0, :-1], maps[0, -1], cellprob_threshold=0.0, flow_threshold=0.4, do_3D=do_3D
    )
    masks = result[0] if isinstance(result, tuple) else result
    if min_size > 0:
        masks = utils.fill_holes_and_remove_small_masks(masks, min_size=min_size)
    return np.asarray(masks)


@pytest.fixture(scope="module")
def truth() -> Array:
    labels = discs((64, 64), CENTRES, RADII)
    small = discs((64, 64), [SMALL], [2])  # 13 pixels, below the default min_size of 15
    labels[small > 0] = 9
    return labels


def test_2d_masks_equal_cellpose_and_recover_the_cells(tmp_path: Path, truth: Array) -> None:
    maps = raw_maps(truth)
    path = label_model(tmp_path, channels=3, postprocessing=[step()], dtype="uint16")
    with create_prediction_pipeline(path) as pp:
        masks = pp.predict_sample_without_blocking(maps).members["labels"].data
        tiled = pp.predict_sample_with_fixed_blocking(maps, {"raw": {"y": 32, "x": 32}})
    assert masks.shape == (1, 1, 64, 64) and masks.dtype == np.uint16
    np.testing.assert_array_equal(masks[0, 0], oracle(maps))
    np.testing.assert_array_equal(tiled.members["labels"].data, masks)  # runs on the stitched maps
    big = np.where(truth == 9, 0, truth)
    assert min(best_iou(big, masks[0, 0])) > 0.9
    assert masks[0, 0][truth == 9].max() == 0  # smaller than min_size: removed


def test_min_size_0_keeps_small_cells_and_uint32_labels(tmp_path: Path, truth: Array) -> None:
    maps = raw_maps(truth)
    path = label_model(
        tmp_path,
        channels=3,
        postprocessing=[step(min_size=0, output_dtype="uint32")],
        dtype="uint32",
    )
    masks = predict(model=path, inputs=maps).members["labels"].data
    assert masks.dtype == np.uint32
    np.testing.assert_array_equal(masks[0, 0], oracle(maps, min_size=0))
    assert masks[0, 0][truth == 9].min() > 0


def test_3d_takes_three_flows(tmp_path: Path) -> None:
    truth = discs((16, 24, 24), [(8, 8, 8), (8, 16, 15)], [4, 5])
    maps = raw_maps(truth)
    assert maps.shape == (1, 4, 16, 24, 24)
    path = label_model(
        tmp_path,
        channels=4,
        spatial=("z", "y", "x"),
        postprocessing=[step(do_3D=True)],
        dtype="uint16",
    )
    masks = predict(model=path, inputs=maps).members["labels"].data
    assert masks.shape == (1, 1, 16, 24, 24)
    np.testing.assert_array_equal(masks[0, 0], oracle(maps, do_3D=True))
    assert min(best_iou(truth, masks[0, 0])) > 0.8
