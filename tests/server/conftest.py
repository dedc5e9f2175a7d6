"""Server tests need the ``server`` extra (Starlette, uvicorn; httpx for the test client) and the
onnx backend; without them this folder is skipped with the reason, except under
``BIOIMAGEIO_TEST_SERVER=required`` (the nox ``tests_server`` session), where it fails."""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from optional import skip_folder, unmet

MISSING = unmet(
    {
        "server extra": ("starlette", "uvicorn"),
        "test client": ("httpx",),
        "onnx backend": ("bioimageio_run_onnx", "onnxruntime"),
    },
    "server tests",
    "-e '.[server,test]' -e plugins/onnx",
    variable="BIOIMAGEIO_TEST_SERVER",
    session="tests_server",
)

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
EXAMPLE = ROOT / "examples" / "tiny-nuclei-unet" / "rdf.yaml"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip this folder's tests (only these) when the server extra or onnx is missing."""
    skip_folder(MISSING, HERE, items)


@pytest.fixture(scope="session")
def token() -> str:
    return secrets.token_urlsafe(24)


@pytest.fixture(scope="session")
def example() -> Path:
    return EXAMPLE


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-cache")


def _server_env(cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "BIOIMAGEIO_SERVER_TOKEN"}
    env.update(BIOIMAGEIO_CACHE_PATH=str(cache), **extra)
    return env


@pytest.fixture(scope="session")
def server_env(session_cache: Path) -> Callable[..., dict[str, str]]:
    """``server_env(**extra)``: the environment of a server process (a cache of the servers'
    own, no token inherited from the test process, ``extra`` added)."""
    return functools.partial(_server_env, session_cache)


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, token: str, session_cache: Path
) -> Iterator[object]:
    """One server for a test module (token required, onnx among its backends)."""
    from bioimageio_core.server.testing import ServerProcess

    store = tmp_path_factory.mktemp("store")
    with ServerProcess(store=store, token=token, env=_server_env(session_cache)) as server:
        yield server
