"""PNG and JPEG images (imageio): 2D greyscale or channel-last colour (RGB, RGBA)."""

from __future__ import annotations

from typing import Any

import numpy as np

from bioimageio_core.errors import InputError, SourceError
from bioimageio_core.io._deps import require
from bioimageio_core.io._format import FileFormat, RawArray
from bioimageio_core.io._location import FileLocation
from bioimageio_core.io.axes import format_axes
from bioimageio_core.tensor import Tensor

_IMAGE_AXES = ("y", "x", "channel")


def _imageio(purpose: str) -> Any:
    return require("imageio.v3", "image", purpose)


def _read(location: FileLocation, mmap: bool) -> RawArray:
    iio = _imageio(f"reading {location}")
    try:
        array = np.asarray(iio.imread(location.path))
    except (OSError, ValueError) as e:
        raise SourceError(f"cannot read {location} as an image: {e}") from e
    if array.ndim not in (2, 3):
        raise SourceError(
            f"{location} decoded to an array of shape {array.shape}; expected a single 2D image",
            hint="multi-frame images are not supported here; convert to .tif",
        )
    return RawArray(array, _IMAGE_AXES[: array.ndim])


def image_array(tensor: Tensor, location: FileLocation) -> np.ndarray[Any, Any]:
    """The (y, x) or (y, x, channel) array to write, or an error saying why it cannot be a PNG."""
    if tensor.dtype not in (np.dtype("uint8"), np.dtype("uint16")):
        raise InputError(
            f"cannot save {location}: PNG holds uint8 or uint16 data, but the tensor is "
            f"{tensor.dtype}; converting would lose values",
            hint="save as .tif or .npy, or convert the data to uint8/uint16 first",
        )
    sizes = tensor.sizes
    extra = {d: s for d, s in sizes.items() if d not in _IMAGE_AXES and s != 1}
    if extra or "y" not in sizes or "x" not in sizes:
        raise InputError(
            f"cannot save {location}: a PNG is one 2D image with axes y, x and optionally "
            f"channel, but the tensor has axes {format_axes(tensor.dims)} with sizes {sizes}",
            hint="save as .tif, .npy, .h5 or .zarr",
        )
    squeezed = tensor[{d: 0 for d in sizes if d not in _IMAGE_AXES}]
    channels = sizes.get("channel", 1)
    if channels == 1:
        if "channel" in squeezed.dims:
            squeezed = squeezed[{"channel": 0}]
        return squeezed.transpose(("y", "x")).data
    if channels not in (2, 3, 4) or tensor.dtype != np.dtype("uint8"):
        raise InputError(
            f"cannot save {location}: PNG stores 1 channel (uint8/uint16) or 2-4 channels "
            f"(uint8), not {channels} channels of {tensor.dtype}",
            hint="save as .tif, .npy, .h5 or .zarr",
        )
    return squeezed.transpose(_IMAGE_AXES).data


def _write_png(location: FileLocation, tensor: Tensor) -> None:
    iio = _imageio(f"writing {location}")
    iio.imwrite(
        location.path, np.ascontiguousarray(image_array(tensor, location)), extension=".png"
    )


def _refuse_jpeg(location: FileLocation, tensor: Tensor) -> None:
    raise InputError(
        f"cannot save {location}: JPEG compression is lossy and would change the values",
        hint="save as .png (uint8/uint16), .tif or .npy",
    )


PNG = FileFormat(name="PNG", suffixes=(".png",), read=_read, write=_write_png)
JPEG = FileFormat(name="JPEG", suffixes=(".jpg", ".jpeg"), read=_read, write=_refuse_jpeg)
