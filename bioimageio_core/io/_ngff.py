"""OME-Zarr (OME-NGFF) image metadata, read (0.4 and 0.5) and written (0.5).

The metadata is parsed and validated with ``ome-zarr-models`` (pydantic models of the NGFF
specification, maintained with it): a file it accepts is valid OME-Zarr, and what we write is
checked against the specification before it is stored. Older layouts (0.1-0.3) are read by
their dataset paths and axis names only.

Axis names map to our axis ids: an axis of type ``channel`` is ``channel``, of type ``time``
``time``; other names go through the axis letters (``c`` → ``channel``, ``b`` → ``batch``), so
``x``/``y``/``z`` stay. Written outputs name their axes ``t``, ``c``, ``b``/``i`` and the space
axes by id, in the order NGFF requires (time, then channel or the one other axis, then space);
a batch axis of size 1 is left out (it is added back when the output is read for a model).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from bioimageio_core.errors import InputError, SourceError
from bioimageio_core.io._deps import require
from bioimageio_core.io._metadata import ArrayMetadata, AxisMetadata, axis_type
from bioimageio_core.io.axes import AXIS_LETTERS, format_axes

WRITTEN_VERSION = "0.5"
"""The OME-Zarr version of the images bioimageio-run writes."""
_NAMES = {"channel": "c", "time": "t", "batch": "b", "index": "i"}
_SPACE_MIN, _SPACE_MAX = 2, 3


def ngff_name(axis_id: str) -> str:
    """The NGFF axis name written for ``axis_id`` (``channel`` → ``c``, ``x`` → ``x``)."""
    return _NAMES.get(axis_id, axis_id)


def axis_id_of(name: str | None, type_: str | None, position: int) -> str:
    """Our axis id for an NGFF axis ``name`` of ``type_``."""
    if type_ in ("channel", "time"):
        return str(type_)
    text = str(name) if name else f"dim_{position}"
    return AXIS_LETTERS.get(text, text)


@attrs.frozen
class OmeImage:
    """One OME-Zarr image: its resolution levels (array paths, full resolution first), the axes
    of every level, and the physical metadata of each level."""

    version: str
    paths: tuple[str, ...]
    dims: tuple[str, ...]
    levels: tuple[ArrayMetadata | None, ...]
    name: str | None = None


def _ome_zarr_models(purpose: str) -> Any:
    return require("ome_zarr_models", "zarr", purpose)


def _vectors(transforms: Iterable[Any] | None) -> tuple[list[float] | None, list[float] | None]:
    """The scale and translation vectors of an NGFF transform list (None where absent or stored
    in a file, which is not read)."""
    scale: list[float] | None = None
    translation: list[float] | None = None
    for t in transforms or ():
        if getattr(t, "type", None) == "scale" and isinstance(getattr(t, "scale", None), list):
            scale = [float(v) for v in t.scale]
        elif getattr(t, "type", None) == "translation" and isinstance(
            getattr(t, "translation", None), list
        ):
            translation = [float(v) for v in t.translation]
    return scale, translation


def _level_metadata(
    axes: Sequence[Any], dims: Sequence[str], dataset: Any, global_transforms: Any, name: Any
) -> ArrayMetadata:
    n = len(dims)
    s_d, t_d = _vectors(dataset.coordinateTransformations)
    s_g, t_g = _vectors(global_transforms)
    s_d, t_d = s_d or [1.0] * n, t_d or [0.0] * n
    s_g, t_g = s_g or [1.0] * n, t_g or [0.0] * n
    out = []
    for i, (axis, d) in enumerate(zip(axes, dims, strict=True)):
        unit = axis.unit if isinstance(axis.unit, str) else None
        scale = s_d[i] * s_g[i]
        out.append(
            AxisMetadata(
                d,
                axis.type if isinstance(axis.type, str) else axis_type(d),
                unit,
                scale=scale if scale > 0 else 1.0,
                translation=t_d[i] * s_g[i] + t_g[i],
            )
        )
    return ArrayMetadata(tuple(out), name=name if isinstance(name, str) else None)


def _unique_dims(axes: Sequence[Any]) -> tuple[str, ...]:
    dims = tuple(axis_id_of(a.name, a.type, i) for i, a in enumerate(axes))
    if len(set(dims)) != len(dims):  # e.g. axes named 'c' and 'channel': keep the names
        dims = tuple(str(a.name) for a in axes)
    return dims


def _validated(group: Any, version: str, where: str) -> Any:
    models = _ome_zarr_models(f"reading the OME-Zarr image {where}")
    module = {"0.4": "v04", "0.5": "v05"}[version]
    image_class = getattr(models, module).Image
    try:
        return image_class.from_zarr(group)
    except Exception as e:  # pydantic ValidationError and what the model raises for bad arrays
        text = str(e).strip().splitlines()
        detail = "; ".join(line.strip() for line in text[:6] if line.strip())
        raise SourceError(
            f"{where} is not a valid OME-Zarr {version} image: {detail}",
            hint=f"open one array of it directly ('{where}:path/to/array'; its OME metadata is "
            "then not used) and give its axes with --axes / axes=",
        ) from e


def _legacy(attributes: Mapping[str, Any]) -> OmeImage | None:
    """OME-Zarr 0.1-0.3: dataset paths and (0.3) axis names; no transformations."""
    multiscales = attributes.get("multiscales")
    if not isinstance(multiscales, list) or not multiscales or not isinstance(multiscales[0], dict):
        return None
    first = multiscales[0]
    datasets = first.get("datasets")
    if not isinstance(datasets, list) or not datasets:
        return None
    paths = tuple(str(d["path"]) for d in datasets if isinstance(d, dict) and "path" in d)
    axes = first.get("axes")
    names = [a if isinstance(a, str) else None for a in axes] if isinstance(axes, list) else []
    dims = tuple(AXIS_LETTERS.get(n, n) for n in names if n)
    if len(dims) != len(names) or len(set(dims)) != len(dims):
        dims = ()
    version = str(first.get("version", "0.1"))
    return OmeImage(version, paths, dims, tuple(None for _ in paths))


def ome_version(attributes: Mapping[str, Any]) -> str | None:
    """The OME-Zarr version of a group's attributes (None: no OME image metadata)."""
    ome = attributes.get("ome")
    if isinstance(ome, Mapping) and "multiscales" in ome:
        return str(ome.get("version", "0.5"))
    multiscales = attributes.get("multiscales")
    if isinstance(multiscales, list) and multiscales and isinstance(multiscales[0], Mapping):
        return str(multiscales[0].get("version", "0.1"))
    return None


