"""Hook implementations: resolver ``lab-catalog`` and image format ``PGM``.

* ``lab:<name>`` is looked up in a catalog, a JSON object ``{name: {"url": ..., "sha256": ...}}``
  at the path or URL in ``BIOIMAGEIO_LAB_CATALOG`` (a URL is fetched with the core's cached,
  offline-aware ``download``).
* ``.pgm`` files (binary netpbm "P5", 8 or 16 bit greyscale) are read as (y, x) arrays and
  written from tensors whose other axes are singletons.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from bioimageio_core.plugin import (
    FileLocation,
    ImageIORegister,
    ImageIOSpec,
    InputError,
    RawArray,
    ResolvedSource,
    Settings,
    SourceError,
    SourceResolverRegister,
    SourceResolverSpec,
    Tensor,
    UnresolvedSourceError,
    download,
    hookimpl,
    is_http_url,
)

CATALOG_VARIABLE = "BIOIMAGEIO_LAB_CATALOG"
PREFIX = "lab:"

# ---- resolver ----------------------------------------------------------------------------------


def _catalog_location() -> str:
    location = os.environ.get(CATALOG_VARIABLE, "").strip()
    if not location:
        raise UnresolvedSourceError(
            f"lab sources need a catalog: set {CATALOG_VARIABLE}", source=PREFIX
        )
    return location


def _catalog() -> dict[str, Any]:
    location = _catalog_location()
    path = download(location) if is_http_url(location) else Path(location)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SourceError(f"cannot read the lab catalog {location}: {e}") from None
    if not isinstance(data, dict):
        raise SourceError(f"the lab catalog {location} must be a JSON object")
    return data


def resolve_lab(source: str, settings: Settings) -> ResolvedSource:
    name = source[len(PREFIX) :]
    catalog = _catalog()
    entry = catalog.get(name)
    if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
        close = tuple(PREFIX + n for n in difflib.get_close_matches(name, list(catalog), n=3))
        raise UnresolvedSourceError(
            f"{name!r} is not in the lab catalog {_catalog_location()}",
            source=source,
            suggestions=close,
        )
    return ResolvedSource(entry["url"], entry.get("sha256"))


def _scope(settings: Settings) -> str:
    return os.environ.get(CATALOG_VARIABLE, "")


LAB_RESOLVER = SourceResolverSpec(
    name="lab-catalog",
    claims=lambda source: source.startswith(PREFIX),
    resolve=resolve_lab,
    forms=("lab:<name> (a model of the lab catalog)",),
    scope=_scope,
)


@hookimpl
def bioimageio_source_resolvers(register: SourceResolverRegister) -> None:
    register.add(LAB_RESOLVER)


# ---- PGM image format -------------------------------------------------------------------------

_HEADER = re.compile(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s")


def read_pgm(location: FileLocation, mmap: bool) -> RawArray:
    data = location.path.read_bytes()
    match = _HEADER.match(data)
    if match is None:
        raise SourceError(f"{location} is not a binary PGM (P5) file")
    width, height, maxval = (int(g) for g in match.groups())
    dtype = np.dtype("u1") if maxval < 256 else np.dtype(">u2")
    count = width * height
    pixels = np.frombuffer(data, dtype=dtype, count=count, offset=match.end())
    array = pixels.reshape(height, width).astype(dtype.newbyteorder("="))
    return RawArray(array, ("y", "x"))


def write_pgm(location: FileLocation, tensor: Tensor) -> None:
    if tensor.dtype not in (np.dtype("uint8"), np.dtype("uint16")):
        raise InputError(f"cannot save {location}: PGM holds uint8 or uint16, not {tensor.dtype}")
    extra = {d: s for d, s in tensor.sizes.items() if d not in ("y", "x") and s != 1}
    if extra or "y" not in tensor.sizes or "x" not in tensor.sizes:
        raise InputError(f"cannot save {location}: PGM holds one (y, x) image, not {tensor.sizes}")
    image = tensor[{d: 0 for d in tensor.dims if d not in ("y", "x")}].transpose(("y", "x")).data
    maxval = 255 if image.dtype == np.dtype("uint8") else 65535
    header = f"P5\n{image.shape[1]} {image.shape[0]}\n{maxval}\n".encode()
    body = np.ascontiguousarray(image, dtype=">u2" if maxval > 255 else "u1").tobytes()
    location.path.write_bytes(header + body)


PGM = ImageIOSpec(
    name="PGM",
    suffixes=(".pgm",),
    read=read_pgm,
    write=write_pgm,
    no_write_hint="",
)


@hookimpl
def bioimageio_image_io(register: ImageIORegister) -> None:
    register.add(PGM)
