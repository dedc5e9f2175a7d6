"""Roots: what relative file references of a description resolve against."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import attrs

from bioimageio_core.references import file_name, is_http_url


@attrs.frozen
class FolderRoot:
    """A local folder (the folder holding the YAML file).

    ``origin`` is set when the folder is a copy the project made of a fetched description (e.g.
    the package folder ``add_weights`` works in): where that description came from. Code in such
    a folder is as untrusted as its origin (see :mod:`bioimageio_core.consent`).
    """

    path: Path
    origin: str | None = None

    def __str__(self) -> str:
        return str(self.path)


@attrs.frozen
class ZipRoot:
    """A local ``.zip`` package; ``origin`` is the URL it was downloaded from, if any."""

    path: Path
    origin: str | None = None

    def __str__(self) -> str:
        return self.origin or str(self.path)


@attrs.frozen
class UrlRoot:
    """An http(s) URL base ending in ``/`` (the remote folder holding the YAML file).

    ``query`` is the query string of the description's URL (``…/files/rdf.yaml?version=1.2``):
    relative references keep it (``weights.pt`` → ``…/files/weights.pt?version=1.2``).
    ``content_suffix`` is set for Zenodo API file URLs (``…/files/rdf.yaml/content``): a relative
    ``x`` is then ``…/files/x/content``.
    """

    base: str
    query: str = ""
    content_suffix: bool = False

    def join(self, reference: str) -> str:
        """The absolute URL of ``reference`` relative to this base."""
        joined = urlsplit(urljoin(self.base, reference))
        if is_http_url(reference):
            return joined.geturl()
        path = joined.path
        if self.content_suffix and not path.endswith("/"):
            path += "/content"
        return joined._replace(path=path, query=joined.query or self.query).geturl()

    def __str__(self) -> str:
        return self.base


Root = FolderRoot | ZipRoot | UrlRoot


def root_or_cwd(root: object) -> Root:
    """``root`` when it is a :data:`Root`; else the current folder (read at call time).

    A description built in Python has no root: its relative references resolve against the
    current folder, as a path given on the command line would.
    """
    if isinstance(root, (FolderRoot, ZipRoot, UrlRoot)):
        return root
    return FolderRoot(Path.cwd())


def root_of(descr: object) -> Root:
    """The root the relative references of ``descr`` resolve against (:func:`root_or_cwd` of its
    ``root``)."""
    return root_or_cwd(getattr(descr, "root", None))


def as_root(root: object) -> Root:
    """The :data:`Root` of a description whose ``root`` attribute is ``root``: a ``Root`` as it
    is, an http(s) URL as a :class:`UrlRoot`, a ``.zip`` file as a :class:`ZipRoot`, another path
    as a :class:`FolderRoot`; anything else (None included) is a ``TypeError`` (see
    :func:`root_or_cwd` for a description without a root)."""
    if isinstance(root, FolderRoot | ZipRoot | UrlRoot):
        return root
    if isinstance(root, str) and is_http_url(root):
        return UrlRoot(root if root.endswith("/") else root + "/")
    if isinstance(root, str | os.PathLike):
        path = Path(root)
        return (
            ZipRoot(path) if path.suffix.lower() == ".zip" and path.is_file() else FolderRoot(path)
        )
    raise TypeError(f"cannot resolve files against a model root of type {type(root).__name__}")


def url_file_name(url: str) -> str:
    """The name for a local copy of the file at ``url``: its
    :func:`~bioimageio_core.references.file_name`, ``"download"`` when the URL names none."""
    return file_name(url) or "download"


def url_base(url: str) -> str:
    """The URL of the folder holding the file ``url`` points at (ends in ``/``)."""
    split = urlsplit(url)
    path = split.path
    if path.endswith("/content") and path.count("/") >= 2:
        path = path[: -len("/content")]
    folder = path.rsplit("/", 1)[0] + "/"
    return split._replace(path=folder, query="", fragment="").geturl()


_ZENODO_API_FILE = re.compile(r"/api/records/[^/]+/files/[^/]+/content$")


def url_root(url: str) -> UrlRoot:
    """The root that references in the description at ``url`` resolve against."""
    split = urlsplit(url)
    return UrlRoot(
        url_base(url),
        query=split.query,
        content_suffix=_ZENODO_API_FILE.search(split.path) is not None,
    )
