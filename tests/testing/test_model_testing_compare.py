"""Comparison of outputs with test outputs, tolerance choice and determinism (pure functions)."""

from __future__ import annotations

import random
from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from model_testing_helpers import MakeModel

from bioimageio_core import testing
from bioimageio_core.loading import load_description
from bioimageio_core.spec import IntervalOrRatioDataDescr, ModelDescr
from bioimageio_core.testing import Tolerance, compare_arrays, get_tolerance

floats32 = st.floats(-1e3, 1e3, width=32, allow_nan=False)
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6)


@st.composite
def pairs(draw: st.DrawFn) -> tuple[Any, Any]:
    shape = draw(shapes)
    expected = draw(hnp.arrays(np.float32, shape, elements=floats32))
    noise = draw(hnp.arrays(np.float32, shape, elements=st.floats(-0.0078125, 0.0078125, width=32)))
    return expected + noise, expected


tolerances = st.builds(
    Tolerance,
    relative=st.sampled_from([0.0, 1e-4, 1e-3, 1e-2]),
    absolute=st.sampled_from([0.0, 1e-4, 1e-3, 5e-3]),
    mismatched_ppm=st.sampled_from([0, 100, 1000, 1e6]),
)


@settings(max_examples=60, deadline=None)
@given(pairs(), tolerances)
def test_mismatch_count_and_errors_match_numpy(pair: tuple[Any, Any], tol: Tolerance) -> None:
    actual, expected = pair
    c = compare_arrays(actual, expected, tol)
    # numpy.isclose is the reference's semantics: |a - e| <= atol + rtol * |e|, NaN never close
    close = np.isclose(actual, expected, rtol=tol.relative, atol=tol.absolute)
    assert c.mismatched == int((~close).sum())
    assert c.size == actual.size
    assert c.ppm == pytest.approx(c.mismatched / actual.size * 1e6)
    assert c.passed == (c.mismatched / actual.size * 1e6 <= tol.mismatched_ppm)
    diff64 = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    assert c.max_abs_error == pytest.approx(diff64.max(), rel=1e-6, abs=1e-6)
    rel64 = diff64 / (np.abs(expected.astype(np.float64)) + 1e-6)
    assert c.max_rel_error == pytest.approx(rel64.max(), rel=1e-4, abs=1e-6)
    assert len(c.worst) == min(testing.N_WORST, c.mismatched)
    for m in c.worst:
        assert not close[m.index]
        assert m.actual == pytest.approx(float(actual[m.index]))
        assert m.expected == pytest.approx(float(expected[m.index]))


def test_boundary_is_inclusive_and_asymmetric() -> None:
    tol = Tolerance(relative=0.5, absolute=0.0, mismatched_ppm=0)
    # |1 - 2| = 1 <= 0.5 * |2|: close; swapped, |2 - 1| = 1 > 0.5 * |1|: mismatched
    assert compare_arrays([1.0], [2.0], tol).mismatched == 0
    assert compare_arrays([2.0], [1.0], tol).mismatched == 1
    atol = Tolerance(relative=0.0, absolute=0.25, mismatched_ppm=0)
    assert compare_arrays([0.25], [0.0], atol).passed
    assert not compare_arrays([np.nextafter(np.float32(0.25), np.float32(1))], [0.0], atol).passed


def test_nan_and_infinity() -> None:
    tol = Tolerance(mismatched_ppm=0)
    assert compare_arrays([np.inf, -np.inf], [np.inf, -np.inf], tol).passed
    assert compare_arrays([np.inf], [-np.inf], tol).mismatched == 1
    c = compare_arrays([np.nan, 1.0], [np.nan, 1.0], tol)
    assert c.mismatched == 1  # NaN is never close to anything, itself included
    assert c.worst[0].index == (0,)


def test_comparison_in_float32() -> None:
    # 1 + 1e-9 and 1 are the same float32: no difference at all, even with zero tolerance
    c = compare_arrays(np.array([1 + 1e-9]), np.array([1.0]), Tolerance(0.0, 0.0, 0))
    assert c.passed and c.max_abs_error == 0.0


@pytest.mark.parametrize(
    ("n_bad", "ppm", "passes"),
    [
        (0, 100, True),
        (1, 100, True),
        (2, 100, False),
        (1, 99, False),
        (10, 1000, True),
        (11, 1000, False),
    ],
)
def test_mismatched_elements_per_million(n_bad: int, ppm: float, passes: bool) -> None:
    expected = np.zeros(10_000, dtype=np.float32)  # one element is 100 per million
    actual = expected.copy()
    actual[:n_bad] = 1.0
    c = compare_arrays(actual, expected, Tolerance(mismatched_ppm=ppm))
    assert c.mismatched == n_bad
    assert c.ppm == pytest.approx(n_bad * 100)
    assert c.passed is passes


