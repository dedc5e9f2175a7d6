"""The torch backend behind ``bioimageio-run serve``: code a model brings runs on a server only
with the server's own consent (``serve --allow-remote-code``), never because a client asked.

Needs the core's ``server`` extra (the nox ``tests_torch`` session installs it).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bioimageio_core import ServerError, create_prediction_pipeline

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "tiny-nuclei-unet" / "rdf.yaml"
TOKEN = "token-of-the-torch-server-tests"

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("starlette", "uvicorn")),
    reason="needs the server extra: pip install -c constraints.txt -e '.[server]'",
)


def _server(tmp_path: Path, *args: str) -> object:
    from bioimageio_core.plugin.testing import ServerProcess

    env = {k: v for k, v in os.environ.items() if k != "BIOIMAGEIO_ALLOW_REMOTE_CODE"}
    env["BIOIMAGEIO_CACHE_PATH"] = str(tmp_path / "server-cache")
    return ServerProcess(store=tmp_path / "store", token=TOKEN, args=args, env=env)


@pytest.fixture
def client_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("BIOIMAGEIO_SERVER_TOKEN", TOKEN)
    yield


def _predict(pipeline: object, x: np.ndarray) -> np.ndarray:
    sample = pipeline.digest(x, axes="bcyx")  # type: ignore[attr-defined]
    out = pipeline.predict_sample_without_blocking(sample)  # type: ignore[attr-defined]
    return np.asarray(out.members["probability"].data)


def test_architecture_code_runs_on_a_server_only_with_its_own_consent(
    tmp_path: Path, client_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = np.random.default_rng(0).normal(size=(1, 1, 128, 96)).astype(np.float32)
    with create_prediction_pipeline(EXAMPLE, weights_format="pytorch_state_dict") as local:
        expected = _predict(local, x)  # a local model the user named: trusted here

    # the client allows remote code for itself: that changes nothing on the server
    monkeypatch.setenv("BIOIMAGEIO_ALLOW_REMOTE_CODE", "1")
    with _server(tmp_path) as server:  # type: ignore[attr-defined]
        with pytest.raises(ServerError) as refused:
            create_prediction_pipeline(
                EXAMPLE, weights_format="pytorch_state_dict", server=server.url
            )
        assert refused.value.status == 403
        assert "refusing to run the architecture" in refused.value.message
        assert "serve --allow-remote-code" in (refused.value.hint or "")
        assert "pytorch_state_dict weights" not in server.log  # nothing was loaded
        # without a chosen format the server runs the weights that bring no code
        with create_prediction_pipeline(EXAMPLE, server=server.url) as remote:
            assert remote.weights_format == "torchscript"

    with _server(tmp_path, "--allow-remote-code") as server:  # type: ignore[attr-defined]
        with create_prediction_pipeline(
            EXAMPLE, weights_format="pytorch_state_dict", server=server.url
        ) as remote:
            np.testing.assert_array_equal(_predict(remote, x), expected)
