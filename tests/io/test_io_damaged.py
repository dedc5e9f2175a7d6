"""Truncated or damaged tensor files are a SourceError naming the file, never a bare EOFError,
BadZipFile or AttributeError from deep inside numpy or zipfile."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bioimageio_core.errors import SourceError
from bioimageio_core.io import load_tensor, save_tensor
from bioimageio_core.tensor import Tensor

DATA = np.arange(600, dtype="float32").reshape(20, 30)


def _written(folder: Path, suffix: str) -> bytes:
    path = folder / f"full{suffix}"
    save_tensor(path, Tensor(DATA, ("y", "x")))
    return path.read_bytes()


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".tif"])
def test_empty_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    with pytest.raises(SourceError) as info:
        load_tensor(path)
    assert str(path) in str(info.value)


@settings(max_examples=40, deadline=None)
@given(fraction=st.floats(0.0, 0.999), suffix=st.sampled_from([".npy", ".npz", ".tif"]))
def test_truncated_file(
    tmp_path_factory: pytest.TempPathFactory, fraction: float, suffix: str
) -> None:
    folder = tmp_path_factory.mktemp("cut")
    data = _written(folder, suffix)
    path = folder / f"cut{suffix}"
    path.write_bytes(data[: int(len(data) * fraction)])
    try:
        tensor = load_tensor(path, mmap=False)
    except SourceError as e:
        assert str(path) in str(e)
    else:  # a cut that only removed trailing metadata may still give the right array
        np.testing.assert_array_equal(tensor.data, DATA)


@pytest.mark.parametrize("cut", [0, 5, 60, 128, 2000])
def test_npz_with_truncated_array_member(tmp_path: Path, cut: int) -> None:
    buffer = io.BytesIO()
    np.save(buffer, DATA)
    path = tmp_path / "inner.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("arr_0.npy", buffer.getvalue()[:cut])
    with pytest.raises(SourceError, match="inner.npz") as info:
        load_tensor(path)
    assert "truncated or damaged" in str(info.value) or "not a NumPy" in str(info.value)


def test_npy_that_is_no_npy_is_not_called_pickled(tmp_path: Path) -> None:
    path = tmp_path / "text.npy"
    path.write_text("hello")
    with pytest.raises(SourceError, match="not a NumPy .npy file") as info:
        load_tensor(path)
    assert "pickle" not in str(info.value)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7])
def test_tiff_cut_inside_its_header(tmp_path: Path, size: int) -> None:
    path = tmp_path / "cut.tif"
    path.write_bytes(_written(tmp_path, ".tif")[:size])
    with pytest.raises(SourceError) as info:  # tifffile's struct.error for a header cut short
        load_tensor(path)
    assert str(path) in str(info.value)
