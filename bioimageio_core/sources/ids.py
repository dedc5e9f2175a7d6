"""The built-in source resolvers: bioimage.io ids and DOIs, and ``huggingface/…`` repositories.

Registered through the ``bioimageio_source_resolvers`` hook (a default plugin, see
``plugins.BUILTIN_PLUGINS``), like a third party's. Settings (``BIOIMAGEIO_*``):

* ``bioimage.io`` claims id-like text: ``affable-shark``, ``affable-shark/1.2``,
  ``affable-shark/draft``, ``10.5281/zenodo.6647674``. It asks the collection first
  (``COLLECTION_HTTP_PATTERN`` with ``{bioimageio_id}``, unless empty), then the id map
  (``ID_MAP``), then the draft id map (``ID_MAP_DRAFT``, if ``RESOLVE_DRAFT``); a key in both maps
  resolves to the main map's entry. An id-map entry pins the sha256 of the file.
* ``huggingface`` claims ``huggingface/<user>/<repo>[/<version>]``: the URL from
  ``HUGGINGFACE_HTTP_PATTERN`` with ``repo_id=<user>/<repo>`` and ``branch`` = ``main`` (no or an
  empty version), ``v<version>`` (a version starting with a digit) or the version as written.

Everything is fetched with :func:`bioimageio_core.sources.download`: cached, and offline served
from the cache only.
"""

from __future__ import annotations

import re
import warnings

from bioimageio_core.errors import (
    NetworkError,
    OfflineError,
    SourceError,
    UnresolvedSourceError,
)
from bioimageio_core.hookspecs import (
    ResolvedSource,
    SourceResolverRegister,
    SourceResolverSpec,
    hookimpl,
)
from bioimageio_core.settings import ENV_PREFIX, Settings
from bioimageio_core.sources import idmap
from bioimageio_core.sources.http import download
from bioimageio_core.sources.resolvers import forms_hint
from bioimageio_core.sources.roots import url_file_name

BIOIMAGEIO = "bioimage.io"
HUGGINGFACE = "huggingface"
HUGGINGFACE_PREFIX = "huggingface/"

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_FILE_SUFFIXES = (".yaml", ".yml", ".zip", ".json")
_MAX_SHOWN_PROBLEMS = 3


def looks_like_id(source: str) -> bool:
    """Whether ``source`` could be a bioimage.io id, versioned id or DOI (not a file name).

    One to three ``/``-separated segments of letters, digits and ``._-`` (not starting with
    ``.``), the last not ending in ``.yaml``, ``.yml``, ``.zip`` or ``.json``.
    """
    if source.startswith(HUGGINGFACE_PREFIX):
        return False
    parts = source.split("/")
    if not 1 <= len(parts) <= 3 or not all(_SEGMENT.match(p) for p in parts):
        return False
    return not parts[-1].lower().endswith(_FILE_SUFFIXES)


def _collection_scope(settings: Settings) -> str:
    draft = settings.id_map_draft if settings.resolve_draft else ""
    return "\n".join((settings.collection_http_pattern, settings.id_map, draft))


def _yaml_limit(url: str, settings: Settings) -> int | None:
    return settings.max_yaml_bytes if url_file_name(url).endswith((".yaml", ".yml")) else None


def load_id_map(url: str, settings: Settings) -> idmap.IdMap:
    """The id map at ``url``: kept for the process once fetched; unusable entries warned about."""
    known = idmap.memoised(url)
    if known is not None:
        return known
    local = download(url, max_bytes=idmap.MAX_ID_MAP_BYTES)
    id_map = idmap.read_id_map(local, url)
    if id_map.problems:
        shown = "; ".join(
            f"{key!r}: {why}" for key, why in list(id_map.problems.items())[:_MAX_SHOWN_PROBLEMS]
        )
        more = len(id_map.problems) - _MAX_SHOWN_PROBLEMS
        warnings.warn(
            f"the id map {url} has {len(id_map.problems)} unusable entries, left out ({shown}"
            + (f"; and {more} more" if more > 0 else "")
            + "); the other entries are used",
            stacklevel=2,
        )
    if not settings.offline:  # a map read from the cache offline may be stale: ask again later
        idmap.memoise(id_map)
    return id_map


