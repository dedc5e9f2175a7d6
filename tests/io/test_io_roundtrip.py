"""save_tensor → load_tensor keeps values, dtype, shape and (where the format records them) axes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bioimageio_core.io import load_tensor, save_tensor
from bioimageio_core.tensor import Tensor

DTYPES = [
    "uint8",
    "uint16",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint32",
    "float32",
    "float64",
    "bool",
]

# formats that store any dtype and any axis ids; "records_axes": the file keeps the axis ids
GENERIC = {
    "a.npy": False,
    "a.npz": False,
    "a.npz:member": False,
    "a.tif": True,
    "a.h5": True,
    "a.h5:/group/sub/ds": True,
    "a.zarr": True,
    "a.zarr:group/arr": True,
}


def _sample(dtype: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) > 0.5
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("name", list(GENERIC))
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_values_and_dtype(tmp_path: Path, name: str, dtype: str) -> None:
    data = _sample(dtype, (2, 3, 5, 4))
    dims = ("batch", "channel", "y", "x")
    save_tensor(tmp_path / name, Tensor(data, dims))
    loaded = load_tensor(tmp_path / name, dims)
    assert loaded.dims == dims
    assert loaded.dtype == data.dtype
    np.testing.assert_array_equal(loaded.data, data)


# sizes and ids chosen so that guessing would give different axes
ANY_AXES = ("float32", (3, 7, 6, 2), ("x", "time", "cells", "channel"))
# OME-TIFF records the standard axes
OME_AXES = ("uint16", (2, 3, 4, 5, 6), ("time", "channel", "z", "y", "x"))


@pytest.mark.parametrize(
    ("name", "dtype", "shape", "dims"),
    [pytest.param(n, *ANY_AXES, id=n) for n, records in GENERIC.items() if records]
    + [pytest.param(n, *OME_AXES, id=n) for n in ("a.ome.tif", "a.ome.tiff")],
)
def test_axes_recorded(
    tmp_path: Path, name: str, dtype: str, shape: tuple[int, ...], dims: tuple[str, ...]
) -> None:
    data = _sample(dtype, shape)
    save_tensor(tmp_path / name, Tensor(data, dims))
    loaded = load_tensor(tmp_path / name)
    assert loaded.dims == dims
    np.testing.assert_array_equal(loaded.data, data)


@pytest.mark.parametrize("name", ["a.npy", "a.npz"])
def test_unrecorded_axes_are_guessed_or_given(tmp_path: Path, name: str) -> None:
    data = _sample("uint8", (6, 7, 3))
    save_tensor(tmp_path / name, Tensor(data, ("y", "x", "channel")))
    assert load_tensor(tmp_path / name).dims == ("y", "x", "channel")
    assert load_tensor(tmp_path / name, "zyx").dims == ("z", "y", "x")
    assert load_tensor(tmp_path / name, expected_axes="zyx").dims == ("z", "y", "x")


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_png_grey_round_trip(tmp_path: Path, dtype: str) -> None:
    data = _sample(dtype, (1, 1, 9, 11))
    save_tensor(tmp_path / "a.png", Tensor(data, ("batch", "channel", "y", "x")))
    loaded = load_tensor(tmp_path / "a.png")
    assert loaded.dims == ("y", "x")
    assert loaded.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(loaded.data, data[0, 0])


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_png_colour_round_trip_from_channel_first(tmp_path: Path, channels: int) -> None:
    data = _sample("uint8", (channels, 9, 11))
    save_tensor(tmp_path / "a.png", Tensor(data, ("channel", "y", "x")))
    loaded = load_tensor(tmp_path / "a.png")
    assert loaded.dims == ("y", "x", "channel")
    np.testing.assert_array_equal(loaded.data, np.moveaxis(data, 0, -1))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    dtype=st.sampled_from(DTYPES),
    name=st.sampled_from(["a.npy", "a.tif", "a.h5", "a.zarr"]),
)
def test_round_trip_any_shape(tmp_path: Path, shape: list[int], dtype: str, name: str) -> None:
    data = _sample(dtype, tuple(shape))
    dims = tuple(f"axis{i}" for i in range(len(shape)))
    target = tmp_path / name
    save_tensor(target, Tensor(data, dims))
    loaded = load_tensor(target, dims)
    np.testing.assert_array_equal(loaded.data, data)
    assert loaded.dtype == data.dtype
