"""Errors raised by the torch backend: each names the weight format, the file and this distribution."""

from __future__ import annotations

from bioimageio_core.plugin import (
    BioimageioError,
    HashMismatchError,
    Loc,
    PluginError,
    loc_to_path,
)

DISTRIBUTION = "bioimageio-run-torch"
"""Name of the distribution that provides this backend (``pip install bioimageio-run-torch``)."""


def backend_error(
    weights_format: str,
    file: str | None,
    message: str,
    *,
    loc: Loc | str | None = None,
    hint: str | None = None,
) -> PluginError:
    """A :class:`PluginError` whose message says which format, which file and which distribution."""
    where = f" {file!r}" if file else ""
    return PluginError(
        f"{weights_format} weights{where} ({DISTRIBUTION}): {message}", loc=loc, hint=hint
    )


def locate(error: BioimageioError, field_loc: Loc) -> BioimageioError:
    """Give an error from ``open_file`` the field it concerns (``…sha256`` for a hash mismatch,
    else ``…source``) unless it already names one; returns the same error for ``raise``."""
    if error.loc is None:
        suffix = "sha256" if isinstance(error, HashMismatchError) else "source"
        error.loc = loc_to_path((*field_loc, suffix))
    return error