def resolve_bioimageio_id(source: str, settings: Settings) -> ResolvedSource:
    """Resolve a bioimage.io id, versioned id or DOI (see the module docstring)."""
    unreachable: list[str] = []
    not_cached: list[str] = []  # offline: answers of the collection that the cache lacks
    notes: list[str] = []
    pattern = settings.collection_http_pattern
    if pattern:
        url = pattern.format(bioimageio_id=source)
        try:
            local = download(url, max_bytes=_yaml_limit(url, settings))
        except OfflineError as e:
            not_cached.append(e.missing)
        except NetworkError as e:
            unreachable.append(e.message)
        except SourceError:
            notes.append(f"not served at {url}")
        else:
            return ResolvedSource(url, downloaded=local)

    maps = [settings.id_map]
    if settings.resolve_draft:
        maps.append(settings.id_map_draft)
    loaded: list[idmap.IdMap] = []
    for map_url in filter(None, maps):
        try:
            id_map = load_id_map(map_url, settings)
        except OfflineError as e:
            not_cached.append(e.missing)
            continue
        except NetworkError as e:
            unreachable.append(e.message)
            continue
        except SourceError as e:
            notes.append(e.message)
            continue
        loaded.append(id_map)
        entry = id_map.entries.get(source)
        if entry is not None:
            return ResolvedSource(entry.source, entry.sha256)
        if source in id_map.problems:
            notes.append(f"its entry in {map_url} is unusable: {id_map.problems[source]}")

    if not_cached and not unreachable and not loaded:
        raise OfflineError(
            f"the collection's answers for {source!r} are not in the cache "
            f"({', '.join(not_cached)})",
            missing=not_cached[0],
        )
    unreachable += [f"offline: {url} is not in the cache" for url in not_cached]
    if unreachable:
        also = f" ({'; '.join(notes)})" if notes else ""
        raise NetworkError(
            f"cannot reach the bioimage.io collection to resolve {source!r}: "
            + "; ".join(unreachable)
            + also,
            hint=f"check your connection and {ENV_PREFIX}HTTP_TIMEOUT; offline, ids resolved "
            "before are opened from the cache (--offline)",
        )
    if not pattern and not any(maps):
        raise UnresolvedSourceError(
            f"{source!r} is no file or folder, and bioimage.io ids are not resolved here: "
            f"{ENV_PREFIX}COLLECTION_HTTP_PATTERN and {ENV_PREFIX}ID_MAP are both empty",
            source=source,
            hint=forms_hint(settings),
        )
    known = [key for m in loaded for key in m.entries]
    suggestions = idmap.suggestions(source, known)
    where = " nor ".join(["a file or folder here", *(f"a key of {m.url}" for m in loaded)])
    message = f"{source!r} is neither {where}"
    if notes:
        message += f" ({'; '.join(notes)})"
    if source.endswith("/draft") and not settings.resolve_draft:
        message += f"; draft ids are not looked up ({ENV_PREFIX}RESOLVE_DRAFT=0)"
    if suggestions:
        message += "; did you mean " + ", ".join(repr(s) for s in suggestions) + "?"
    raise UnresolvedSourceError(
        message, source=source, suggestions=suggestions, hint=forms_hint(settings)
    )


def huggingface_branch(version: str) -> str:
    """The branch of a ``huggingface/<user>/<repo>/<version>`` source: ``main`` for no version,
    ``v<version>`` for a version starting with a digit, else the version as written."""
    if not version:
        return "main"
    return f"v{version}" if version[0].isdigit() else version


def resolve_huggingface(source: str, settings: Settings) -> ResolvedSource:
    """Resolve ``huggingface/<user>/<repo>[/<version>]`` to the URL of its description."""
    parts = source.split("/")
    if len(parts) not in (3, 4) or not all(_SEGMENT.match(p) for p in parts[1:3]):
        raise UnresolvedSourceError(
            f"{source!r} is not of the form huggingface/<user>/<repo>[/<version>]",
            source=source,
            hint=forms_hint(settings),
        )
    pattern = settings.huggingface_http_pattern
    if not pattern:
        raise UnresolvedSourceError(
            f"cannot resolve {source!r}: {ENV_PREFIX}HUGGINGFACE_HTTP_PATTERN is empty",
            source=source,
            hint=f"set {ENV_PREFIX}HUGGINGFACE_HTTP_PATTERN, e.g. "
            "https://huggingface.co/{repo_id}/resolve/{branch}/package/bioimageio.yaml",
        )
    version = parts[3] if len(parts) == 4 else ""
    repo_id = f"{parts[1]}/{parts[2]}"
    return ResolvedSource(pattern.format(repo_id=repo_id, branch=huggingface_branch(version)))


BIOIMAGEIO_RESOLVER = SourceResolverSpec(
    name=BIOIMAGEIO,
    claims=looks_like_id,
    resolve=resolve_bioimageio_id,
    forms=(
        "a bioimage.io id: affable-shark (latest version), affable-shark/1.2, "
        "affable-shark/draft, or a DOI listed by the collection (10.5281/zenodo.6647674)",
    ),
    scope=_collection_scope,
    priority=100,
)
HUGGINGFACE_RESOLVER = SourceResolverSpec(
    name=HUGGINGFACE,
    claims=lambda source: source.startswith(HUGGINGFACE_PREFIX),
    resolve=resolve_huggingface,
    forms=("huggingface/<user>/<repo>[/<version>] (a bioimage.io package on Hugging Face)",),
    scope=lambda settings: settings.huggingface_http_pattern,
    priority=40,
)


@hookimpl
def bioimageio_source_resolvers(register: SourceResolverRegister) -> None:
    register.add(HUGGINGFACE_RESOLVER)
    register.add(BIOIMAGEIO_RESOLVER)
