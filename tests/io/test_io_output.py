"""open_output_array: preallocated outputs written block by block."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bioimageio_core.errors import SourceError
from bioimageio_core.io import fit_to_axes, load_tensor, open_output_array

OUTPUTS = [
    "out.npy",
    "out.tif",
    "out.ome.tif",
    "out.h5",
    "out.h5:/pred/prob",
    "out.zarr",
    "out.zarr:pred",
]


@pytest.mark.parametrize("name", OUTPUTS)
def test_blocks_written_equal_whole(tmp_path: Path, name: str) -> None:
    rng = np.random.default_rng(1)
    whole = rng.standard_normal((1, 2, 10, 12)).astype("float32")
    target = f"{tmp_path}/{name}"
    with open_output_array(target, whole.shape, "float32", "bcyx") as out:
        assert out.shape == whole.shape
        assert out.dtype == np.dtype("float32")
        assert out.dims == ("batch", "channel", "y", "x")
        for y0 in range(0, 10, 4):
            for x0 in range(0, 12, 5):
                block = np.s_[:, :, y0 : y0 + 4, x0 : x0 + 5]
                out[block] = whole[block]
    loaded = load_tensor(target)
    if ".ome." in name:
        # OME has no batch axis: the singleton is dropped on reading and added back by fitting
        assert loaded.dims == ("channel", "y", "x")
        loaded = fit_to_axes(loaded, "bcyx")
    assert loaded.dims == ("batch", "channel", "y", "x")
    np.testing.assert_array_equal(loaded.data, whole)


def test_npy_output_is_memmap(tmp_path: Path) -> None:
    with open_output_array(tmp_path / "o.npy", (3, 4), "uint16", ["y", "x"]) as out:
        assert isinstance(out.array, np.memmap)
        out[1] = 7
    assert load_tensor(tmp_path / "o.npy").data[1].tolist() == [7, 7, 7, 7]


def test_streaming_into_npz_or_png_is_refused(tmp_path: Path) -> None:
    for name in ("o.npz", "o.png"):
        with pytest.raises(SourceError, match="block by block"):
            open_output_array(tmp_path / name, (3, 4), "uint8", "yx")


def test_axes_and_shape_must_agree(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="differ in length"):
        open_output_array(tmp_path / "o.npy", (3, 4), "uint8", "cyx")
