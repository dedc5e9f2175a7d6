"""OME-Zarr: NGFF 0.4 and 0.5 read (levels, axes, units, transformations), 0.5 written."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bioimageio_core.errors import InputError, SourceError
from bioimageio_core.io import (
    ArrayMetadata,
    AxisMetadata,
    fit_to_axes,
    load_tensor,
    open_array,
    open_output_array,
    save_tensor,
)
from bioimageio_core.tensor import Tensor

zarr = pytest.importorskip("zarr", reason="the 'zarr' extra is not installed")
pytest.importorskip("ome_zarr_models", reason="the 'zarr' extra is not installed")

AXES = [
    {"name": "c", "type": "channel"},
    {"name": "z", "type": "space", "unit": "micrometer"},
    {"name": "y", "type": "space", "unit": "micrometer"},
    {"name": "x", "type": "space", "unit": "micrometer"},
]
LEVEL0 = np.arange(2 * 4 * 8 * 6, dtype="uint16").reshape(2, 4, 8, 6)


def _multiscales(version: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "axes": AXES,
        "datasets": [
            {
                "path": "s0",
                "coordinateTransformations": [
                    {"type": "scale", "scale": [1.0, 2.0, 0.5, 0.5]},
                    {"type": "translation", "translation": [0.0, 0.0, 10.0, 0.0]},
                ],
            },
            {
                "path": "s1",
                "coordinateTransformations": [
                    {"type": "scale", "scale": [1.0, 2.0, 1.0, 1.0]},
                    {"type": "translation", "translation": [0.0, 0.0, 10.25, 0.25]},
                ],
            },
        ],
        "coordinateTransformations": [{"type": "scale", "scale": [1.0, 1.0, 2.0, 2.0]}],
        "name": "cells",
    }
    if version is not None:
        entry["version"] = version
    return entry


def write_ngff(store: Path, version: str) -> None:
    """An OME-Zarr image as published files hold it: levels ``s0`` (full) and ``s1``."""
    fmt = 3 if version == "0.5" else 2
    group = zarr.open_group(str(store), mode="w", zarr_format=fmt)
    names = {"dimension_names": ["c", "z", "y", "x"]} if fmt == 3 else {}
    s0 = group.create_array("s0", shape=LEVEL0.shape, chunks=(1, 2, 4, 3), dtype="uint16", **names)
    s0[...] = LEVEL0
    s1 = group.create_array("s1", shape=(2, 4, 4, 3), chunks=(1, 2, 4, 3), dtype="uint16", **names)
    s1[...] = LEVEL0[:, :, ::2, ::2]
    if version == "0.5":
        group.attrs["ome"] = {"version": "0.5", "multiscales": [_multiscales(None)]}
    else:
        group.attrs["multiscales"] = [_multiscales("0.4")]


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ngff_full_resolution_by_default_other_levels_by_index(
    tmp_path: Path, version: str
) -> None:
    store = tmp_path / "img.ome.zarr"
    write_ngff(store, version)
    with open_array(store) as image:
        assert image.dims == ("channel", "z", "y", "x")
        assert image.shape == LEVEL0.shape
        assert image.chunks == (1, 2, 4, 3)
        np.testing.assert_array_equal(image.read_block((1, slice(0, 2))), LEVEL0[1:2, 0:2])
        meta = image.metadata
    assert meta is not None and meta.name == "cells"
    # dataset scale x global scale; dataset translation x global scale
    assert meta["y"] == AxisMetadata("y", "space", "micrometer", scale=1.0, translation=20.0)
    assert meta["z"] == AxisMetadata("z", "space", "micrometer", scale=2.0, translation=0.0)
    assert meta["channel"] == AxisMetadata("channel", "channel", None)

    level1 = open_array(f"{store}:1")
    assert level1.shape == (2, 4, 4, 3) and level1.dims == image.dims
    assert level1.metadata is not None
    assert level1.metadata["x"] == AxisMetadata("x", "space", "micrometer", 2.0, 0.5)
    np.testing.assert_array_equal(level1.read_block(...), LEVEL0[:, :, ::2, ::2])
    # the array by its path carries the same metadata
    assert open_array(f"{store}:s1").metadata == level1.metadata
    with pytest.raises(SourceError, match="level 2, but the OME-Zarr image has 2 level"):
        open_array(f"{store}:2")


def test_an_image_inside_a_store_and_bioformats2raw(tmp_path: Path) -> None:
    write_ngff(tmp_path / "plate.zarr" / "A" / "1", "0.4")
    zarr.open_group(str(tmp_path / "plate.zarr" / "A"), mode="a", zarr_format=2)
    zarr.open_group(str(tmp_path / "plate.zarr"), mode="a", zarr_format=2)
    assert open_array(f"{tmp_path}/plate.zarr:A/1").shape == LEVEL0.shape

    root = zarr.open_group(str(tmp_path / "b2r.zarr"), mode="w", zarr_format=2)
    root.attrs["bioformats2raw.layout"] = 3
    write_ngff(tmp_path / "b2r.zarr" / "0", "0.4")
    np.testing.assert_array_equal(load_tensor(tmp_path / "b2r.zarr").data, LEVEL0)


def test_older_ngff_uses_axis_names_and_paths(tmp_path: Path) -> None:
    store = tmp_path / "old.zarr"
    group = zarr.open_group(str(store), mode="w", zarr_format=2)
    group.create_array("0", shape=(3, 5), dtype="float32")[...] = 1.5
    group.attrs["multiscales"] = [{"version": "0.3", "axes": ["y", "x"], "datasets": [{"path": "0"}]}]
    with open_array(store) as image:
        assert image.dims == ("y", "x") and image.metadata is None
        assert float(image.read_block(...).sum()) == 15 * 1.5


def test_invalid_metadata_is_reported_and_the_array_still_opens_by_path(tmp_path: Path) -> None:
    store = tmp_path / "bad.zarr"
    write_ngff(store, "0.4")
    bad = _multiscales("0.4")
    bad["axes"] = [{"name": "c", "type": "channel"}, {"name": "x", "type": "space"}] * 2
    zarr.open_group(str(store), mode="a").attrs["multiscales"] = [bad]
    with pytest.raises(SourceError, match="not a valid OME-Zarr 0.4 image") as info:
        open_array(store)
    assert info.value.hint is not None and "path/to/array" in info.value.hint
    with open_array(f"{store}:s0", axes="czyx") as array:
        assert array.metadata is None and array.shape == LEVEL0.shape


# --- writing -------------------------------------------------------------------------------------


def test_batch_and_channel_last_outputs_are_stored_in_ngff_order(tmp_path: Path) -> None:
    data = np.random.default_rng(0).standard_normal((1, 6, 5, 3)).astype("float32")
    target = tmp_path / "o.ome.zarr"
    with open_output_array(target, data.shape, data.dtype, "byxc", chunks=(1, 4, 4, 3)) as out:
        assert out.dims == ("batch", "y", "x", "channel") and out.shape == data.shape
        for y0 in (0, 4):
            out.write_block((slice(None), slice(y0, y0 + 4)), data[:, y0 : y0 + 4])
        np.testing.assert_array_equal(out.read_block(...), data)
    loaded = load_tensor(target)
    assert loaded.dims == ("channel", "y", "x")  # NGFF order, the singleton batch left out
    np.testing.assert_array_equal(fit_to_axes(loaded, "byxc").data, data)
    from ome_zarr_models.v05 import Image

    Image.from_zarr(zarr.open_group(str(target), mode="r"))  # valid OME-Zarr 0.5


@pytest.mark.parametrize(
    "axes, shape, message",
    [("bcx", (1, 2, 8), "2 or 3 space axes"), ("biyx", (2, 2, 4, 4), "one axis besides")],
)
def test_axes_that_are_no_ome_zarr_image_are_refused(
    tmp_path: Path, axes: str, shape: tuple[int, ...], message: str
) -> None:
    with pytest.raises(InputError, match=message) as info:
        open_output_array(tmp_path / "o.ome.zarr", shape, "uint8", axes)
    assert info.value.hint is not None and ".zarr" in info.value.hint
    assert f"{tmp_path / 'o.ome.zarr'} as OME-Zarr" in str(info.value)  # the output, not its stage
    assert not list(tmp_path.iterdir())


UNITS = st.sampled_from([None, "micrometer", "nanometer", "millimeter", "angstrom"])


@st.composite
def ngff_cases(draw: st.DrawFn) -> tuple[str, ArrayMetadata, tuple[int, ...]]:
    space = draw(st.sampled_from(["yx", "zyx"]))
    head = draw(st.sampled_from(["", "c", "t", "tc", "b", "bc"]))
    axes = head + space
    unit = draw(UNITS)
    meta = []
    for letter in axes:
        axis_id = {"c": "channel", "t": "time", "b": "batch"}.get(letter, letter)
        if letter in "zyx":
            meta.append(
                AxisMetadata(
                    axis_id,
                    "space",
                    unit,
                    scale=draw(st.floats(1e-3, 1e3, allow_nan=False)),
                    translation=draw(st.floats(-1e4, 1e4, allow_nan=False)),
                )
            )
        elif letter == "t":
            meta.append(AxisMetadata(axis_id, "time", draw(st.sampled_from([None, "second"])),
                                     scale=draw(st.floats(0.01, 100))))
        else:
            meta.append(AxisMetadata.default(axis_id))
    shape = tuple(2 if a == "b" else draw(st.integers(1, 5)) for a in axes)
    return axes, ArrayMetadata(tuple(meta), name=draw(st.sampled_from([None, "raw"]))), shape


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ngff_cases())
def test_ome_zarr_metadata_round_trips(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[str, ArrayMetadata, tuple[int, ...]]
) -> None:
    axes, meta, shape = case
    target = tmp_path_factory.mktemp("ngff") / "o.ome.zarr"
    data = np.arange(math.prod(shape), dtype="int32").reshape(shape)
    save_tensor(target, Tensor(data, meta.dims), metadata=meta)
    with open_array(target) as back:
        assert back.metadata is not None
        assert back.dims == meta.dims
        assert back.metadata == meta
        np.testing.assert_array_equal(back.read_block(...), data)


def test_rescaled_metadata_keeps_pixel_centres() -> None:
    meta = ArrayMetadata([AxisMetadata("x", "space", "micrometer", 0.5, 10.0)])
    half = meta.rescaled({"x": 2})
    # output pixel 0 covers input pixels 0 and 1 (centres 10.0 and 10.5): its centre is 10.25
    assert half["x"] == AxisMetadata("x", "space", "micrometer", 1.0, 10.25)
    assert meta.for_dims(["channel", "x"]).axes[0] == AxisMetadata("channel", "channel")
