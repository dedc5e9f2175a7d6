"""Source strings that are neither paths nor URLs (ids, DOIs, ``huggingface/…``): the resolvers.

Resolvers are registered through the ``bioimageio_source_resolvers`` plugin hook (the built-in
ones in :mod:`bioimageio_core.sources.ids` too). :func:`resolve_source` asks those that claim a
source, in priority order, and falls back to the record of an earlier resolution in the cache
when a server cannot be reached (or, offline, uses the record first). :func:`finish_resolution`
records what was read, so the same source opens again without the network.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import attrs

from bioimageio_core.errors import (
    BioimageioError,
    NetworkError,
    OfflineError,
    SourceError,
    UnresolvedSourceError,
)
from bioimageio_core.hookspecs import ResolvedSource, SourceResolverSpec
from bioimageio_core.plugins import source_resolvers
from bioimageio_core.references import is_http_url
from bioimageio_core.settings import Settings, get_settings
from bioimageio_core.sources.cache import sha256_of_file
from bioimageio_core.sources.records import (
    ResolutionRecord,
    read_record,
    recorded_content,
    write_record,
)

LOCAL_FORMS = (
    "a path to rdf.yaml, bioimageio.yaml or *.bioimageio.yaml, or a folder holding one",
    "a .zip package",
    "an http(s) URL to any of these",
)
"""The source forms the core reads without a resolver."""


@attrs.frozen
class Resolution:
    """How a source string was resolved (kept on the :class:`RawDescription` read from it)."""

    source: str
    """The string the user gave (e.g. ``affable-shark/1.2``)."""
    resolver: str
    url: str
    """URL (or local path) of the description file or package that was read."""
    sha256: str | None = None
    """sha256 of that file (None for a local path)."""
    recorded_at: float | None = None
    """When the record used was written, if the cache record stood in for the resolver."""
    notes: tuple[str, ...] = ()
    """What a user should know (e.g. that a cached resolution was used); also warned."""


@attrs.frozen
class PendingResolution:
    """A resolver's answer, before the description is read (see :func:`finish_resolution`)."""

    source: str
    spec: SourceResolverSpec
    scope: str
    target: ResolvedSource
    record: ResolutionRecord | None = None
    """The record used instead of asking the resolver (offline, or its server unreachable)."""
    notes: tuple[str, ...] = ()


def accepted_forms(settings: Settings | None = None) -> tuple[str, ...]:
    """Every source form accepted here: local forms, then each resolver's ``forms``."""
    forms = list(LOCAL_FORMS)
    for spec in source_resolvers(settings).values():
        forms.extend(spec.forms)
    return tuple(dict.fromkeys(forms))


def forms_hint(settings: Settings | None = None) -> str:
    """A hint listing the accepted source forms."""
    return "accepted sources: " + "; ".join(accepted_forms(settings))


def claiming_resolvers(source: str, settings: Settings | None = None) -> list[SourceResolverSpec]:
    """The resolvers that claim ``source``, in the order they are asked."""
    claiming = []
    for spec in source_resolvers(settings).values():
        try:
            claimed = spec.claims(source)
        except Exception as e:  # a broken third-party check must not hide the others
            warnings.warn(
                f"source resolver {spec.name!r} failed to check {source!r}: {e}", stacklevel=2
            )
            continue
        if claimed:
            claiming.append(spec)
    return claiming


def resolve_source(source: str, settings: Settings | None = None) -> PendingResolution | None:
    """Ask the resolvers that claim ``source``; None when none claims it.

    The first answer wins; a resolver that fails passes ``source`` on to the next. A resolver
    that cannot reach its server (``NetworkError``), and every resolver offline, is replaced by
    the record of the last resolution of ``source`` when the cache holds one. Raises the
    resolver's :class:`SourceError` (e.g. an :class:`UnresolvedSourceError` with suggestions), or
    one listing every resolver's error, when none succeeds.
    """
    settings = settings or get_settings()
    specs = claiming_resolvers(source, settings)
    if not specs:
        return None
    failures: list[SourceError] = []
    for spec in specs:
        try:
            return _resolve_with(spec, source, settings)
        except SourceError as e:
            failures.append(e)
    if len(failures) == 1:
        raise failures[0]
    unresolved = [e for e in failures if isinstance(e, UnresolvedSourceError)]
    suggestions = tuple(dict.fromkeys(s for e in unresolved for s in e.suggestions))
    raise UnresolvedSourceError(
        f"no resolver could resolve {source!r}:\n    "
        + "\n    ".join(f"{spec.name}: {e.message}" for spec, e in zip(specs, failures, strict=True)),
        source=source,
        suggestions=suggestions,
        hint=next((e.hint for e in failures if e.hint), None) or forms_hint(settings),
    )


