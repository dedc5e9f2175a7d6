"""Exceptions raised by bioimageio_core.

Every error carries enough data for a user to act on it: what went wrong, where (a field path such
as ``$.inputs[0].axes[2].size`` or a file name) and, where we know one, a hint on how to fix it.

A field path is built as a :data:`Loc` and written as text by :func:`loc_to_path` only: one
notation in every message, issue and summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bioimageio_core.summary import ValidationSummary

Loc = tuple[str | int, ...]
"""The path of a field in a description: ``("inputs", 0, "axes", 2, "size")``."""


def loc_to_path(loc: Sequence[str | int]) -> str:
    """A location as text: ``("inputs", 0, "axes") -> $.inputs[0].axes``."""
    return "$" + "".join(f"[{item}]" if isinstance(item, int) else f".{item}" for item in loc)


class BioimageioError(Exception):
    """Base class of all errors raised by bioimageio_core.

    ``loc`` says where: a :data:`Loc` (kept as its :func:`loc_to_path` text), or a text that is
    no field of a description (a file name, ``"step 0 of 'raw'"``) or was written by
    :func:`loc_to_path` before (an error raised again keeps its ``loc``).
    """

    def __init__(
        self, message: str, *, loc: Loc | str | None = None, hint: str | None = None
    ) -> None:
        self.message = message
        self.loc: str | None = loc_to_path(loc) if isinstance(loc, tuple) else loc
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = self.message
        if self.loc:
            text = f"{text} (at {self.loc})"
        if self.hint:
            text = f"{text}\n  hint: {self.hint}"
        return text


class ValidationError(BioimageioError, ValueError):
    """A resource description is invalid; ``summary`` holds every error and warning found."""

    def __init__(self, summary: ValidationSummary, message: str | None = None) -> None:
        self.summary = summary
        first = message or summary.first_error_text()
        super().__init__(first, hint="run `bioimageio-run validate SOURCE` for the full report")


class SourceError(BioimageioError, OSError):
    """A source (file, folder, zip, URL) could not be read or resolved."""


class HashMismatchError(SourceError):
    """A file's sha256 differs from the one the description pins."""

    def __init__(
        self, name: str, expected: str, actual: str, *, loc: Loc | str | None = None
    ) -> None:
        self.name = name
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"sha256 mismatch for {name}: expected {expected}, got {actual}",
            loc=loc,
            hint="the file changed or is corrupt; fetch it again or run `bioimageio-run "
            "update-hashes` if the change is intended",
        )


class NetworkError(SourceError):
    """A server could not be reached (no connection, timeout), or offline mode forbids asking it."""


class OfflineError(NetworkError):
    """Offline mode (``BIOIMAGEIO_OFFLINE=1`` / ``--offline``) needs something the cache lacks."""

    def __init__(self, message: str, *, missing: str, hint: str | None = None) -> None:
        self.missing = missing
        super().__init__(
            message,
            hint=hint
            or "run the same command once without --offline (and with the same "
            "BIOIMAGEIO_CACHE_PATH) so that it is cached",
        )


class UnresolvedSourceError(SourceError):
    """A source string is neither a local file nor anything a resolver knows (e.g. an unknown id).

    ``suggestions`` holds close known ids ("did you mean …"), best first.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str,
        suggestions: tuple[str, ...] = (),
        hint: str | None = None,
    ) -> None:
        self.source = source
        self.suggestions = suggestions
        super().__init__(message, hint=hint)


class PluginError(BioimageioError):
    """A plugin is broken, missing, or registered something twice."""


class UnsupportedWeightFormatError(PluginError):
    """No installed plugin can run any weight format a model provides."""


class InputError(BioimageioError, ValueError):
    """Input data given for prediction does not fit the model."""


class SettingsError(BioimageioError, ValueError):
    """A ``BIOIMAGEIO_*`` environment variable (or a ``Settings`` value) is malformed."""


class CodeRefusedError(BioimageioError):
    """Code that a description brings (an architecture, a graph with side effects, …) is not run.

    Raised directly for code that never runs (a callable of the Python standard library); see
    :class:`RemoteCodeError` for code that runs once the user allows it.
    """


class RemoteCodeError(CodeRefusedError):
    """Code from a fetched description is not run without the user's consent.

    ``what`` is the code that would run, ``where`` where it came from; the hint says how to allow
    it (``BIOIMAGEIO_ALLOW_REMOTE_CODE=1`` / ``--allow-remote-code``).
    """

    def __init__(self, what: str, where: str, *, loc: Loc | str | None = None) -> None:
        self.what = what
        self.where = where
        super().__init__(
            f"refusing to run {what} from {where}: it was fetched from a remote source, and "
            "running it executes code with your permissions",
            loc=loc,
            hint="if you trust the model's authors, allow code from remote sources with the "
            "command line flag --allow-remote-code or the environment variable "
            "BIOIMAGEIO_ALLOW_REMOTE_CODE=1 (also read by the Python API); or download the "
            "model, read its code, and run it from the local copy",
        )


class ServerError(BioimageioError):
    """A prediction server (``bioimageio-run serve``) cannot be reached, refused a request, or
    answered something other than the wire format; ``status`` is the HTTP status (None when no
    answer came)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        loc: Loc | str | None = None,
        hint: str | None = None,
    ) -> None:
        self.status = status
        super().__init__(message, loc=loc, hint=hint)


class OutputError(BioimageioError, OSError):
    """An output could not be written (disk full, file size limit, no permission …).

    The incomplete data is removed before this is raised; an existing file at the output path is
    left as it was.
    """


class OutputExistsError(OutputError, FileExistsError):
    """An output exists already and replacing it was not asked for (``--overwrite``)."""


class IncompleteOutputError(SourceError):
    """A file or store was read that bioimageio-run had not finished writing (an interrupted run)."""
