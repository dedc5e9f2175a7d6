"""The test distribution ``tests/plugin_dists/lab_catalog`` (a real entry point): its resolver
(``lab:<name>``) and its image format (``.pgm``) are used by the core's loading, io and CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from id_collection import SIZE, Offline, conv_reflect, write_conv_model
from optional import skip_module, unmet_dists

from bioimageio_core import load_description, plugins
from bioimageio_core.cli import main
from bioimageio_core.collection_testing import LocalServer, MiniCollection, sha256_of
from bioimageio_core.errors import InputError, UnresolvedSourceError
from bioimageio_core.io import load_tensor, save_tensor
from bioimageio_core.sources import UrlRoot, read_description
from bioimageio_core.tensor import Tensor

skip_module(unmet_dists("lab_catalog", "numpy_models", what="the lab_catalog plugin tests"))


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalServer:
    """A server holding model ``conv`` and a catalog ``{"conv": url+sha256}`` in a local file."""
    collection = MiniCollection(tmp_path / "served")
    write_conv_model(tmp_path / "models" / "conv", "lab conv")
    path = collection.publish_files("conv", tmp_path / "models" / "conv")
    with LocalServer(collection.root) as server:
        catalog = {"conv": {"url": server.url(path), "sha256": sha256_of(collection.root / path)}}
        (tmp_path / "catalog.json").write_text(json.dumps(catalog))
        monkeypatch.setenv("BIOIMAGEIO_LAB_CATALOG", str(tmp_path / "catalog.json"))
        yield server


def test_lab_catalog_registers_through_its_entry_point() -> None:
    (info,) = [i for i in plugins.plugin_infos() if i.name == "lab_catalog"]
    assert (info.distribution, info.status) == ("bioimageio-lab-catalog", "loaded")
    assert info.source_resolvers == ("lab-catalog",)
    assert info.image_io == ("PGM",)


def test_lab_resolver_is_used_and_recorded_for_offline_use(
    lab: LocalServer, offline: Offline
) -> None:
    online = load_description("lab:conv")
    assert online.root == UrlRoot(lab.url("files/conv/"))
    assert online.name == "lab conv"
    lab.stop()
    offline.activate()
    assert load_description("lab:conv") == online
    assert offline.attempts == []


def test_lab_resolver_suggestions(lab: LocalServer) -> None:
    with pytest.raises(UnresolvedSourceError) as info:
        read_description("lab:cnv")
    assert info.value.suggestions == ("lab:conv",)


def test_pgm_round_trip_8_and_16_bit(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for dtype in ("uint8", "uint16"):
        data = rng.integers(0, np.iinfo(dtype).max, size=(5, 7), dtype=dtype)
        save_tensor(tmp_path / f"{dtype}.pgm", Tensor(data[None], ("channel", "y", "x")))
        loaded = load_tensor(tmp_path / f"{dtype}.pgm")
        assert loaded.dims == ("y", "x") and loaded.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(loaded.data, data)
    with pytest.raises(InputError, match="PGM holds uint8 or uint16"):
        save_tensor(tmp_path / "f.pgm", Tensor(np.zeros((2, 2), np.float32), ("y", "x")))


def test_cli_predict_resolves_the_model_and_reads_pgm_inputs(
    lab: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    image = np.random.default_rng(1).integers(0, 255, size=(SIZE + 8, SIZE + 8), dtype="uint8")
    save_tensor(tmp_path / "cells.pgm", Tensor(image, ("y", "x")))
    result = CliRunner().invoke(
        main, ["predict", "lab:conv", "-i", "cells.pgm", "-o", "out/{sample_id}.npy"]
    )
    assert result.exit_code == 0, result.output
    out = np.load(tmp_path / "out" / "cells.npy")
    expected = conv_reflect(image.astype(np.float32)[None, None])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
