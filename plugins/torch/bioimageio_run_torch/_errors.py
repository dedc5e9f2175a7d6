"""Errors raised by the torch backend: each names the weight format, the file and this distribution."""

from __future__ import annotations

from bioimageio_core.errors import PluginError

DISTRIBUTION = "bioimageio-run-torch"
"""Name of the distribution that provides this backend (``pip install bioimageio-run-torch``)."""


def backend_error(
    weights_format: str,
    file: str | None,
    message: str,
    *,
    loc: str | None = None,
    hint: str | None = None,
) -> PluginError:
    """A :class:`PluginError` whose message says which format, which file and which distribution."""
    where = f" {file!r}" if file else ""
    return PluginError(
        f"{weights_format} weights{where} ({DISTRIBUTION}): {message}", loc=loc, hint=hint
    )
