from __future__ import annotations

import math
from fractions import Fraction
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import parameterized_sizes, scales

from bioimageio_core.shapes import (
    AxisShape,
    DataDependentSize,
    FixedSize,
    ModelShape,
    ParameterizedSize,
    ShapeError,
    SizeReference,
    TensorShape,
    block_halos,
    block_shape,
    check_input_sizes,
    fill_data_dependent_sizes,
    get_batch_size,
    get_n,
    get_ns,
    input_halos,
    input_sizes,
    model_shape,
    output_sizes,
    valid_input_sizes,
    valid_size,
)


@settings(max_examples=100, deadline=None)
@given(size=parameterized_sizes, s=st.integers(-10, 500))
def test_get_n_is_the_smallest_n_reaching_s(size: ParameterizedSize, s: int) -> None:
    n = get_n(size, s)
    assert size.min + n * size.step >= s
    assert size.min + (n - 1) * size.step < s


@settings(max_examples=100, deadline=None)
@given(size=parameterized_sizes, s=st.integers(1, 500))
def test_valid_size_is_the_smallest_valid_size_not_below_s(size: ParameterizedSize, s: int) -> None:
    v = valid_size(size, s)
    assert v is not None and v >= s and size.is_valid(v)
    brute = next(x for x in range(s, s + size.min + size.step) if size.is_valid(x))
    assert v == brute


def test_valid_size_of_fixed_and_batch_axes() -> None:
    assert valid_size(FixedSize(8), 5) == 8
    assert valid_size(FixedSize(8), 9) is None
    assert valid_size(None, 7) == 7


def _ref_model(ref_scale: float, out_scale: float, offset: int) -> ModelShape:
    return ModelShape(
        inputs=[TensorShape("a", [AxisShape("x", "space", ParameterizedSize(1, 1), ref_scale)])],
        outputs=[
            TensorShape("b", [AxisShape("x", "space", SizeReference("a", "x", offset), out_scale)])
        ],
    )


@settings(max_examples=150, deadline=None)
@given(ref_scale=scales(), out_scale=scales(), offset=st.integers(-5, 5), n=st.integers(0, 60))
def test_output_size_matches_brute_force(
    ref_scale: Fraction, out_scale: Fraction, offset: int, n: int
) -> None:
    model = _ref_model(float(ref_scale), float(out_scale), offset)
    sizes = input_sizes(model, n)
    ref_size = 1 + n
    assert sizes == {("a", "x"): ref_size}
    # the largest number of output pixels whose extent fits into the referenced extent
    m = 0
    while (m + 1) * out_scale <= ref_size * ref_scale:
        m += 1
    assert output_sizes(model, sizes) == {("b", "x"): m + offset}


def _model() -> ModelShape:
    raw = TensorShape(
        "raw",
        [
            AxisShape("batch", "batch", None),
            AxisShape("channel", "channel", FixedSize(2)),
            AxisShape("y", "space", ParameterizedSize(64, 16)),
            AxisShape("x", "space", ParameterizedSize(32, 8)),
        ],
    )
    mask = TensorShape(
        "mask",
        [AxisShape("batch", "batch", None), AxisShape("y", "space", SizeReference("raw", "y"))],
    )
    out = TensorShape(
        "out",
        [
            AxisShape("batch", "batch", None),
            AxisShape("channel", "channel", SizeReference("raw", "channel", 3)),
            AxisShape("v", "space", SizeReference("raw", "y", -4), scale=2.0, halo=4),
            AxisShape("u", "space", SizeReference("raw", "x"), halo=2),
        ],
    )
    small = TensorShape(
        "small",
        [
            AxisShape("u", "space", SizeReference("raw", "x"), halo=5),
            AxisShape("index", "index", DataDependentSize()),
        ],
    )
    return ModelShape(inputs=[raw, mask], outputs=[out, small])


def test_input_and_output_sizes_with_blocksize_parameter_and_batch() -> None:
    model = _model()
    sizes = input_sizes(model, {("raw", "y"): 2, ("raw", "x"): 1}, batch_size=3)
    assert sizes == {
        ("raw", "batch"): 3,
        ("raw", "channel"): 2,
        ("raw", "y"): 64 + 2 * 16,
        ("raw", "x"): 32 + 8,
        ("mask", "batch"): 3,
        ("mask", "y"): 96,
    }
    assert get_ns(model, sizes) == {("raw", "y"): 2, ("raw", "x"): 1}
    assert get_batch_size(sizes, model) == 3
    assert output_sizes(model, sizes) == {
        ("out", "batch"): 3,
        ("out", "channel"): 5,
        ("out", "v"): 96 // 2 - 4,
        ("out", "u"): 40,
        ("small", "u"): 40,
        ("small", "index"): None,
    }
    assert input_sizes(model, 0)[("raw", "y")] == 64


def test_batch_size_mismatch_is_an_error() -> None:
    with pytest.raises(ShapeError, match="batch size mismatch"):
        get_batch_size({("a", "batch"): 2, ("b", "batch"): 3, ("c", "batch"): 1})
    assert get_batch_size({("a", "batch"): 1, ("a", "x"): 7}) == 1


