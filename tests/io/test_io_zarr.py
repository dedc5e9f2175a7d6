"""zarr specifics: v2 attributes, OME-Zarr, groups, lazy reading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bioimageio_core.errors import SourceError
from bioimageio_core.io import load_tensor, open_array, save_tensor
from bioimageio_core.tensor import Tensor

zarr = pytest.importorskip("zarr", reason="the 'zarr' extra is not installed")
V2 = {"zarr_format": 2} if int(zarr.__version__.split(".")[0]) >= 3 else {}
"""Keyword that makes zarr 3 write format v2 (zarr 2 writes v2 anyway)."""


def test_zarr_array_dimensions_attribute(tmp_path: Path) -> None:
    store = tmp_path / "x.zarr"
    arr = zarr.open_array(store=str(store), mode="w", shape=(3, 4), dtype="int16", **V2)
    arr[...] = np.arange(12).reshape(3, 4)
    arr.attrs["_ARRAY_DIMENSIONS"] = ["c", "x"]
    loaded = load_tensor(store)
    assert loaded.dims == ("channel", "x")
    np.testing.assert_array_equal(loaded.data, np.arange(12).reshape(3, 4))


def test_zarr_folder_without_suffix_and_ome_zarr(tmp_path: Path) -> None:
    store = tmp_path / "image"
    group = zarr.open_group(str(store), mode="w")
    data = np.arange(2 * 5 * 6, dtype="uint16").reshape(2, 5, 6)
    level0 = zarr.open_array(
        store=str(store), path="0", mode="w", shape=data.shape, dtype=data.dtype
    )
    level0[...] = data
    zarr.open_array(store=str(store), path="1", mode="w", shape=(2, 2, 3), dtype=data.dtype)
    group.attrs["multiscales"] = [
        {
            "axes": [{"name": "c", "type": "channel"}, {"name": "y"}, {"name": "x"}],
            "datasets": [{"path": "0"}, {"path": "1"}],
        }
    ]
    loaded = load_tensor(store)
    assert loaded.dims == ("channel", "y", "x")
    np.testing.assert_array_equal(loaded.data, data)
    assert load_tensor(f"{store}:1").shape == (2, 2, 3)


def test_zarr_group_with_several_arrays_needs_a_member(tmp_path: Path) -> None:
    store = tmp_path / "g.zarr"
    save_tensor(f"{store}:a", Tensor(np.zeros((2, 2)), ("y", "x")))
    save_tensor(f"{store}:b", Tensor(np.ones((2, 2)), ("y", "x")))
    with pytest.raises(SourceError, match=r"holds 2 arrays .*a, b"):
        load_tensor(store)
    np.testing.assert_array_equal(load_tensor(f"{store}:b").data, np.ones((2, 2)))


def test_zarr_open_is_lazy(tmp_path: Path) -> None:
    store = tmp_path / "l.zarr"
    data = np.arange(8 * 9, dtype="float32").reshape(8, 9)
    save_tensor(store, Tensor(data, ("y", "x")))
    with open_array(store) as opened:
        assert isinstance(opened.array, zarr.Array)
        np.testing.assert_array_equal(opened.read({"x": slice(1, 3)}).data, data[:, 1:3])
