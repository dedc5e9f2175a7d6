"""Architecture code from a remote source runs only when the user allows it."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from bioimageio_run_torch.plugin import create_pytorch_state_dict_adapter
from torch_helpers import (
    NETS_FILE,
    LocalOpener,
    file_architecture,
    make_request,
    run_eager,
    seeded,
    state_dict_model_rdf,
)

from bioimageio_core.plugin import RemoteCodeError, Settings, ZipRoot, get_settings

FORMAT = "pytorch_state_dict"
URL_ROOT = "https://example.com/models/tiny/"


def _rdf(
    folder: Path, nets: ModuleType, arch_source: str | None = None
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    module = seeded(nets.TinyConv)
    x = np.random.default_rng(0).standard_normal((1, 1, 8, 8)).astype(np.float32)
    expected = run_eager(module, x).numpy()
    architecture = file_architecture(folder / NETS_FILE, "TinyConv")
    if arch_source is not None:
        architecture["source"] = arch_source
    return state_dict_model_rdf(folder, module, x, architecture), x, expected


def _assert_refused(error: RemoteCodeError) -> None:
    text = str(error)
    assert "refusing to run the architecture code " in text
    assert "tiny_nets.py:TinyConv of the pytorch_state_dict weights" in text
    assert "BIOIMAGEIO_ALLOW_REMOTE_CODE=1" in text
    assert "--allow-remote-code" in text
    assert error.loc == "$.weights.pytorch_state_dict.architecture.source"


def test_model_opened_from_a_url_is_refused(nets: ModuleType, model_dir: Path) -> None:
    rdf, _, _ = _rdf(model_dir, nets)
    opener = LocalOpener(model_dir, url_root=URL_ROOT)
    request = make_request(model_dir, rdf, FORMAT, root=URL_ROOT, opener=opener)
    with pytest.raises(RemoteCodeError) as info:
        create_pytorch_state_dict_adapter(request)
    _assert_refused(info.value)
    assert opener.calls == []  # nothing was even fetched


def test_architecture_url_is_refused_for_a_local_model(nets: ModuleType, model_dir: Path) -> None:
    rdf, _, _ = _rdf(model_dir, nets, arch_source=URL_ROOT + NETS_FILE)
    opener = LocalOpener(model_dir, url_root=URL_ROOT)
    with pytest.raises(RemoteCodeError) as info:
        create_pytorch_state_dict_adapter(make_request(model_dir, rdf, FORMAT, opener=opener))
    _assert_refused(info.value)
    assert opener.calls == []


def test_allowed_remote_code_runs(nets: ModuleType, model_dir: Path) -> None:
    rdf, x, expected = _rdf(model_dir, nets, arch_source=URL_ROOT + NETS_FILE)
    settings = get_settings({"BIOIMAGEIO_ALLOW_REMOTE_CODE": "1"})
    opener = LocalOpener(model_dir, url_root=URL_ROOT)
    request = make_request(model_dir, rdf, FORMAT, root=URL_ROOT, opener=opener, settings=settings)
    with create_pytorch_state_dict_adapter(request) as adapter:
        np.testing.assert_allclose(
            adapter.forward({"raw": x})["out"], expected, rtol=1e-6, atol=1e-6
        )
    assert (URL_ROOT + NETS_FILE, rdf["weights"][FORMAT]["architecture"]["sha256"]) in opener.calls


def test_local_model_runs_without_the_setting(nets: ModuleType, model_dir: Path) -> None:
    rdf, x, expected = _rdf(model_dir, nets)
    request = make_request(model_dir, rdf, FORMAT, settings=Settings(allow_remote_code=False))
    with create_pytorch_state_dict_adapter(request) as adapter:
        np.testing.assert_allclose(
            adapter.forward({"raw": x})["out"], expected, rtol=1e-6, atol=1e-6
        )


def test_zip_package_downloaded_from_a_url_is_refused(nets: ModuleType, model_dir: Path) -> None:
    rdf, _, _ = _rdf(model_dir, nets)
    root = ZipRoot(model_dir / "tiny.zip", origin="https://example.com/models/tiny.zip")
    request = make_request(model_dir, rdf, FORMAT, root=root)
    with pytest.raises(RemoteCodeError) as info:
        create_pytorch_state_dict_adapter(request)
    _assert_refused(info.value)
    assert info.value.where == (
        "tiny_nets.py in the package downloaded from https://example.com/models/tiny.zip"
    )
