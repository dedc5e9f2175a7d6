"""Axis ids: parsing, guessing from shape, resolution order and fitting to a model's axes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bioimageio_core.errors import InputError
from bioimageio_core.io.axes import (
    fit_to_axes,
    guess_axes,
    parse_axes,
    resolve_axes,
)
from bioimageio_core.tensor import Tensor

ALL_IDS = ("batch", "channel", "time", "index", "z", "y", "x")


def test_parse_letters_and_ids() -> None:
    assert parse_axes("bcyx") == ("batch", "channel", "y", "x")
    assert parse_axes("TZYX") == ("time", "z", "y", "x")
    assert parse_axes(["b", "channel", "y", "x"]) == ("batch", "channel", "y", "x")
    assert parse_axes(("cells", "y")) == ("cells", "y")


@pytest.mark.parametrize("bad", ["yxq", "yy", ["x", "x"], ["channel", "c"], ["", "y"]])
def test_parse_rejects(bad: str | list[str]) -> None:
    with pytest.raises(InputError):
        parse_axes(bad)


def test_unknown_letter_message_suggests_list() -> None:
    with pytest.raises(InputError, match="'a'") as info:
        parse_axes("batch")
    assert "list" in str(info.value)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((64, 48), "yx"),
        ((64, 48, 3), "yxc"),
        ((64, 48, 4), "yxc"),
        ((64, 48, 1), "yxc"),
        ((3, 64, 48), "cyx"),
        ((2, 64, 48), "cyx"),
        ((10, 64, 48), "zyx"),
        ((64, 48, 2), "zyx"),
        ((1, 1, 512, 512), "bcyx"),
        ((1, 3, 64, 64), "bcyx"),
        ((1, 512, 512, 1), "byxc"),
        ((16, 64, 64, 3), "zyxc"),
        ((2, 16, 64, 64), "czyx"),
        ((10, 16, 64, 64), "czyx"),
        ((1, 2, 16, 64, 64), "bczyx"),
        ((1, 16, 64, 64, 3), "bzyxc"),
    ],
)
def test_guess_table(shape: tuple[int, ...], expected: str) -> None:
    assert guess_axes(shape) == parse_axes(expected)


@pytest.mark.parametrize("shape", [(5,), (), (1, 1, 1, 1, 1, 1)])
def test_guess_refuses_other_ndims(shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError, match="axes="):
        guess_axes(shape)


sizes = st.integers(1, 600)


@settings(max_examples=150, deadline=None)
@given(st.lists(sizes, min_size=2, max_size=5))
def test_guess_properties(shape: list[int]) -> None:
    dims = guess_axes(shape)
    assert len(dims) == len(shape)
    assert len(set(dims)) == len(dims)
    assert dims[-2:] in (("y", "x"), ("x", "channel"))
    by_id = dict(zip(dims, shape, strict=True))
    # a channel guessed at the end is image-like (grey, RGB, RGBA)
    if dims[-1] == "channel":
        assert by_id["channel"] in (1, 3, 4)
    # a leading channel (3D) or batch (4D) is only guessed for a small size
    if len(shape) == 3 and dims[0] == "channel":
        assert shape[0] <= 4
    if len(shape) == 4 and dims[0] == "batch":
        assert shape[0] <= 4
    # a colour-like last size with large leading sizes is always taken for channel-last
    if shape[-1] in (1, 3, 4) and all(s > 4 for s in shape[:-1]) and len(shape) > 2:
        assert dims[-1] == "channel"
    if len(shape) == 2:
        assert dims == ("y", "x")


@settings(max_examples=60, deadline=None)
@given(st.lists(sizes, min_size=2, max_size=5), st.permutations(ALL_IDS))
def test_resolve_precedence(shape: list[int], ids: tuple[str, ...]) -> None:
    explicit = tuple(ids[: len(shape)])
    recorded = tuple(reversed(explicit))
    assert resolve_axes(shape, explicit, recorded=recorded) == explicit
    assert resolve_axes(shape, None, recorded=recorded, expected=explicit) == recorded
    assert resolve_axes(shape, None, expected=explicit) == explicit
    assert resolve_axes(shape, None, expected=[*explicit, "extra"]) == guess_axes(shape)
    assert resolve_axes(shape) == guess_axes(shape)


def test_resolve_explicit_length_mismatch() -> None:
    with pytest.raises(InputError, match="3 dimensions"):
        resolve_axes((4, 5, 6), "yx", source="img.tif")


def _oracle_fit(data: np.ndarray, dims: tuple[str, ...], target: tuple[str, ...]) -> np.ndarray:
    """Element-wise: out[idx] = data[idx of the shared axes, 0 for dropped singletons]."""
    sizes = dict(zip(dims, data.shape, strict=True))
    out_shape = tuple(sizes.get(d, 1) for d in target)
    out = np.empty(out_shape, dtype=data.dtype)
    for idx in itertools.product(*(range(s) for s in out_shape)):
        by_id = dict(zip(target, idx, strict=True))
        out[idx] = data[tuple(by_id.get(d, 0) for d in dims)]
    return out


@st.composite
def fit_cases(draw: st.DrawFn) -> tuple[Tensor, tuple[str, ...]]:
    shared = draw(st.lists(st.sampled_from(ALL_IDS), min_size=1, max_size=3, unique=True))
    rest = [d for d in ALL_IDS if d not in shared]
    only_src = draw(st.lists(st.sampled_from(rest), max_size=2, unique=True))
    only_tgt = draw(
        st.lists(st.sampled_from([d for d in rest if d not in only_src]), max_size=2, unique=True)
    )
    src = draw(st.permutations([*shared, *only_src]))
    tgt = tuple(draw(st.permutations([*shared, *only_tgt])))
    shape = [1 if d in only_src else draw(st.integers(1, 4)) for d in src]
    data = np.arange(int(np.prod(shape)), dtype="int32").reshape(shape)
    return Tensor(data, src), tgt


@settings(max_examples=80, deadline=None)
@given(fit_cases())
def test_fit_matches_oracle(case: tuple[Tensor, tuple[str, ...]]) -> None:
    tensor, target = case
    fitted = fit_to_axes(tensor, target)
    assert fitted.dims == target
    np.testing.assert_array_equal(fitted.data, _oracle_fit(tensor.data, tensor.dims, target))
    assert np.shares_memory(fitted.data, tensor.data)


def test_fit_rgb_image_to_bcyx() -> None:
    rgb = Tensor(np.arange(5 * 6 * 3).reshape(5, 6, 3), guess_axes((5, 6, 3)))
    fitted = fit_to_axes(rgb, "bcyx", {"batch": 1, "channel": 3})
    assert fitted.shape == (1, 3, 5, 6)
    np.testing.assert_array_equal(fitted.data[0, 2], rgb.data[:, :, 2])


def test_fit_error_names_tensor_and_channels() -> None:
    rgb = Tensor(np.zeros((5, 6, 3)), ("y", "x", "channel"))
    with pytest.raises(InputError) as info:
        fit_to_axes(rgb, "bcyx", {"channel": 1}, name="input 'raw'")
    assert str(info.value).startswith(
        "input 'raw' has axes (y, x, channel) with channel=3 but the model expects 1 channel"
    )
    with pytest.raises(InputError, match="expects 2 channels"):
        fit_to_axes(rgb, "bcyx", {"channel": 2}, name="input 'raw'")


def test_fit_error_for_extra_non_singleton_axis() -> None:
    volume = Tensor(np.zeros((5, 6, 7)), ("z", "y", "x"))
    with pytest.raises(InputError, match=r"input 'raw' has axes \(z, y, x\) with z=5") as info:
        fit_to_axes(volume, "bcyx", name="input 'raw'")
    assert "axes=" in str(info.value)


def test_fit_error_when_missing_axis_must_be_larger() -> None:
    image = Tensor(np.zeros((5, 6)), ("y", "x"))
    with pytest.raises(
        InputError,
        match=r"has axes \(y, x\) without 'channel' \(size 1\) but the model expects 3 channels",
    ):
        fit_to_axes(image, "cyx", {"channel": 3})


def test_fit_sizes_checked_on_present_axes() -> None:
    image = Tensor(np.zeros((5, 6)), ("y", "x"))
    assert fit_to_axes(image, "yx", {"y": 5, "x": None}).shape == (5, 6)
    with pytest.raises(InputError, match="y=5 but the model expects y=8"):
        fit_to_axes(image, "yx", {"y": 8})


def test_fit_sizes_accept_letters() -> None:
    image = Tensor(np.zeros((5, 6, 3)), ("y", "x", "channel"))
    assert fit_to_axes(image, "bcyx", {"b": 1, "c": 3}).shape == (1, 3, 5, 6)
    with pytest.raises(InputError, match="expects 1 channel"):
        fit_to_axes(image, "bcyx", {"c": 1})