def _resolve_with(spec: SourceResolverSpec, source: str, settings: Settings) -> PendingResolution:
    scope = spec.scope(settings)
    record = read_record(spec.name, scope, source)
    if settings.offline and record is not None:
        return _from_record(spec, source, scope, record, ())
    try:
        target = spec.resolve(source, settings)
    except NetworkError as e:
        if record is None:
            raise _no_record(spec, source, e, settings) from None
        note = (
            f"{e.message}; using what {source!r} resolved to on {record.when} "
            f"({record.url})"
        )
        return _from_record(spec, source, scope, record, () if settings.offline else (note,))
    except BioimageioError:
        raise
    except Exception as e:  # a broken resolver: say which one
        raise SourceError(
            f"source resolver {spec.name!r} failed on {source!r}: {type(e).__name__}: {e}",
            hint=f"report this to the plugin providing {spec.name!r}, or disable it with "
            "BIOIMAGEIO_DISABLE_PLUGINS",
        ) from e
    if not isinstance(target, ResolvedSource):
        raise SourceError(
            f"source resolver {spec.name!r} returned {type(target).__name__} for {source!r}, "
            "not a ResolvedSource"
        )
    return PendingResolution(source, spec, scope, target)


def _from_record(
    spec: SourceResolverSpec,
    source: str,
    scope: str,
    record: ResolutionRecord,
    notes: tuple[str, ...],
) -> PendingResolution:
    if record.pinned:
        target = ResolvedSource(record.url, record.sha256)
    else:
        content = recorded_content(record)
        if content is None:
            raise OfflineError(
                f"cannot open {source!r} without the network: the copy of {record.url} kept "
                "when it was resolved is missing or changed",
                missing=record.url,
            )
        target = ResolvedSource(record.url, record.sha256, downloaded=content)
    return PendingResolution(source, spec, scope, target, record, notes)


def _no_record(
    spec: SourceResolverSpec, source: str, error: NetworkError, settings: Settings
) -> NetworkError:
    if isinstance(error, OfflineError) or settings.offline:
        return OfflineError(
            f"offline: cannot resolve {source!r}: no earlier resolution is recorded (in "
            f"{settings.cache_path / 'resolved'}), and {error.message}",
            missing=getattr(error, "missing", source),
            hint=f"run once without --offline (BIOIMAGEIO_OFFLINE=0) with the same "
            f"BIOIMAGEIO_CACHE_PATH, e.g. `bioimageio-run validate {source}`",
        )
    return NetworkError(
        f"{error.message}; {source!r} was not resolved on this machine before, so no cached "
        "resolution can stand in",
        hint=error.hint,
    )


def finish_resolution(pending: PendingResolution, local: Path | None) -> Resolution:
    """Record what ``pending`` resolved to (``local``: the file read; None for a local path).

    Warns with the notes of the resolution (e.g. that a cached record stood in for the server).
    """
    digest = sha256_of_file(local) if local is not None else None
    url = pending.target.url
    record = pending.record
    if record is None and local is not None and digest is not None and is_http_url(url):
        write_record(
            ResolutionRecord(
                resolver=pending.spec.name,
                scope=pending.scope,
                source=pending.source,
                url=url,
                sha256=digest,
                pinned=pending.target.sha256 is not None,
                resolved_at=time.time(),
            ),
            local,
        )
    for note in pending.notes:
        warnings.warn(note, stacklevel=3)
    return Resolution(
        source=pending.source,
        resolver=pending.spec.name,
        url=url,
        sha256=digest,
        recorded_at=record.resolved_at if record is not None else None,
        notes=pending.notes,
    )