def test_worst_elements_are_ranked_and_located() -> None:
    expected = np.zeros((2, 5, 7), dtype=np.float32)
    actual = expected.copy()
    planted = {(1, 4, 6): 3.0, (0, 0, 0): -5.0, (1, 2, 3): 0.5, (0, 3, 1): 0.1}
    for index, value in planted.items():
        actual[index] = value
    c = compare_arrays(actual, expected, Tolerance(), n_worst=3)
    assert c.mismatched == 4
    assert [m.index for m in c.worst] == [(0, 0, 0), (1, 4, 6), (1, 2, 3)]
    assert [m.actual for m in c.worst] == [-5.0, 3.0, 0.5]
    assert c.max_abs_error == 5.0
    text = c.describe(("batch", "y", "x"))
    assert "(batch=0, y=0, x=0): -5 instead of 0" in text
    assert "4 of 70 elements mismatched" in text


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="shape"):
        compare_arrays(np.zeros((2, 3)), np.zeros((3, 2)))


# --- tolerance choice ------------------------------------------------------------------------


def _model(make_model: MakeModel, config: dict[str, Any] | None) -> ModelDescr:
    descr = load_description(make_model(config=config), perform_io_checks=False)
    assert isinstance(descr, ModelDescr)
    return descr


def test_default_tolerance(make_model: MakeModel) -> None:
    model = _model(make_model, None)
    assert get_tolerance(model, "out", "onnx") == Tolerance(1e-3, 1e-3, 100)
    # a 0.4 description allows no mismatched element
    assert get_tolerance(model, "out", "onnx", original_format_version="0.4.10") == Tolerance(
        1e-3, 1e-3, 0
    )


def test_legacy_test_kwargs(make_model: MakeModel) -> None:
    config = {
        "bioimageio": {
            "test_kwargs": {
                "onnx": {"absolute_tolerance": 0.01},
                "torchscript": {"relative_tolerance": 0.002, "absolute_tolerance": 0.0},
                "keras_hdf5": {"decimal": 3},
            }
        }
    }
    model = _model(make_model, config)
    assert get_tolerance(model, "out", "onnx") == Tolerance(1e-3, 0.01, 100)
    assert get_tolerance(model, "out", "torchscript") == Tolerance(0.002, 0.0, 100)
    keras = get_tolerance(model, "out", "keras_hdf5")
    assert keras.relative == 0.0 and keras.absolute == pytest.approx(1.5e-3)
    assert get_tolerance(model, "out", "pytorch_state_dict") == Tolerance(1e-3, 1e-3, 100)


def test_first_matching_reproducibility_entry_replaces_everything(make_model: MakeModel) -> None:
    config = {
        "bioimageio": {
            "test_kwargs": {"onnx": {"absolute_tolerance": 0.5}},
            "reproducibility_tolerance": [
                {"weights_formats": ["torchscript"], "absolute_tolerance": 0.1},
                {"output_ids": "any_discrete_output", "mismatched_elements_per_million": 5},
                {
                    "output_ids": ["out"],
                    "weights_formats": ["onnx"],
                    "relative_tolerance": 0.005,
                    "mismatched_elements_per_million": 7,
                },
                {"absolute_tolerance": 0.3},
            ],
        }
    }
    model = _model(make_model, config)
    assert get_tolerance(model, "out", "onnx") == Tolerance(0.005, 1e-3, 7)
    assert get_tolerance(model, "out", "torchscript") == Tolerance(1e-3, 0.1, 100)
    assert get_tolerance(model, "out", "keras_hdf5") == Tolerance(1e-3, 0.3, 100)


def test_tolerance_classes_follow_the_output_dtype(make_model: MakeModel) -> None:
    model = _model(make_model, None)  # no key: the format's default entries
    discrete = attrs.evolve(
        model,
        outputs=(attrs.evolve(model.outputs[0], data=IntervalOrRatioDataDescr(type="uint16")),),
    )
    assert get_tolerance(model, "out", "onnx") == Tolerance(1e-3, 1e-3, 100)
    assert get_tolerance(discrete, "out", "onnx") == Tolerance(0.0, 0.0, 1000)


# --- determinism ------------------------------------------------------------------------------


def test_enable_determinism_seeds_python_and_numpy() -> None:
    testing.enable_determinism("seed_only", ["numpy_conv"])
    drawn = (random.random(), np.random.random(3))
    assert drawn[0] == random.Random(0).random()
    np.testing.assert_array_equal(drawn[1], np.random.RandomState(0).random_sample(3))
    with pytest.raises(ValueError, match="seed_only"):
        testing.enable_determinism("everything")  # type: ignore[arg-type]


def test_full_determinism_leaves_framework_switches_to_the_plugins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The core knows no framework: TensorFlow's oneDNN switch is set by the tensorflow and
    keras plugins' determinism hooks (their tests check it)."""
    import os

    from bioimageio_core import plugins

    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.setenv("BIOIMAGEIO_LOAD_PLUGINS", "no-such-plugin")  # the core alone
    plugins.reset()
    try:
        testing.enable_determinism("full", ["onnx", "tensorflow_saved_model_bundle", "keras_hdf5"])
    finally:
        plugins.reset()
    assert "TF_ENABLE_ONEDNN_OPTS" not in os.environ


