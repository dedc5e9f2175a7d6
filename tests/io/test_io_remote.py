"""zarr stores read through fsspec URLs from a local HTTP server: lazily, chunk by chunk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bioimageio_core.errors import OfflineError, SourceError
from bioimageio_core.io import load_tensor, open_array, parse_location, save_tensor
from bioimageio_core.tensor import Tensor

zarr = pytest.importorskip("zarr", reason="the 'zarr' extra is not installed")
pytest.importorskip("fsspec", reason="the 'zarr-remote' extra is not installed")
pytest.importorskip("aiohttp", reason="the 'zarr-remote' extra is not installed")

DATA = np.arange(32 * 24, dtype="float32").reshape(32, 24)


def _chunk_requests(server: Any, store: str) -> list[str]:
    requests = server.requests
    metadata = ("zarr.json", ".zarray", ".zattrs", ".zgroup")
    return sorted(p for p in requests if p.startswith(f"/{store}/") and not p.endswith(metadata))


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_reading_a_block_fetches_only_its_chunks(http_server: Any, zarr_format: int) -> None:
    root: Path = http_server.root
    array = zarr.create_array(
        store=str(root / "d.zarr"),
        shape=DATA.shape,
        chunks=(8, 8),
        dtype="float32",
        zarr_format=zarr_format,
    )
    array[...] = DATA
    url = http_server.url("d.zarr")
    with open_array(url, "yx") as remote:
        assert remote.shape == DATA.shape and remote.chunks == (8, 8)
        assert _chunk_requests(http_server, "d.zarr") == []  # opening reads metadata only
        block = remote.read_block((slice(8, 16), slice(16, 24)))
        np.testing.assert_array_equal(block, DATA[8:16, 16:24])
    fetched = _chunk_requests(http_server, "d.zarr")
    assert len(fetched) == 1 and fetched[0].endswith(("c/1/2", "1.2"))


def test_remote_ome_zarr_levels_and_members(http_server: Any) -> None:
    root: Path = http_server.root
    save_tensor(root / "img.ome.zarr", Tensor(DATA[None], ("channel", "y", "x")))
    save_tensor(root / "s.zarr:raw/data", Tensor(DATA, ("y", "x")))
    url = http_server.url
    image = load_tensor(url("img.ome.zarr"))
    assert image.dims == ("channel", "y", "x")
    np.testing.assert_array_equal(image.data[0], DATA)
    np.testing.assert_array_equal(load_tensor(url("img.ome.zarr") + ":0").data[0], DATA)
    np.testing.assert_array_equal(load_tensor(url("s.zarr") + ":raw/data").data, DATA)
    # a remote group cannot be listed: the message says to name the array
    with pytest.raises(SourceError, match="cannot be listed") as info:
        load_tensor(url("s.zarr"))
    assert info.value.hint is not None and ":path/to/array" in info.value.hint


def test_remote_errors_say_what_to_do(
    http_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = http_server.url
    with pytest.raises(SourceError, match="not a zarr store"):
        open_array(url("missing.zarr"))
    with pytest.raises(SourceError, match="read from local paths") as info:
        open_array(url("image.tif"))
    assert info.value.hint is not None and "zarr" in info.value.hint
    monkeypatch.setenv("BIOIMAGEIO_OFFLINE", "1")
    with pytest.raises(OfflineError):
        open_array(url("d.zarr"))


def test_urls_are_locations_with_members() -> None:
    loc = parse_location("https://host:8080/data/raw.zarr:group/array")
    assert loc.url == "https://host:8080/data/raw.zarr" and loc.member == "group/array"
    assert loc.suffix == ".zarr" and str(loc) == "https://host:8080/data/raw.zarr:group/array"
    assert parse_location("s3://bucket/x.zarr").member is None
    local = parse_location("file:///tmp/x.npy")
    assert local.url is None and local.path == Path("/tmp/x.npy")
