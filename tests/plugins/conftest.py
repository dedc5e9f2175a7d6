"""Fixtures for plugin tests: fake installed distributions with real entry points."""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bioimageio_core import plugins

_counter = itertools.count()

MakeDist = Callable[[str, str], str]


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture
def make_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MakeDist:
    """``make_dist(dist_name, module_source) -> entry-point name``.

    Writes a module and a ``.dist-info`` folder with an entry point in group ``bioimageio_core``
    into a folder on ``sys.path``, so ``importlib.metadata`` discovers it like an installed
    distribution.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def make(dist_name: str, source: str) -> str:
        n = next(_counter)
        module = f"fake_bioimageio_plugin_{n}"
        ep_name = dist_name.replace("-", "_")
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{dist_name.replace('-', '_')}-1.2.{n}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 1.2.{n}\n"
        )
        (info / "entry_points.txt").write_text(f"[bioimageio_core]\n{ep_name} = {module}\n")
        return ep_name

    return make
