"""Fixtures for resolver tests: a miniature bioimage.io collection on a local server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from id_collection import Offline, Served, build

from bioimageio_core.collection_testing import LocalServer
from bioimageio_core.sources import idmap


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """The collection of ``id_collection.build``, with the settings pointing at it."""
    idmap.forget_id_maps()
    with LocalServer(tmp_path / "served") as server:
        collection = build(tmp_path / "served", tmp_path / "models", server)
        for variable, value in collection.env(server).items():
            monkeypatch.setenv(variable, value)
        yield Served(server, collection, tmp_path / "models")
    idmap.forget_id_maps()


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Offline:
    """Go offline with ``offline.activate()`` (restored after the test)."""
    return Offline(monkeypatch)