def test_enable_determinism_seeds_each_usable_backend_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bioimageio_core import plugins
    from bioimageio_core.hookspecs import WeightFormatSpec

    calls: list[tuple[str, str, int]] = []

    def seeder(name: str) -> Any:
        return lambda mode, seed: calls.append((name, mode, seed))

    shared = seeder("torch")

    def spec(name: str, seed: Any, available: bool = True) -> WeightFormatSpec:
        return WeightFormatSpec(
            name=name,
            entry_class=object,
            create_adapter=lambda request: None,  # type: ignore[arg-type,return-value]
            is_available=lambda: None if available else "not installed",
            enable_determinism=seed,
        )

    specs = {
        "torchscript": spec("torchscript", shared),
        "pytorch_state_dict": spec("pytorch_state_dict", shared),
        "tensorflow_saved_model_bundle": spec("tensorflow_saved_model_bundle", seeder("tf"), False),
        "onnx": spec("onnx", None),
    }
    monkeypatch.setattr(plugins, "weight_formats", lambda settings=None: specs)
    formats = ["torchscript", "pytorch_state_dict", "onnx", "tensorflow_saved_model_bundle", "x"]
    testing.enable_determinism("full", formats)
    # one call per framework, none for a format whose plugin cannot run here or has no seeding
    assert calls == [("torch", "full", 0)]


def test_resize_to_crops_centred_and_pads_symmetric() -> None:
    from bioimageio_core.tensor import Tensor

    data = np.arange(10, dtype=np.float32).reshape(1, 10)
    t = Tensor(data, ("batch", "x"))
    np.testing.assert_array_equal(testing.resize_to(t, {"x": 6}).data, data[:, 2:8])
    padded = testing.resize_to(t, {"x": 13, "batch": 2}).data
    assert padded.shape == (2, 13)
    np.testing.assert_array_equal(padded[0], [0, *range(10), 9, 8])  # left d // 2 = 1, right 2
    np.testing.assert_array_equal(padded[1], padded[0])


def test_size_cases() -> None:
    from bioimageio_core.shapes import (
        AxisShape,
        FixedSize,
        ModelShape,
        ParameterizedSize,
        TensorShape,
    )

    def model(batch: Any, space: Any) -> ModelShape:
        axes = [AxisShape("y", "space", space)]
        if batch is not False:
            axes.insert(0, AxisShape("batch", "batch", batch))
        return ModelShape([TensorShape("raw", axes)], [TensorShape("out", axes)])

    assert testing.size_cases(model(None, ParameterizedSize(8, 4))) == [
        (1, 0),
        (1, 1),
        (1, 2),
        (2, 0),
        (2, 1),
        (2, 2),
    ]
    assert testing.size_cases(model(FixedSize(1), FixedSize(32))) == [(1, 0)]
    assert testing.size_cases(model(False, FixedSize(32))) == [(1, 0)]


def test_install_hints_name_the_plugin_distribution() -> None:
    from bioimageio_core import plugins
    from bioimageio_core.errors import UnsupportedWeightFormatError
    from bioimageio_core.settings import Settings

    assert plugins.install_hint_for("onnx") == (
        "pip install bioimageio-run-onnx (from this repository: plugins/onnx)"
    )
    assert plugins.install_hint_for("keras_v3").startswith("pip install bioimageio-run-keras ")
    assert "'my_format'" in plugins.install_hint_for("my_format")
    no_backends = Settings(load_plugins=("no-such-plugin",))  # built-in ops only
    with pytest.raises(UnsupportedWeightFormatError) as info:
        plugins.choose_weight_format(["torchscript", "onnx"], settings=no_backends)
    text = str(info.value)
    assert "torchscript: no installed plugin provides this format (it is run by " in text
    assert "bioimageio-run-torch" in text and "bioimageio-run-onnx" in text


def test_check_output_sizes() -> None:
    from bioimageio_core.shapes import (
        AxisShape,
        DataDependentSize,
        ModelShape,
        ParameterizedSize,
        SizeReference,
        TensorShape,
    )

    spec = ModelShape(
        [
            TensorShape(
                "raw",
                [AxisShape("batch", "batch", None), AxisShape("y", "space", ParameterizedSize(8, 4))],
            )
        ],
        [
            TensorShape(
                "half",
                [
                    AxisShape("batch", "batch", None),
                    AxisShape("y", "space", SizeReference("raw", "y"), scale=2.0),
                ],
            ),
            TensorShape("n", [AxisShape("i", "index", DataDependentSize(1, 5))]),
        ],
    )
    sizes = {("raw", "batch"): 2, ("raw", "y"): 16}
    good = {"half": {"batch": 2, "y": 8}, "n": {"i": 5}}
    assert testing.check_output_sizes(spec, sizes, good) == []
    bad = {"half": {"batch": 2, "y": 16}, "n": {"i": 6}}
    issues = testing.check_output_sizes(spec, sizes, bad)
    assert [i.loc for i in issues] == [("outputs", 0, "axes", 1), ("outputs", 1, "axes", 0)]
    assert "size 16, expected 8" in issues[0].msg
    assert "outside [1, 5]" in issues[1].msg
    missing = testing.check_output_sizes(spec, sizes, {"half": {"batch": 2, "y": 8}})
    assert [i.msg for i in missing] == ["the model returned no output 'n'"]
