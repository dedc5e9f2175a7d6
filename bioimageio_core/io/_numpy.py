"""``.npy`` (memory-mapped) and ``.npz`` files."""

from __future__ import annotations

import zipfile
from typing import Any, Literal

import numpy as np
from numpy.lib.format import open_memmap, write_array

from bioimageio_core.errors import SourceError
from bioimageio_core.io._blocks import MappedBlocks
from bioimageio_core.io._format import FileFormat, RawArray
from bioimageio_core.io._location import FileLocation
from bioimageio_core.io.staging import preallocate
from bioimageio_core.tensor import Tensor

DEFAULT_NPZ_MEMBER = "arr_0"
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")


def _magic(location: FileLocation, expected: tuple[bytes, ...], what: str) -> None:
    """Refuse a file that does not start like ``what`` (numpy would try to unpickle it)."""
    with location.path.open("rb") as f:
        head = f.read(max(len(m) for m in expected))
    if not head.startswith(expected):
        state = "is empty" if not head else "does not start like one"
        raise SourceError(
            f"{location.path} is not a {what} file (it {state}; truncated or another format)",
            hint="write or download the file again",
        )


def _is_object_array_error(error: ValueError) -> bool:
    text = str(error)
    return "pickle" in text or "Python objects" in text


def _read_npy(location: FileLocation, mmap: bool) -> RawArray:
    _magic(location, (_NPY_MAGIC,), "NumPy .npy")
    try:
        array = np.load(location.path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as e:
        if not _is_object_array_error(e):
            raise  # truncated or damaged: reported as such by io.open_array
        raise SourceError(
            f"cannot read {location} as a numeric array: {e}",
            hint="object (pickled) arrays are not loaded for safety; save a numeric array",
        ) from e
    if not isinstance(array, np.ndarray):
        raise SourceError(f"{location} holds no array (got {type(array).__name__})")
    if isinstance(array, np.memmap):
        return RawArray(array, blocks=_blocks_of(location, array, writable=False))
    return RawArray(array)


def _blocks_of(location: FileLocation, array: np.memmap[Any, Any], writable: bool) -> MappedBlocks:
    """Block access to the data of a ``.npy`` memory map (its header is ``array.offset`` bytes)."""
    order: Literal["C", "F"] = (
        "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"
    )
    return MappedBlocks(
        location.path, array.offset, array.shape, array.dtype, order=order, writable=writable
    )


def _write_npy(location: FileLocation, tensor: Tensor) -> None:
    np.save(location.path, tensor.data, allow_pickle=False)


def _create_npy(
    location: FileLocation, shape: tuple[int, ...], dtype: np.dtype[Any], dims: tuple[str, ...]
) -> RawArray:
    array = open_memmap(location.path, mode="w+", dtype=dtype, shape=shape)
    preallocate(location.path)
    return RawArray(array, dims, blocks=_blocks_of(location, array, writable=True))


def _read_npz(location: FileLocation, mmap: bool) -> RawArray:
    _magic(location, _ZIP_MAGICS, "NumPy .npz (zip)")
    with np.load(location.path, allow_pickle=False) as npz:
        names = list(npz.files)
        if location.member is None:
            if len(names) != 1:
                raise SourceError(
                    f"{location.path} holds {len(names)} arrays ({', '.join(names) or 'none'}); "
                    "choose one",
                    hint=f"write '{location.path}:{names[0] if names else 'NAME'}'",
                )
            name = names[0]
        else:
            name = location.member
            if name not in names:
                raise SourceError(
                    f"{location.path} has no array {name!r}; it holds {', '.join(names) or 'none'}"
                )
        try:
            array = npz[name]
        except ValueError as e:
            if not _is_object_array_error(e):
                raise
            raise SourceError(f"cannot read {location} as a numeric array: {e}") from e
    if not isinstance(array, np.ndarray):  # numpy hands out a member that is no .npy as bytes
        raise SourceError(
            f"{location} is not a NumPy array (member {name!r} is truncated or another format)",
            hint="write or download the file again",
        )
    return RawArray(array)


def _write_npz(location: FileLocation, tensor: Tensor) -> None:
    """Write one array (named by the member, ``arr_0`` by default) into a new ``.npz``."""
    name = location.member or DEFAULT_NPZ_MEMBER
    with zipfile.ZipFile(location.path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
            write_array(f, np.asanyarray(tensor.data), allow_pickle=False)


NPY = FileFormat(
    name="NumPy .npy",
    suffixes=(".npy",),
    read=_read_npy,
    write=_write_npy,
    create=_create_npy,
)
NPZ = FileFormat(
    name="NumPy .npz",
    suffixes=(".npz",),
    read=_read_npz,
    write=_write_npz,
    has_members=True,
    no_write_hint="write to .npy (memory-mapped), .h5 or .zarr to stream blocks",
)
