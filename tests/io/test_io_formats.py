"""Format specifics: files written by other tools, members, memory maps, errors."""

from __future__ import annotations

import mmap
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from bioimageio_core.errors import InputError, SourceError
from bioimageio_core.io import (
    MissingOptionalDependencyError,
    load_tensor,
    parse_location,
    save_tensor,
    supported_suffixes,
)
from bioimageio_core.tensor import Tensor


def _is_memory_mapped(array: np.ndarray) -> bool:
    base: object = array
    while isinstance(base, np.ndarray):
        if isinstance(base, np.memmap):
            return True
        base = base.base
    return isinstance(base, mmap.mmap)


# --- .npy / .npz ---------------------------------------------------------------------------


def test_npy_is_memory_mapped_read_only(tmp_path: Path) -> None:
    data = np.arange(4 * 5 * 6, dtype="float32").reshape(4, 5, 6)
    np.save(tmp_path / "a.npy", data)
    loaded = load_tensor(tmp_path / "a.npy")
    assert _is_memory_mapped(loaded.data)
    assert not loaded.data.flags.writeable
    np.testing.assert_array_equal(loaded.data, data)
    in_memory = load_tensor(tmp_path / "a.npy", mmap=False)
    assert not _is_memory_mapped(in_memory.data)
    np.testing.assert_array_equal(in_memory.data, data)


def test_npy_fortran_order(tmp_path: Path) -> None:
    data = np.asfortranarray(np.arange(12, dtype="int16").reshape(3, 4))
    np.save(tmp_path / "f.npy", data)
    np.testing.assert_array_equal(load_tensor(tmp_path / "f.npy").data, data)


def test_npy_object_array_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(SourceError, match="numeric array"):
        load_tensor(tmp_path / "o.npy")


def test_npz_member_selection(tmp_path: Path) -> None:
    a, b = np.zeros((3, 4), "uint8"), np.ones((5, 6), "float32")
    np.savez(tmp_path / "two.npz", first=a, second=b)
    np.savez(tmp_path / "one.npz", b)
    np.testing.assert_array_equal(load_tensor(tmp_path / "one.npz").data, b)
    np.testing.assert_array_equal(load_tensor(f"{tmp_path / 'two.npz'}:second").data, b)
    with pytest.raises(SourceError, match=r"holds 2 arrays \(first, second\)") as info:
        load_tensor(tmp_path / "two.npz")
    assert "two.npz:first" in str(info.value)
    with pytest.raises(SourceError, match="no array 'third'"):
        load_tensor(f"{tmp_path / 'two.npz'}:third")


def test_npz_written_is_readable_by_numpy(tmp_path: Path) -> None:
    data = np.arange(6, dtype="int64").reshape(2, 3)
    save_tensor(f"{tmp_path / 'w.npz'}:file", Tensor(data, ("y", "x")))
    with np.load(tmp_path / "w.npz") as npz:
        assert npz.files == ["file"]
        np.testing.assert_array_equal(npz["file"], data)


# --- TIFF ------------------------------------------------------------------------------------


def test_tiff_imagej_axes(tmp_path: Path) -> None:
    data = np.arange(2 * 3 * 4 * 5, dtype="float32").reshape(2, 3, 4, 5)
    tifffile.imwrite(tmp_path / "ij.tif", data, imagej=True, metadata={"axes": "TCYX"})
    loaded = load_tensor(tmp_path / "ij.tif")
    assert loaded.dims == ("time", "channel", "y", "x")
    np.testing.assert_array_equal(loaded.data, data)


def test_tiff_ome_axes_written_by_tifffile(tmp_path: Path) -> None:
    data = np.arange(3 * 4 * 5 * 6, dtype="uint16").reshape(3, 4, 5, 6)
    tifffile.imwrite(tmp_path / "o.ome.tif", data, metadata={"axes": "ZCYX"})
    loaded = load_tensor(tmp_path / "o.ome.tif")
    assert loaded.dims == ("z", "channel", "y", "x")
    np.testing.assert_array_equal(loaded.data, data)


def test_tiff_without_axes_metadata_is_guessed(tmp_path: Path) -> None:
    rgb = np.arange(7 * 8 * 3, dtype="uint8").reshape(7, 8, 3)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    loaded = load_tensor(tmp_path / "rgb.tif")
    assert loaded.dims == ("y", "x", "channel")
    np.testing.assert_array_equal(loaded.data, rgb)
    assert load_tensor(tmp_path / "rgb.tif", "zyx").dims == ("z", "y", "x")


def test_tiff_uncompressed_is_memory_mapped_compressed_is_read(tmp_path: Path) -> None:
    data = np.arange(5 * 6 * 7, dtype="uint16").reshape(5, 6, 7)
    save_tensor(tmp_path / "a.tif", Tensor(data, ("z", "y", "x")))
    assert _is_memory_mapped(load_tensor(tmp_path / "a.tif").data)
    tifffile.imwrite(tmp_path / "c.tif", data, compression="zlib", metadata={"axes": "ZYX"})
    compressed = load_tensor(tmp_path / "c.tif")
    assert compressed.dims == ("z", "y", "x")
    np.testing.assert_array_equal(compressed.data, data)


