"""``inputs[i].pad``: the pipeline pads inputs beyond the sample border with the declared mode.

The model of the reference runtime's check: a 3x3 box sum that zero-pads at its own border, with
an output halo of 2. With ``pad`` declared, the output at the sample border is the box sum of the
input padded by ``numpy.pad`` with that mode, in whole-sample and in tiled prediction alike;
without ``pad`` the model sees the real border (its own zero padding applies).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipeline_models import InputDef, OutputDef, conv_model, kernel, oracle_conv

from bioimageio_core.errors import InputError
from bioimageio_core.pipeline import create_prediction_pipeline
from bioimageio_core.testing import test_model

Array = np.ndarray[Any, Any]
BOX = np.ones((3, 3), dtype=np.float32)
PADS: list[dict[str, Any]] = [
    {"mode": "edge"},
    {"mode": "reflect"},
    {"mode": "symmetric"},
    {"mode": "constant", "value": 2.5},
    {},  # constant 0
]


def box_sum(padded: Array) -> Array:
    """3x3 sums over the last two axes ('valid': the result is 2 smaller per axis)."""
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(-2, -1))
    return np.asarray(windows.sum(axis=(-2, -1)))


def numpy_padded(x: Array, width: int, pad: dict[str, Any]) -> Array:
    widths = [(0, 0)] * (x.ndim - 2) + [(width, width)] * 2
    mode = pad.get("mode", "constant")
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=pad.get("value", 0))
    return np.pad(x, widths, mode=mode)


def box_model(folder: Path, pad: dict[str, Any] | None, **input_kwargs: Any) -> Any:
    raw = InputDef("raw", y={"min": 16, "step": 8}, x={"min": 16, "step": 8}, pad=pad, **input_kwargs)
    return conv_model(folder, inputs=[raw], outputs=[OutputDef("out", BOX, halo=2, zeros=True)])


def rand(*shape: int, seed: int = 0) -> Array:
    return np.random.default_rng(seed).uniform(0, 10, size=shape).astype(np.float32)


@pytest.mark.parametrize("pad", PADS, ids=lambda p: str(p.get("mode", "default")))
def test_box_sum_corner_follows_the_declared_mode(tmp_path: Path, pad: dict[str, Any]) -> None:
    model = box_model(tmp_path, pad)
    x = rand(1, 1, 16, 16, seed=1)
    expected = box_sum(numpy_padded(x, 1, pad))
    with create_prediction_pipeline(model) as pp:
        assert pp.border == "pad"
        whole = pp.predict_sample_without_blocking(x).members["out"].data
        big = rand(1, 1, 32, 32, seed=2)
        tiled = pp.predict_sample_with_fixed_blocking(big, {"raw": {"y": 16, "x": 16}})
        tiled_whole = pp.predict_sample_without_blocking(big).members["out"].data
    np.testing.assert_allclose(whole, expected, rtol=1e-6)
    # 32x32 in 16x16 blocks (inner 12) gives the same border values as the whole sample
    np.testing.assert_allclose(tiled.members["out"].data, tiled_whole, rtol=1e-6)
    np.testing.assert_allclose(tiled_whole, box_sum(numpy_padded(big, 1, pad)), rtol=1e-6)


def test_modes_give_different_corners(tmp_path: Path) -> None:
    x = rand(1, 1, 16, 16, seed=3)
    corners: dict[str, float] = {}
    for i, pad in enumerate(PADS):
        (tmp_path / str(i)).mkdir()
        with create_prediction_pipeline(box_model(tmp_path / str(i), pad)) as pp:
            out = pp.predict_sample_without_blocking(x).members["out"].data
        corners[str(pad)] = round(float(out[0, 0, 0, 0]), 3)
    # a 3x3 box reads one pixel beyond the border, where symmetric and edge padding agree
    assert corners[str({"mode": "symmetric"})] == corners[str({"mode": "edge"})]
    assert len(set(corners.values())) == len(PADS) - 1


def test_without_pad_the_model_sees_the_real_border(tmp_path: Path) -> None:
    model = box_model(tmp_path, None)
    x = rand(1, 1, 32, 32, seed=4)
    zero_padded = box_sum(numpy_padded(x, 1, {}))
    with create_prediction_pipeline(model) as pp:
        assert pp.border == "inside"
        whole = pp.predict_sample_without_blocking(x).members["out"].data
        tiled = pp.predict_sample_with_fixed_blocking(x, {"raw": {"y": 16, "x": 16}})
    np.testing.assert_allclose(whole, zero_padded, rtol=1e-6)
    np.testing.assert_allclose(tiled.members["out"].data, zero_padded, rtol=1e-6)


def test_border_inside_pads_only_up_to_valid_sizes_with_the_declared_mode(tmp_path: Path) -> None:
    """Sizes the model does not accept are padded (right side) with the input's mode too."""
    model = box_model(tmp_path, {"mode": "constant", "value": 100.0})
    x = rand(1, 1, 17, 16, seed=5)  # y padded to 24
    with create_prediction_pipeline(model, border="inside") as pp:
        out = pp.predict_sample_without_blocking(x).members["out"].data
    padded = np.pad(x, [(0, 0), (0, 0), (0, 7), (0, 0)], constant_values=100.0)
    expected = box_sum(np.pad(padded, [(0, 0), (0, 0), (1, 1), (1, 1)]))[..., :17, :]
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out[0, 0, -1].min() > 200  # the last row sees the fill value below it


