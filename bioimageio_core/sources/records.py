"""Records of resolved sources in the cache: what an id resolved to, with the file's sha256.

``<cache>/resolved/<key>/record.json`` per (resolver, scope, source). A record lets the same
source be opened again without the network: a pinned description (the resolver knew its sha256)
is found in the download cache by URL and sha256; an unpinned one (e.g. the latest version served
by the collection) is kept next to the record (``content``). Records are written atomically; an
unreadable record counts as absent.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import attrs

from bioimageio_core.settings import get_settings
from bioimageio_core.sources.cache import atomic_target, cache_dir, cache_key, sha256_of_file

RECORD_FILE = "record.json"
CONTENT_FILE = "content"
_STR = attrs.validators.instance_of(str)


@attrs.frozen
class ResolutionRecord:
    """What ``source`` resolved to: the description's URL and the sha256 of its content."""

    resolver: str = attrs.field(validator=_STR)
    scope: str = attrs.field(validator=_STR)
    source: str = attrs.field(validator=_STR)
    url: str = attrs.field(validator=_STR)
    sha256: str = attrs.field(validator=_STR)
    """sha256 of the file fetched from ``url``."""
    pinned: bool = attrs.field(validator=attrs.validators.instance_of(bool))
    """Whether the resolver gave the sha256 (then the download is pinned to it)."""
    resolved_at: float = attrs.field(validator=attrs.validators.instance_of((int, float)))
    """Seconds since the epoch."""

    @property
    def when(self) -> str:
        """``resolved_at`` as local time, for messages."""
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.resolved_at))


def _folder(resolver: str, scope: str, source: str, *, create: bool) -> Path:
    key = cache_key("resolved", resolver, scope, source)
    if create:
        return cache_dir("resolved", key)
    return get_settings().cache_path / "resolved" / key


def write_record(record: ResolutionRecord, local: Path) -> None:
    """Store ``record`` (replacing an older one for the same resolver, scope and source); keep a
    copy of ``local`` (the file read) with it unless the record is pinned."""
    folder = _folder(record.resolver, record.scope, record.source, create=True)
    if not record.pinned:
        with atomic_target(folder / CONTENT_FILE) as out, local.open("rb") as f:
            shutil.copyfileobj(f, out)
    with atomic_target(folder / RECORD_FILE) as out:
        out.write(json.dumps(attrs.asdict(record), indent=1).encode())


def read_record(resolver: str, scope: str, source: str) -> ResolutionRecord | None:
    """The record for (resolver, scope, source), or None when there is none (or it is unreadable)."""
    path = _folder(resolver, scope, source, create=False) / RECORD_FILE
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        record = ResolutionRecord(**data)
    except (OSError, ValueError, TypeError):
        return None
    if (record.resolver, record.scope, record.source) != (resolver, scope, source):
        return None
    return record


def recorded_content(record: ResolutionRecord) -> Path | None:
    """The copy kept with an unpinned record, if it is there and still has the recorded sha256."""
    path = _folder(record.resolver, record.scope, record.source, create=False) / CONTENT_FILE
    if record.pinned or not path.is_file():
        return None
    return path if sha256_of_file(path) == record.sha256 else None