# --- PNG / JPEG --------------------------------------------------------------------------------


def test_png_written_by_imageio(tmp_path: Path) -> None:
    rgba = np.arange(6 * 7 * 4, dtype="uint8").reshape(6, 7, 4)
    iio.imwrite(tmp_path / "a.png", rgba)
    loaded = load_tensor(tmp_path / "a.png")
    assert loaded.dims == ("y", "x", "channel")
    np.testing.assert_array_equal(loaded.data, rgba)


def test_jpeg_read_is_channel_last(tmp_path: Path) -> None:
    rgb = np.full((16, 16, 3), 128, dtype="uint8")
    iio.imwrite(tmp_path / "a.jpg", rgb)
    loaded = load_tensor(tmp_path / "a.jpg")
    assert loaded.dims == ("y", "x", "channel")
    assert loaded.shape == (16, 16, 3)
    assert np.abs(loaded.data.astype(int) - 128).max() <= 2  # lossy, but close


@pytest.mark.parametrize(
    ("data", "dims", "match"),
    [
        (np.zeros((4, 4), "float32"), ("y", "x"), "float32"),
        (np.zeros((4, 4), "bool"), ("y", "x"), "bool"),
        (np.zeros((4, 4), "int16"), ("y", "x"), "int16"),
        (np.zeros((2, 4, 4), "uint8"), ("z", "y", "x"), "z"),
        (np.zeros((4, 4, 5), "uint8"), ("y", "x", "channel"), "5 channels"),
        (np.zeros((4, 4, 3), "uint16"), ("y", "x", "channel"), "3 channels of uint16"),
        (np.zeros((4,), "uint8"), ("x",), "axes y, x"),
    ],
)
def test_png_refuses_what_it_cannot_hold(
    tmp_path: Path, data: np.ndarray, dims: tuple[str, ...], match: str
) -> None:
    with pytest.raises(InputError, match=match):
        save_tensor(tmp_path / "a.png", Tensor(data, dims))
    assert not (tmp_path / "a.png").exists()


def test_jpeg_writing_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="lossy"):
        save_tensor(tmp_path / "a.jpeg", Tensor(np.zeros((4, 4), "uint8"), ("y", "x")))


# --- locations and errors -------------------------------------------------------------------


def test_parse_location(tmp_path: Path) -> None:
    assert parse_location("a.npz:x").member == "x"
    assert parse_location("a.h5:/g/d").member == "/g/d"
    assert parse_location("a.zarr:sub/arr").member == "sub/arr"
    assert parse_location("a.npy").member is None
    assert parse_location("C:\\data\\a.npy").member is None
    assert parse_location("weird:name.npy").member is None
    existing = tmp_path / "odd:name.npz"
    existing.touch()
    assert parse_location(existing).member is None


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"unknown file suffix '\.xyz'") as info:
        load_tensor(tmp_path / "a.xyz")
    assert ".npy" in str(info.value) and ".zarr" in str(info.value)
    with pytest.raises(SourceError, match="does not exist"):
        load_tensor(tmp_path / "missing.npy")
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(SourceError, match="hold one array"):
        load_tensor(f"{tmp_path / 'a.npy'}:member")
    assert ".tif" in supported_suffixes()


def test_explicit_axes_length_checked(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((2, 3, 4)))
    with pytest.raises(InputError, match="3 dimensions"):
        load_tensor(tmp_path / "a.npy", "yx")


@pytest.mark.parametrize(
    ("module", "name", "extra"),
    [("h5py", "a.h5", "hdf5"), ("zarr", "a.zarr", "zarr"), ("tifffile", "a.tif", "image")],
)
def test_missing_optional_dependency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, name: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(MissingOptionalDependencyError) as info:
        save_tensor(tmp_path / name, Tensor(np.zeros((2, 2)), ("y", "x")))
    assert f'pip install "bioimageio-run[{extra}]"' in str(info.value)
    assert isinstance(info.value, ImportError)


def test_missing_imageio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    iio.imwrite(tmp_path / "a.png", np.zeros((3, 3), "uint8"))
    monkeypatch.setitem(sys.modules, "imageio.v3", None)
    with pytest.raises(MissingOptionalDependencyError, match="imageio") as info:
        load_tensor(tmp_path / "a.png")
    assert "bioimageio-run[image]" in str(info.value)


def test_import_loads_no_optional_package() -> None:
    code = (
        "import sys, bioimageio_core.io; "
        "print([m for m in ('h5py', 'zarr', 'tifffile', 'imageio') if m in sys.modules])"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip() == "[]"