def test_constant_value_is_a_raw_value_taken_through_preprocessing(tmp_path: Path) -> None:
    """The reference pads the raw input, then preprocesses: the fill value is in raw units."""
    pad = {"mode": "constant", "value": 3.0}
    preprocessing = [{"id": "zero_mean_unit_variance", "kwargs": {"axes": ["y", "x"]}}]
    model = box_model(tmp_path, pad, channels=2, preprocessing=preprocessing)
    x = rand(1, 2, 16, 16, seed=6)
    x[0, 1] *= 3.0
    mean = x.mean(axis=(2, 3), keepdims=True, dtype=np.float64)
    std = x.std(axis=(2, 3), keepdims=True, dtype=np.float64)
    raw_padded = numpy_padded(x.astype(np.float64), 1, pad)  # pad first, as in the reference
    expected = box_sum((raw_padded - mean) / (std + 1e-6))
    with create_prediction_pipeline(model) as pp:
        out = pp.predict_sample_without_blocking(x).members["out"].data
        tiled = pp.predict_sample_with_fixed_blocking(x, {"raw": {"y": 16, "x": 16}})
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tiled.members["out"].data, out, rtol=1e-5, atol=1e-5)


def test_a_constant_value_that_preprocessing_cannot_take_is_an_input_error(tmp_path: Path) -> None:
    # statistics per row (over x only) depend on the position along y, a padded axis
    preprocessing = [{"id": "zero_mean_unit_variance", "kwargs": {"axes": ["x"]}}]
    model = box_model(tmp_path, {"mode": "constant", "value": 1.0}, preprocessing=preprocessing)
    with create_prediction_pipeline(model) as pp, pytest.raises(InputError, match="raw"):
        pp.predict_sample_without_blocking(rand(1, 1, 16, 16))


def test_model_testing_feeds_the_test_input_unpadded(tmp_path: Path) -> None:
    """Test tensors are raw model input and output: the test output is the zero-padded sum."""
    box_model(tmp_path, {"mode": "edge"})
    x = rand(1, 1, 16, 16, seed=7)
    np.save(tmp_path / "in.npy", x)
    np.save(tmp_path / "out.npy", box_sum(numpy_padded(x, 1, {})))
    data = yaml.safe_load((tmp_path / "rdf.yaml").read_text())
    data["inputs"][0]["test_tensor"] = {"source": "in.npy"}
    data["outputs"][0]["test_tensor"] = {"source": "out.npy"}
    (tmp_path / "rdf.yaml").write_text(yaml.safe_dump(data))
    summary = test_model(tmp_path / "rdf.yaml")
    assert summary.status == "passed", summary.format_text()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pad=st.sampled_from(PADS),
    radius=st.integers(1, 3),
    zeros=st.booleans(),
    size_y=st.integers(8, 70),
    size_x=st.integers(8, 70),
    ns=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_tiled_equals_whole_sample_for_every_mode(
    tmp_path_factory: pytest.TempPathFactory,
    pad: dict[str, Any],
    radius: int,
    zeros: bool,
    size_y: int,
    size_x: int,
    ns: int,
    seed: int,
) -> None:
    k = kernel(radius, seed=seed)
    folder = tmp_path_factory.mktemp("model")
    raw = InputDef("raw", y={"min": 16, "step": 8}, x={"min": 16, "step": 8}, pad=pad)
    model = conv_model(folder, inputs=[raw], outputs=[OutputDef("out", k, halo=radius, zeros=zeros)])
    x = rand(1, 1, size_y, size_x, seed=seed)
    with create_prediction_pipeline(model) as pp:
        whole = pp.predict_sample_without_blocking(x).members["out"].data
        tiled = pp.predict_sample_with_blocking(x, ns=ns).members["out"].data
    np.testing.assert_allclose(tiled, whole, rtol=1e-5, atol=1e-4)
    # the model's own border handling never shows: it only ever sees padded context
    expected = oracle_conv(numpy_padded(x, radius, pad), k)[..., radius:-radius, radius:-radius]
    np.testing.assert_allclose(whole, expected, rtol=1e-5, atol=1e-4)
