"""Resolve a source to its raw description, and referenced files to local paths."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from bioimageio_core.errors import HashMismatchError, NetworkError, OfflineError, SourceError
from bioimageio_core.references import is_http_url, reference_problem
from bioimageio_core.settings import get_settings
from bioimageio_core.sources.cache import normalize_sha256, sha256_of_file
from bioimageio_core.sources.http import check_url, download
from bioimageio_core.sources.resolvers import (
    PendingResolution,
    Resolution,
    finish_resolution,
    forms_hint,
    resolve_source,
)
from bioimageio_core.sources.roots import (
    FolderRoot,
    Root,
    UrlRoot,
    ZipRoot,
    root_or_cwd,
    url_file_name,
    url_root,
)
from bioimageio_core.sources.yamlio import parse_yaml_mapping
from bioimageio_core.sources.zips import check_zip, extract_member, member_name, read_member

#: file names of a description, in order of preference
YAML_NAMES = ("bioimageio.yaml", "rdf.yaml", "model.yaml")
_YAML_SUFFIXES = (".yaml", ".yml")

Source = str | os.PathLike[str] | Mapping[str, Any]


@attrs.frozen
class RawDescription:
    """The YAML content of a description, where it came from, and what its files resolve against."""

    data: dict[str, Any]
    root: Root
    file_name: str
    label: str | None = None
    resolution: Resolution | None = None
    """How a source string (an id, …) was resolved; None for paths, URLs and dicts."""

    @property
    def source_name(self) -> str:
        """A short text naming the source, for messages and summaries."""
        if self.label is not None:
            return self.label
        if isinstance(self.root, UrlRoot):
            return self.root.join(self.file_name)
        if isinstance(self.root, ZipRoot):
            return (
                f"{self.root}/{self.file_name}"
                if self.root.origin
                else f"{self.root.path}/{self.file_name}"
            )
        return str(self.root.path / self.file_name)


def source_name(source: object) -> str:
    """A short text naming any source (for a summary of a source that could not be read)."""
    if isinstance(source, Mapping):
        return f"<dict: {source.get('name', 'unnamed')}>"
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else repr(source)


def read_description(source: Source, *, root: Root | None = None) -> RawDescription:
    """Read a description from a path, folder, ``.zip``, http(s) URL, dict, or a source string
    a resolver understands (a bioimage.io id, DOI, ``huggingface/<user>/<repo>``, …).

    An existing local file or folder wins over an id of the same name. ``root`` only applies to a
    dict (default: the current folder). Raises :class:`SourceError` with an actionable message
    when the source cannot be read (an :class:`UnresolvedSourceError` with suggestions for an
    unknown id, an :class:`OfflineError` naming what the cache lacks offline).
    """
    if isinstance(source, Mapping):
        return RawDescription(
            data=dict(source),
            root=root_or_cwd(root),
            file_name="bioimageio.yaml",
            label=f"<dict: {source.get('name', 'unnamed')}>",
        )
    if isinstance(source, str) and is_http_url(source):
        return _read_url(source)
    if not isinstance(source, (str, os.PathLike)):
        raise SourceError(
            f"cannot read a description from a {type(source).__name__}",
            hint="give a path, a folder, a .zip package, an http(s) URL, an id or a dict",
        )
    path = Path(source).expanduser()
    if path.is_dir():
        name = find_yaml_name(
            [p.name for p in path.iterdir() if p.is_file()], where=f"folder {path}"
        )
        return _read_local_yaml(path / name)
    if path.is_file():
        if path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
            return _read_zip(path)
        return _read_local_yaml(path)
    if isinstance(source, str):
        pending = resolve_source(source)
        if pending is not None:
            return _read_resolved(pending)
    raise SourceError(f"no such file or folder: {path}", hint=forms_hint())


def _read_resolved(pending: PendingResolution) -> RawDescription:
    """Read what a resolver found (fetching it unless it did), and record the resolution."""
    target = pending.target
    if not is_http_url(target.url):  # a resolver that maps to a local file or folder
        raw = read_description(Path(target.url))
        # what an id names is a fetched source, wherever the resolver found it: its code needs
        # consent like code from a URL (the root remembers the id as its origin)
        root = raw.root
        if isinstance(root, (FolderRoot, ZipRoot)) and root.origin is None:
            root = attrs.evolve(root, origin=pending.source)
        return attrs.evolve(raw, root=root, resolution=finish_resolution(pending, None))
    local = target.downloaded
    expected = normalize_sha256(target.sha256)
    try:
        if local is None:
            local = _fetch_url(target.url, expected)
        elif expected is not None and (actual := sha256_of_file(local)) != expected:
            raise HashMismatchError(target.url, expected, actual)
        raw = _read_downloaded(target.url, local)
    except OfflineError as e:
        raise OfflineError(
            f"offline: {pending.source!r} resolved to {target.url}, which is not in the cache",
            missing=e.missing,
        ) from None
    except HashMismatchError:
        raise
    except SourceError as e:
        error = NetworkError if isinstance(e, NetworkError) else SourceError
        raise error(
            f"{pending.source!r} resolved to {target.url}, but {e.message}", hint=e.hint
        ) from None
    resolution = finish_resolution(pending, local)
    return attrs.evolve(
        raw, label=f"{pending.source} ({target.url})", resolution=resolution
    )


def find_yaml_name(names: list[str], *, where: str) -> str:
    """Pick the description file among the file names of a folder or package.

    ``bioimageio.yaml``, ``rdf.yaml`` or ``model.yaml`` if exactly one of them is present, else
    exactly one ``*.bioimageio.yaml`` / ``*.rdf.yaml`` / ``*.model.yaml``; otherwise an error that
    lists the candidates.
    """
    exact = [n for n in YAML_NAMES if n in names]
    if len(exact) == 1:
        return exact[0]
    candidates = exact or sorted(n for n in names if n.endswith(tuple("." + y for y in YAML_NAMES)))
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        raise SourceError(
            f"{where} holds several descriptions: {', '.join(candidates)}",
            hint="give the path of the one to use",
        )
    yamls = sorted(n for n in names if n.lower().endswith(_YAML_SUFFIXES))
    found = f" (YAML files there: {', '.join(yamls)})" if yamls else ""
    raise SourceError(
        f"{where} holds no description named {', '.join(YAML_NAMES)} or *.bioimageio.yaml{found}",
        hint="give the path of the description file",
    )


def _read_local_yaml(path: Path) -> RawDescription:
    limit = get_settings().max_yaml_bytes
    try:
        size = path.stat().st_size
        if size > limit:
            parse_yaml_mapping(b" " * (limit + 1), str(path), limit)  # raises the size error
        data = path.read_bytes()
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e.strerror or e}") from None
    content = parse_yaml_mapping(data, str(path), limit)
    return RawDescription(data=content, root=FolderRoot(path.parent.resolve()), file_name=path.name)


def _read_zip(path: Path, origin: str | None = None) -> RawDescription:
    names = check_zip(path)
    top_level = [n for n in names if "/" not in n.rstrip("/") and not n.endswith("/")]
    name = find_yaml_name(top_level, where=f"zip package {origin or path}")
    limit = get_settings().max_yaml_bytes
    data = read_member(path, name, limit)
    content = parse_yaml_mapping(data, f"{origin or path}/{name}", limit)
    return RawDescription(data=content, root=ZipRoot(path.resolve(), origin), file_name=name)


def _read_url(url: str) -> RawDescription:
    return _read_downloaded(url, _fetch_url(url))


def _fetch_url(url: str, sha256: str | None = None) -> Path:
    is_yaml = url_file_name(url).lower().endswith(_YAML_SUFFIXES)
    return download(url, sha256=sha256, max_bytes=get_settings().max_yaml_bytes if is_yaml else None)


def _read_downloaded(url: str, local: Path) -> RawDescription:
    """The description fetched from ``url`` into ``local`` (a YAML file or a zip package)."""
    settings = get_settings()
    file_name = url_file_name(url)
    is_yaml = file_name.lower().endswith(_YAML_SUFFIXES)
    if not is_yaml and zipfile.is_zipfile(local):
        return _read_zip(local, origin=url)
    try:
        data = local.read_bytes()
    except OSError as e:
        raise SourceError(f"cannot read the download of {url}: {e.strerror or e}") from None
    content = parse_yaml_mapping(data, url, settings.max_yaml_bytes)
    return RawDescription(data=content, root=url_root(url), file_name=file_name)


def open_file(root: Root, reference: str, sha256: str | None = None) -> Path:
    """A local path holding the file ``reference`` names, relative to ``root``.

    URLs are downloaded into the cache, zip members extracted into the cache, local files used
    in place. A relative reference must stay inside ``root``: ``..``, absolute paths, other URL
    schemes, backslashes and (in a folder) symbolic links that lead out of it raise
    :class:`SourceError` before anything is read. With ``sha256`` the content is checked: a
    mismatch raises :class:`HashMismatchError` and leaves no mismatching copy in the cache. A
    missing file raises :class:`SourceError` ("file not found: …").
    """
    expected = normalize_sha256(sha256)
    if is_http_url(reference):
        return download(reference, sha256=expected)
    _refuse_outside(root, reference)
    if isinstance(root, UrlRoot):
        return download(_join_inside(root, reference), sha256=expected)
    if isinstance(root, ZipRoot):
        extracted = extract_member(root.path, member_name(reference))
        if expected is not None:
            actual = sha256_of_file(extracted)
            if actual != expected:
                extracted.unlink(missing_ok=True)
                raise HashMismatchError(reference, expected, actual)
        return extracted
    path = _path_inside(root, reference)
    if expected is not None:
        if not path.is_file():
            raise SourceError(f"{reference} is a folder, but a sha256 is given for it")
        try:
            actual = sha256_of_file(path)
        except OSError as e:  # no permission, …
            raise SourceError(f"cannot read {reference}: {e.strerror or e}", hint=f"at {path}") from None
        if actual != expected:
            raise HashMismatchError(reference, expected, actual)
    return path


def check_file(root: Root, reference: str) -> str:
    """Check that the file ``reference`` names exists, without fetching it; returns how.

    The same rules as :func:`open_file` (a relative reference stays inside ``root``), but
    nothing is downloaded, extracted or cached: local files and zip members are looked up, URLs
    get a HEAD request (or a GET of the first byte, see
    :func:`~bioimageio_core.sources.http.check_url`). Raises :class:`SourceError` ("file not
    found: …") when it does not exist.
    """
    if is_http_url(reference):
        return check_url(reference)
    _refuse_outside(root, reference)
    if isinstance(root, UrlRoot):
        return check_url(_join_inside(root, reference))
    if isinstance(root, ZipRoot):
        name = member_name(reference)
        names = set(check_zip(root.path))
        if name not in names and name.rstrip("/") + "/" not in names:
            raise SourceError(f"file not found: {reference}", hint=f"looked in {root}")
        return "found in the package"
    _path_inside(root, reference)
    return "found"


def _refuse_outside(root: Root, reference: str) -> None:
    """Raise :class:`SourceError` for a relative reference that could leave ``root``."""
    problem = reference_problem(reference)
    if problem is not None:
        raise _outside(root, reference, problem)


def _join_inside(root: UrlRoot, reference: str) -> str:
    """The URL of a relative reference, which must stay below ``root``."""
    url = root.join(reference)
    if not url.startswith(root.base):
        raise _outside(root, reference, f"resolves to {url}")
    return url


def _path_inside(root: FolderRoot, reference: str) -> Path:
    """The existing local path of ``reference`` in ``root``, not behind a symbolic link that
    leads out of it; raises :class:`SourceError` otherwise."""
    path = root.path / reference
    try:
        exists = path.exists()
        base = root.path.resolve()
        real = path.resolve()
    except OSError as e:  # a name too long, no permission, …
        raise SourceError(f"cannot read {reference}: {e.strerror or e}", hint=f"at {path}") from None
    if not exists:
        raise SourceError(f"file not found: {reference}", hint=f"looked for {path}")
    if real != base and base not in real.parents:
        raise _outside(root, reference, f"is, or passes through, a symbolic link to {real}")
    return path


def _outside(root: Root, reference: str, problem: str) -> SourceError:
    where = {FolderRoot: "folder", ZipRoot: "package", UrlRoot: "URL folder"}[type(root)]
    return SourceError(
        f"file reference {reference!r} {problem}: files outside the description's {where} "
        f"{root} are not allowed",
        hint="reference files inside the model's folder or package by a relative path "
        "('/' between folders), or by an http(s) URL",
    )
