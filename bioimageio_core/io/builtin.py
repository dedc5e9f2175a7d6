"""The built-in tensor file formats, registered through the ``bioimageio_image_io`` hook.

This module is a default plugin (see ``plugins.BUILTIN_PLUGINS``): third-party formats join the
same registry, and a suffix can belong to one format only.
"""

from __future__ import annotations

from bioimageio_core.hookspecs import ImageIORegister, hookimpl
from bioimageio_core.io._format import FileFormat
from bioimageio_core.io._hdf5 import HDF5
from bioimageio_core.io._image import JPEG, PNG
from bioimageio_core.io._numpy import NPY, NPZ
from bioimageio_core.io._tiff import TIFF
from bioimageio_core.io._zarr_output import ZARR

BUILTIN_FORMATS: tuple[FileFormat, ...] = (NPY, NPZ, TIFF, PNG, JPEG, HDF5, ZARR)
"""The formats the core provides (their optional packages are imported only when used)."""


@hookimpl
def bioimageio_image_io(register: ImageIORegister) -> None:
    for fmt in BUILTIN_FORMATS:
        register.add(fmt)
