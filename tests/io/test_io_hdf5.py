"""HDF5 specifics: dataset selection, axes attributes, lazy reading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bioimageio_core.errors import SourceError
from bioimageio_core.io import load_tensor, open_array, save_tensor
from bioimageio_core.tensor import Tensor

h5py = pytest.importorskip("h5py", reason="the 'hdf5' extra is not installed")


def test_hdf5_dataset_selection_and_attrs_axes(tmp_path: Path) -> None:
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("raw/volume", data=np.arange(24, dtype="uint8").reshape(2, 3, 4))
        f["raw/volume"].attrs["axes"] = "zyx"
        f.create_dataset("labels", data=np.zeros((3, 4), "int32")).attrs["axes"] = ["y", "x"]
    with pytest.raises(SourceError, match="holds 2 datasets") as info:
        load_tensor(path)
    assert "/labels" in str(info.value) and "/raw/volume" in str(info.value)
    vol = load_tensor(f"{path}:/raw/volume")
    assert vol.dims == ("z", "y", "x")
    assert vol.data[1, 2, 3] == 23
    assert load_tensor(f"{path}:labels").dims == ("y", "x")
    with pytest.raises(SourceError, match="no dataset 'raw'"):
        load_tensor(f"{path}:raw")


def test_hdf5_save_keeps_other_datasets(tmp_path: Path) -> None:
    path = tmp_path / "f.h5"
    save_tensor(f"{path}:a", Tensor(np.zeros((2, 3)), ("y", "x")))
    save_tensor(f"{path}:b", Tensor(np.ones((2, 3)), ("y", "x")))
    save_tensor(f"{path}:a", Tensor(np.full((4,), 2.0), ("x",)))
    np.testing.assert_array_equal(load_tensor(f"{path}:a").data, np.full((4,), 2.0))
    np.testing.assert_array_equal(load_tensor(f"{path}:b").data, np.ones((2, 3)))


def test_hdf5_open_array_is_lazy_until_read(tmp_path: Path) -> None:
    path = tmp_path / "f.h5"
    data = np.arange(10 * 12, dtype="float32").reshape(10, 12)
    save_tensor(path, Tensor(data, ("y", "x")))
    with open_array(path) as opened:
        assert isinstance(opened.array, h5py.Dataset)
        block = opened.read({"y": slice(2, 5), "x": 3})
        assert block.dims == ("y",)
        np.testing.assert_array_equal(block.data, data[2:5, 3])
    assert not opened.array.id.valid  # file closed
