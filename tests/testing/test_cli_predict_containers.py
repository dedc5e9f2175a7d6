"""``predict`` inputs inside containers (zarr, OME-Zarr, HDF5), from URLs, and OME-Zarr outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_run import invoke
from model_testing_helpers import MakeModel, expected_conv

from bioimageio_core.cli.input_files import match_inputs, split_member
from bioimageio_core.errors import InputError
from bioimageio_core.io import ArrayMetadata, AxisMetadata, load_tensor, open_array, save_tensor
from bioimageio_core.tensor import Tensor

pytest.importorskip("zarr", reason="the 'zarr' extra is not installed")
pytest.importorskip("h5py", reason="the 'hdf5' extra is not installed")


def _image(seed: int, size: int = 24) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).uniform(0, 1, (1, 1, size, size)).astype(np.float32)


def test_split_member() -> None:
    assert split_member("runs/*.h5:/raw") == ("runs/*.h5", ":/raw")
    assert split_member("d.zarr:a/b") == ("d.zarr", ":a/b")
    assert split_member("images/*.tif") == ("images/*.tif", "")
    assert split_member("C:/data/x.npy") == ("C:/data/x.npy", "")


def test_members_of_containers_are_inputs(tmp_path: Path) -> None:
    x, y = _image(0), _image(1)
    save_tensor(tmp_path / "s.zarr:raw", Tensor(x, ("batch", "channel", "y", "x")))
    save_tensor(tmp_path / "s.zarr:other", Tensor(y, ("batch", "channel", "y", "x")))
    (tmp_path / "runs").mkdir()
    for name, data in (("r1", x), ("r2", y)):
        save_tensor(tmp_path / "runs" / f"{name}.h5:/g/raw", Tensor(data, "bcyx"))
    (sample,) = match_inputs([f"{tmp_path}/s.zarr:raw"], ["raw"])
    assert sample.id == "s" and str(sample.inputs["raw"]) == f"{tmp_path}/s.zarr:raw"
    samples = match_inputs([f"{tmp_path}/runs/*.h5:/g/raw"], ["raw"])
    assert [(s.id, str(s.inputs["raw"])) for s in samples] == [
        ("r1", f"{tmp_path}/runs/r1.h5:/g/raw"),
        ("r2", f"{tmp_path}/runs/r2.h5:/g/raw"),
    ]
    with pytest.raises(InputError, match=r"input file not found: .*missing\.zarr$"):
        match_inputs([f"{tmp_path}/missing.zarr:raw"], ["raw"])


def test_predict_reads_container_members_and_urls(
    make_model: MakeModel, tmp_path: Path, http_server: Any
) -> None:
    model = make_model()
    x = _image(0)
    save_tensor(tmp_path / "s.zarr:raw", Tensor(x, ("batch", "channel", "y", "x")))
    save_tensor(tmp_path / "s.zarr:other", Tensor(_image(1), ("batch", "channel", "y", "x")))
    # the message for a store with several arrays suggests the syntax: it works
    hint = invoke("predict", str(model), "-i", str(tmp_path / "s.zarr"), "-o", "x.npy")
    assert hint.exit_code == 1 and f"{tmp_path / 's.zarr'}:other" in hint.stderr
    result = invoke(
        "predict", str(model), "-i", f"{tmp_path}/s.zarr:raw", "-o", str(tmp_path / "o.npy"), "-q"
    )
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), expected_conv(x), atol=1e-6)

    save_tensor(http_server.root / "r.zarr", Tensor(x, ("batch", "channel", "y", "x")))
    remote = invoke(
        "predict", str(model), "-i", http_server.url("r.zarr"), "-o", str(tmp_path / "u.npy")
    )
    assert remote.exit_code == 0, remote.output
    np.testing.assert_allclose(np.load(tmp_path / "u.npy"), expected_conv(x), atol=1e-6)


def test_ome_zarr_output_keeps_the_inputs_coordinates(
    make_model: MakeModel, tmp_path: Path
) -> None:
    model = make_model()
    x = _image(2, size=32)
    meta = ArrayMetadata(
        [
            AxisMetadata("channel", "channel"),
            AxisMetadata("y", "space", "micrometer", 0.25, 100.0),
            AxisMetadata("x", "space", "micrometer", 0.5, -3.0),
        ],
        name="nuclei",
    )
    save_tensor(tmp_path / "in.ome.zarr", Tensor(x[0], ("channel", "y", "x")), metadata=meta)
    out = tmp_path / "pred" / "{sample_id}.ome.zarr"
    result = invoke("predict", str(model), "-i", str(tmp_path / "in.ome.zarr"), "-o", str(out))
    assert result.exit_code == 0, result.output
    written = tmp_path / "pred" / "in.ome.zarr"
    with open_array(written) as prediction:
        assert prediction.dims == ("channel", "y", "x")
        assert prediction.metadata is not None
        assert prediction.metadata["y"] == meta["y"] and prediction.metadata["x"] == meta["x"]
    np.testing.assert_allclose(load_tensor(written).data, expected_conv(x)[0], atol=1e-6)