def read_image(group: Any, where: str) -> OmeImage | None:
    """The OME-Zarr image in ``group`` (None when its attributes hold none).

    Raises:
        SourceError: the metadata is not valid OME-Zarr 0.4/0.5.
    """
    attributes = dict(group.attrs)
    version = ome_version(attributes)
    if version is None:
        return None
    if version not in ("0.4", "0.5"):
        return _legacy(attributes)
    image = _validated(group, version, where)
    multiscale = image.ome_attributes.multiscales[0]
    axes = tuple(multiscale.axes)
    dims = _unique_dims(axes)
    levels = tuple(
        _level_metadata(axes, dims, d, multiscale.coordinateTransformations, multiscale.name)
        for d in multiscale.datasets
    )
    return OmeImage(
        version,
        tuple(str(d.path) for d in multiscale.datasets),
        dims,
        levels,
        multiscale.name if isinstance(multiscale.name, str) else None,
    )


def bioformats2raw_series(attributes: Mapping[str, Any]) -> bool:
    """Whether a group is the top of a bioformats2raw layout (its images are ``0``, ``1``, …)."""
    ome = attributes.get("ome")
    inner = ome if isinstance(ome, Mapping) else {}
    return "bioformats2raw.layout" in attributes or "bioformats2raw.layout" in inner


# --------------------------------------------------------------------------------------------
# writing


def stored_axes(dims: Sequence[str], shape: Sequence[int], where: str) -> tuple[str, ...]:
    """The axes an OME-Zarr output stores for an array with ``dims`` and ``shape``: NGFF's
    order (time, channel or one other axis, space axes), a batch axis of size 1 left out.

    Raises:
        InputError: the axes cannot form an OME-Zarr image (say why).
    """
    sizes = dict(zip(dims, shape, strict=True))
    kept = [d for d in dims if not (d == "batch" and sizes[d] == 1)]
    time = [d for d in kept if axis_type(d) == "time"]
    space = [d for d in kept if axis_type(d) == "space"]
    other = [d for d in kept if d not in time and d not in space]
    custom = [d for d in other if d != "channel"]
    problem = None
    if not _SPACE_MIN <= len(space) <= _SPACE_MAX:
        problem = f"needs 2 or 3 space axes (it has {len(space)})"
    elif len(custom) > 1:
        problem = f"allows one axis besides time, channel and space (here {', '.join(custom)})"
    elif len(kept) > 5:
        problem = "allows at most 5 axes"
    if problem is not None:
        raise InputError(
            f"cannot write {where} as OME-Zarr: an OME-Zarr image {problem}; the array has "
            f"axes {format_axes(dims)} with sizes {tuple(int(s) for s in shape)}",
            hint="write a plain zarr store (.zarr instead of .ome.zarr), .h5 or .tif",
        )
    return (*time, *other, *space)


def image_attributes(
    array: Any, stored: Sequence[str], metadata: ArrayMetadata | None, path: str
) -> dict[str, Any]:
    """The group attributes of an OME-Zarr 0.5 image with one level, the array ``array`` at
    ``path`` with axes ``stored``, carrying ``metadata`` (units, scales, translations).

    Raises:
        InputError: the result would not be valid OME-Zarr (e.g. a unit NGFF does not know).
    """
    models = _ome_zarr_models("writing an OME-Zarr image")
    array_spec = require("pydantic_zarr.v3", "zarr", "writing an OME-Zarr image").ArraySpec

    meta = (metadata or ArrayMetadata(())).for_dims(stored)
    axes = [
        models.v05.axes.Axis(name=ngff_name(d), type=axis_type(d), unit=meta[d].unit)
        for d in stored
    ]
    scales = [meta[d].scale for d in stored]
    translations = [meta[d].translation for d in stored]
    try:
        image = models.v05.Image.new(
            array_specs=[array_spec.from_zarr(array)],
            paths=[path],
            axes=axes,
            scales=[scales],
            translations=[translations if any(translations) else None],
            name=meta.name,
        )
    except Exception as e:
        raise InputError(
            f"cannot write OME-Zarr metadata for axes {format_axes(stored)}: {e}",
            hint="check the units and pixel sizes of the input, or write a plain .zarr store",
        ) from e
    dumped: dict[str, Any] = image.attributes.model_dump(exclude_none=True, mode="json")
    return dumped

