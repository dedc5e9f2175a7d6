"""bioimage.io id-map documents: ``{key: {"source": URL, "sha256": hex}}``.

Keys are ids (``affable-shark``), versioned ids (``affable-shark/1.2``, ``affable-shark/draft``)
and DOIs (``10.5281/zenodo.6647674``), matched verbatim. Each entry is checked on its own: a bad
entry is left out (with a warning naming the map and the key), the rest of the map stays usable.
A map fetched from its server is kept for the life of the process; a failed fetch or an empty
map is not, so the next lookup asks again.
"""

from __future__ import annotations

import difflib
import json
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from bioimageio_core.errors import SourceError
from bioimageio_core.references import is_http_url

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_ID_MAP_BYTES = 256 * 1024**2
"""Refuse id maps larger than this (the public map is a few MiB)."""


@attrs.frozen
class IdMapEntry:
    """Where one id's description is, and its sha256."""

    source: str
    sha256: str


@attrs.frozen
class IdMap:
    """One parsed id map: its URL, the usable entries and what was wrong with the others."""

    url: str
    entries: Mapping[str, IdMapEntry]
    problems: Mapping[str, str] = attrs.field(factory=dict)
    """Why each left-out entry is unusable, by key."""


def parse_id_map(data: bytes, url: str) -> IdMap:
    """Parse an id-map document; raise :class:`SourceError` only if it is not a JSON object.

    Entries need ``source`` (an http(s) URL) and ``sha256`` (64 hex digits; surrounding space
    and upper case are accepted); other keys are ignored. Bad entries are left out and listed in
    ``problems``.
    """
    try:
        doc: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise SourceError(
            f"the id map {url} is not valid JSON: {e}",
            hint="check the id-map setting (BIOIMAGEIO_ID_MAP / BIOIMAGEIO_ID_MAP_DRAFT)",
        ) from None
    if not isinstance(doc, dict):
        raise SourceError(
            f"the id map {url} must be a JSON object (id -> {{source, sha256}}), "
            f"not a {type(doc).__name__}",
            hint="check the id-map setting (BIOIMAGEIO_ID_MAP / BIOIMAGEIO_ID_MAP_DRAFT)",
        )
    entries: dict[str, IdMapEntry] = {}
    problems: dict[str, str] = {}
    for key, value in doc.items():
        entry = _entry(value)
        if isinstance(entry, str):
            problems[key] = entry
        else:
            entries[key] = entry
    return IdMap(url, entries, problems)


def _entry(value: object) -> IdMapEntry | str:
    """The entry, or why it is unusable."""
    if not isinstance(value, dict):
        return f"must be an object with 'source' and 'sha256', not {type(value).__name__}"
    source = value.get("source")
    sha256 = value.get("sha256")
    if not isinstance(source, str) or not is_http_url(source.strip()):
        return f"'source' must be an http(s) URL (got {source!r})"
    if not isinstance(sha256, str) or not _SHA256.match(sha256.strip().lower()):
        return f"'sha256' must be 64 hexadecimal digits (got {sha256!r})"
    return IdMapEntry(source.strip(), sha256.strip().lower())


def read_id_map(path: Path, url: str) -> IdMap:
    """Parse the id map downloaded from ``url`` to ``path``."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SourceError(f"cannot read the id map {url}: {e.strerror or e}") from None
    return parse_id_map(data, url)


_memo: dict[str, IdMap] = {}
_memo_lock = threading.Lock()


def memoised(url: str) -> IdMap | None:
    """The map fetched from ``url`` earlier in this process, if any."""
    with _memo_lock:
        return _memo.get(url)


def memoise(id_map: IdMap) -> None:
    """Keep a freshly fetched, non-empty map for the rest of the process."""
    if id_map.entries:
        with _memo_lock:
            _memo[id_map.url] = id_map


def forget_id_maps() -> None:
    """Drop the maps kept in this process (the next lookup fetches them again)."""
    with _memo_lock:
        _memo.clear()


def suggestions(key: str, known: Iterable[str], n: int = 3) -> tuple[str, ...]:
    """Up to ``n`` known keys close to ``key`` ("did you mean …"), best first.

    Versions of the same id come first (``lazy-fish/9`` → ``lazy-fish/1.2``), then keys whose
    spelling is close (difflib ratio ≥ 0.6, compared without and with the version part).
    """
    keys = [k for k in dict.fromkeys(known) if k != key]
    base = key.split("/", 1)[0] if not key.startswith("10.") else key
    same_id = sorted(k for k in keys if k.split("/", 1)[0] == base and "/" in k)
    close = difflib.get_close_matches(key, keys, n=n, cutoff=0.6)
    if "/" in key and not key.startswith("10."):
        close += difflib.get_close_matches(base, keys, n=n, cutoff=0.6)
    return tuple(dict.fromkeys([*same_id, *close]))[:n]