def test_halo_is_keyed_by_the_referenced_input_axis_and_maximal() -> None:
    model = _model()
    # out.v: halo 4 output pixels of scale 2 -> 8 input pixels on raw.y
    # out.u: halo 2, small.u: halo 5 -> max 5 on raw.x
    assert input_halos(model) == {("raw", "y"): 8, ("raw", "x"): 5}
    # the -4 offset on out.v is a crop of 2 output pixels per side = 4 input pixels;
    # mask.y references raw.y, so it is cut with the same halo
    assert block_halos(model) == {("raw", "y"): 12, ("raw", "x"): 5, ("mask", "y"): 12}


def test_non_integral_halo_is_a_clear_error() -> None:
    model = ModelShape(
        inputs=[TensorShape("a", [AxisShape("x", "space", FixedSize(64))])],
        outputs=[
            TensorShape("b", [AxisShape("x", "space", SizeReference("a", "x"), scale=0.5, halo=3)])
        ],
    )
    with pytest.raises(ShapeError, match=r"halo of output b\.x .* 1\.5"):
        input_halos(model)


def test_valid_input_sizes_and_checks_name_the_axis() -> None:
    model = _model()
    sample = {("raw", "batch"): 1, ("raw", "channel"): 2, ("raw", "y"): 500, ("raw", "x"): 33}
    sample[("mask", "batch")] = 1
    valid = valid_input_sizes(model, sample)
    assert valid[("raw", "y")] == 512 and valid[("raw", "x")] == 40
    assert valid[("mask", "y")] == 512
    check_input_sizes(model, valid)
    with pytest.raises(
        ShapeError, match=r"inputs\[0\] \('raw'\) axis 'y': size 500 is not valid.*496 or 512"
    ):
        check_input_sizes(model, {**valid, ("raw", "y"): 500})
    with pytest.raises(ShapeError, match="fixed size"):
        valid_input_sizes(model, {**sample, ("raw", "channel"): 3})


def test_block_shape_is_clamped_to_the_sample() -> None:
    model = _model()
    sample = {("raw", "batch"): 2, ("raw", "channel"): 2, ("raw", "y"): 70, ("raw", "x"): 1000}
    sample[("mask", "batch")] = 2
    shape = block_shape(model, sample, ns=10, batch_size=1)
    # y: one block must hold 70 + 2*12 -> 96; x: n = 10 -> 32 + 80
    assert shape[("raw", "y")] == 96
    assert shape[("raw", "x")] == 112
    assert shape[("raw", "batch")] == 1
    assert shape[("mask", "y")] == 96
    assert block_shape(model, sample)[("raw", "batch")] == 2


def test_axis_specs_from_a_model_description() -> None:
    def axis(**kw: object) -> SimpleNamespace:
        return SimpleNamespace(**kw)

    model = SimpleNamespace(
        inputs=[
            SimpleNamespace(
                id="raw",
                axes=[
                    axis(type="batch", id="batch", size=None),
                    axis(type="channel", id="channel", channel_names=["a", "b"]),
                    axis(
                        type="space",
                        id="y",
                        size=SimpleNamespace(min=64, step=16),
                        scale=1.0,
                        concatenable=False,
                    ),
                ],
            )
        ],
        outputs=[
            SimpleNamespace(
                id="out",
                axes=[
                    axis(type="batch", id="batch", size=None),
                    axis(type="index", id="index", size=SimpleNamespace(min=1, max=None)),
                    axis(
                        type="space",
                        id="y",
                        scale=2.0,
                        halo=8,
                        size=SimpleNamespace(tensor_id="raw", axis_id="y", offset=-2),
                    ),
                ],
            )
        ],
    )
    spec = model_shape(model)
    assert spec.inputs[0].axes == (
        AxisShape("batch", "batch", None),
        AxisShape("channel", "channel", FixedSize(2)),
        AxisShape("y", "space", ParameterizedSize(64, 16)),
    )
    assert spec.outputs[0].axes == (
        AxisShape("batch", "batch", None),
        AxisShape("index", "index", DataDependentSize(1, None)),
        AxisShape("y", "space", SizeReference("raw", "y", -2), scale=2.0, halo=8),
    )
    assert input_halos(spec) == {("raw", "y"): 16}
    assert spec.inputs[0].axes[2].splittable and not spec.inputs[0].axes[1].splittable


def test_blocksize_math_agrees_with_the_formula() -> None:
    size = ParameterizedSize(64, 16)
    for n in range(5):
        assert size.size(n) == 64 + 16 * n
        assert get_n(size, size.size(n)) == n
    assert math.ceil((500 - 64) / 16) == get_n(size, 500)


def test_data_dependent_sizes_come_from_the_output() -> None:
    model = _model()
    sizes = output_sizes(model, input_sizes(model, 1, batch_size=2))
    assert sizes[("small", "index")] is None
    filled = fill_data_dependent_sizes(model, sizes, {"small": (sizes[("small", "u")], 17)})
    assert filled[("small", "index")] == 17
    assert {k: v for k, v in filled.items() if k != ("small", "index")} == {
        k: v for k, v in sizes.items() if k != ("small", "index")
    }
    with pytest.raises(ShapeError, match="not known yet"):
        fill_data_dependent_sizes(model, sizes, {})
