"""A miniature bioimage.io collection of tiny ``numpy_conv`` models, served on 127.0.0.1.

Published (see :func:`build`):

* ``affable-shark``: served by the collection pattern (``artifacts/affable-shark/files/``);
* ``lazy-fish`` (1.3, latest), ``lazy-fish/1.2``, DOI ``10.5281/zenodo.999`` (a zip package of
  1.2): main id map; ``lazy-fish/draft``: draft id map;
* ``twin``: in both maps (main: "twin main", draft: "twin draft");
* ``query-fish``: ``files/q/rdf.yaml?version=1.2``; ``zenodo-fish``: a Zenodo API URL
  ``api/records/5/files/rdf.yaml/content`` whose files are ``…/files/<name>/content``;
* ``huggingface/u/r`` at branches ``main``, ``v1.3`` and ``dev``.

Each model's ``name`` says which one it is.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

from bioimageio_core.collection_testing import LocalServer, MiniCollection
from bioimageio_core.plugin.testing import (
    ModelDef,
    Param,
    Ref,
    TensorDef,
    WeightsDef,
    write_model,
)

Array = np.ndarray[Any, Any]
KERNEL = np.array([[0.0, 0.125, 0.0], [0.125, 0.5, 0.125], [0.0, 0.125, 0.0]], dtype=np.float32)
SIZE = 16


def conv_reflect(x: Array) -> Array:
    """'same' correlation of the last two axes with ``KERNEL``, numpy 'reflect' borders."""
    widths = [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)]
    padded = np.pad(x.astype(np.float64), widths, mode="reflect")
    h, w = x.shape[-2:]
    out = sum(
        KERNEL[i, j] * padded[..., i : i + h, j : j + w] for i in range(3) for j in range(3)
    )
    return np.asarray(out, dtype=np.float32)


def write_conv_model(folder: Path, name: str, seed: int = 0) -> Path:
    """A one-input ``numpy_conv`` model ``raw`` -> ``out`` (3x3 convolution, halo 1)."""
    folder.mkdir(parents=True, exist_ok=True)
    x = np.random.default_rng(seed).uniform(0, 1, size=(1, 1, SIZE, SIZE)).astype(np.float32)
    np.savez(folder / "weights.npz", kernel_0=KERNEL)
    model = ModelDef(
        name=name,
        inputs=(TensorDef("raw", "bcyx", x, Param(16, 8)),),
        outputs=(TensorDef("out", "bcyx", conv_reflect(x), Ref("raw"), halo=1),),
        weights=(WeightsDef("numpy_conv", "weights.npz"),),
    )
    return write_model(folder, model, "0.5")


def _zenodo_layout(model: Path, target: Path) -> None:
    """``target/<name>/content`` for every file of ``model`` (Zenodo's API file URLs)."""
    for file in model.iterdir():
        if file.is_file():
            (target / file.name).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target / file.name / "content")


def build(root: Path, models: Path, server: LocalServer) -> MiniCollection:
    """Write the collection described in the module docstring into ``root``."""
    collection = MiniCollection(root)

    def model(name: str, seed: int = 0) -> Path:
        write_conv_model(models / name, name, seed)
        return models / name

    collection.publish_latest("affable-shark", model("affable shark"))
    latest = collection.publish_files("lazy-fish/1.3", model("lazy fish 13", 1))
    v12 = collection.publish_files("lazy-fish/1.2", model("lazy fish 12", 2))
    draft = collection.publish_files("lazy-fish/draft", model("lazy fish draft", 3))
    package = collection.publish_zip("lazy-fish-1.2.zip", models / "lazy fish 12")
    collection.add_entry("lazy-fish", server, latest)
    collection.add_entry("lazy-fish/1.2", server, v12)
    collection.add_entry("10.5281/zenodo.999", server, package)
    collection.add_entry("lazy-fish/draft", server, draft, draft=True)
    collection.add_entry("twin", server, collection.publish_files("twin/main", model("twin main")))
    collection.add_entry(
        "twin",
        server,
        collection.publish_files("twin/draft", model("twin draft")),
        draft=True,
    )
    query = collection.publish_files("q", model("query fish"))
    collection.add_entry("query-fish", server, query)
    collection.id_map["query-fish"]["source"] += "?version=1.2"
    _zenodo_layout(model("zenodo fish"), root / "api" / "records" / "5" / "files")
    collection.add_entry("zenodo-fish", server, "api/records/5/files/rdf.yaml/content")
    for branch in ("main", "v1.3", "dev"):
        folder = root / "huggingface" / "u" / "r" / "resolve" / branch / "package"
        write_conv_model(folder, f"hf {branch.replace('.', '')}")
        (folder / "rdf.yaml").rename(folder / "bioimageio.yaml")
    collection.write_maps()
    return collection


@attrs.frozen
class Served:
    server: LocalServer
    collection: MiniCollection
    models: Path
    """The model folders the collection was built from."""


class Offline:
    """After :meth:`activate`: ``BIOIMAGEIO_OFFLINE=1``, and any attempt to open a connection
    fails the test (the attempts are kept in ``attempts``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch
        self.attempts: list[object] = []

    def activate(self) -> None:
        def refuse(sock: socket.socket, address: object) -> None:
            self.attempts.append(address)
            raise AssertionError(f"network used offline: connect to {address}")

        self._monkeypatch.setenv("BIOIMAGEIO_OFFLINE", "1")
        self._monkeypatch.setattr(socket.socket, "connect", refuse)
        self._monkeypatch.setattr(socket.socket, "connect_ex", refuse)
