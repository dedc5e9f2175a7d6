"""Code a description brings runs only with consent, on every command and API that loads a model.

The attack: a model served from a URL whose ``pytorch_state_dict`` architecture is a "library"
callable ``os.system`` with a shell command as kwargs, or an architecture file that runs code when
imported. Each case checks the marker file the code would create.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import yaml
from torch_helpers import (
    NETS_FILE,
    Ref,
    TensorDef,
    model_rdf,
    run_eager,
    seeded,
    sha256_of,
    state_dict_weights,
    write_nets,
)

import bioimageio_core
from bioimageio_core.plugin import CodeRefusedError, RemoteCodeError
from bioimageio_core.plugin.testing import run_cli, serve_folder

FORMAT = "pytorch_state_dict"


@pytest.fixture(autouse=True)
def _own_cache_and_no_consent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOIMAGEIO_CACHE_PATH", str(tmp_path / "cache"))
    monkeypatch.delenv("BIOIMAGEIO_ALLOW_REMOTE_CODE", raising=False)


def _write_model(folder: Path, nets: ModuleType, architecture: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text("# tiny model\n")
    module = seeded(nets.TinyConv)
    x = np.random.default_rng(0).standard_normal((1, 1, 8, 8)).astype(np.float32)
    expected = run_eager(module, x).numpy()
    rdf = model_rdf(
        folder,
        [TensorDef("raw", "bcyx", x)],
        [TensorDef("out", "bcyx", expected, Ref("raw"))],
        {FORMAT: state_dict_weights(folder, module.state_dict(), architecture)},
    )
    (folder / "rdf.yaml").write_text(yaml.safe_dump(rdf, sort_keys=False))
    np.save(folder / "image.npy", x)
    return folder / "rdf.yaml"


def _os_system(marker: Path) -> dict[str, Any]:
    command = f"touch {shlex.quote(str(marker))}"
    return {"import_from": "os", "callable": "system", "kwargs": {"command": command}}


def _file_that_touches(folder: Path, marker: Path) -> dict[str, Any]:
    """An architecture file that creates ``marker`` when it is executed."""
    nets = write_nets(folder)
    nets.write_text(f"open({str(marker)!r}, 'w').close()\n" + nets.read_text())
    return {"source": NETS_FILE, "sha256": sha256_of(nets), "callable": "TinyConv"}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Path]:
    """A folder served on 127.0.0.1 (its URL is ``_URLS[folder]``)."""
    folder = tmp_path / "served"
    folder.mkdir()
    with serve_folder(folder) as base_url:
        _URLS[folder] = base_url
        yield folder
    _URLS.pop(folder, None)


_URLS: dict[Path, str] = {}


def _url(served: Path) -> str:
    return _URLS[served] + "rdf.yaml"


# ---- import_from: os / system ------------------------------------------------------------------


CLI_ARGS: dict[str, Callable[[str, Path, Path], tuple[str | Path, ...]]] = {
    "predict": lambda url, served, tmp: (
        "predict", url, "--inputs", served / "image.npy", "--outputs", tmp / "out" / "{sample_id}.npy"
    ),
    "test": lambda url, served, tmp: ("test", url),
    "add-weights": lambda url, served, tmp: ("add-weights", url, tmp / "converted"),
}
"""Arguments of each command run on the served model (its URL, the served folder, tmp_path)."""


@pytest.mark.parametrize("command", CLI_ARGS)
def test_cli_refuses_a_remote_library_architecture(
    command: str, served: Path, nets: ModuleType, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    _write_model(served, nets, _os_system(marker))
    result = run_cli(*CLI_ARGS[command](_url(served), served, tmp_path))
    assert not marker.exists()
    assert result.exit_code == 1
    assert "refusing to run" in result.output
    assert "--allow-remote-code" in result.output


def test_python_predict_of_a_remote_library_architecture(
    served: Path, nets: ModuleType, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    _write_model(served, nets, _os_system(marker))
    x = np.load(served / "image.npy")
    with pytest.raises(RemoteCodeError, match="refusing to run") as info:
        bioimageio_core.predict(model=_url(served), inputs=x)
    assert not marker.exists()
    assert info.value.what.startswith("the architecture os.system")
    assert info.value.where == _URLS[served]


@pytest.mark.parametrize("where", ["remote, allowed", "local"])
def test_a_standard_library_callable_never_runs(
    served: Path, nets: ModuleType, tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "pwned"
    if where == "local":
        source = str(_write_model(tmp_path / "local", nets, _os_system(marker)))
        flags: tuple[str, ...] = ()
    else:
        _write_model(served, nets, _os_system(marker))
        source, flags = _url(served), ("--allow-remote-code",)
    result = run_cli("test", source, *flags)
    assert not marker.exists()
    assert result.exit_code == 1
    assert "standard library" in result.output
    x = np.load(tmp_path / "local" / "image.npy" if where == "local" else served / "image.npy")
    if flags:
        monkeypatch.setenv("BIOIMAGEIO_ALLOW_REMOTE_CODE", "1")
    with pytest.raises(CodeRefusedError, match="standard library") as info:
        bioimageio_core.predict(model=source, inputs=x, weights_format=FORMAT)
    assert info.value.loc == "$.weights.pytorch_state_dict.architecture.import_from"
    assert not marker.exists()


# ---- an architecture file that runs code on import ---------------------------------------------


def test_cli_add_weights_asks_before_running_a_remote_architecture_file(
    served: Path, nets: ModuleType, tmp_path: Path
) -> None:
    marker = tmp_path / "imported"
    _write_model(served, nets, _file_that_touches(served, marker))
    refused = run_cli("add-weights", _url(served), tmp_path / "refused")
    assert not marker.exists()
    assert refused.exit_code == 1
    assert "refusing to run" in refused.output and "--allow-remote-code" in refused.output

    allowed = run_cli(
        "add-weights",
        _url(served),
        tmp_path / "allowed",
        "--target-format",
        "torchscript",
        "--allow-remote-code",
    )
    assert allowed.exit_code == 0, allowed.output
    assert marker.exists()
    assert "added: pytorch_state_dict -> torchscript" in allowed.output


def test_the_cli_flag_does_not_outlive_its_command(
    served: Path, nets: ModuleType, tmp_path: Path
) -> None:
    marker = tmp_path / "imported"
    _write_model(served, nets, _file_that_touches(served, marker))
    assert run_cli("test", _url(served), "--allow-remote-code").exit_code == 0
    assert marker.exists()
    marker.unlink()
    assert run_cli("test", _url(served)).exit_code == 1
    assert not marker.exists()


def test_a_local_architecture_file_runs(nets: ModuleType, tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    folder = tmp_path / "local"
    folder.mkdir()
    rdf = _write_model(folder, nets, _file_that_touches(folder, marker))
    assert run_cli("test", rdf).exit_code == 0
    assert marker.exists()
