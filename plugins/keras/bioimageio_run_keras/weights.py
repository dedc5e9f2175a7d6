"""The ``keras_v3`` weight format: a Keras 3 ``.keras`` file (not part of the bioimage.io spec).

This plugin defines the format itself: ``KerasV3WeightsDescr`` parses a ``weights: keras_v3:``
entry, so descriptions carrying such weights validate and run once this plugin is installed::

    weights:
      keras_v3:
        source: model.keras
        sha256: 0123…
        keras_version: "3.5.0"
        parent: keras_hdf5   # optional
"""

from __future__ import annotations

import re
from typing import Any

import attrs

KERAS_V3 = "keras_v3"

_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def _check_source(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.strip():
        raise ValueError("'source' must name the .keras file (got an empty string)")
    if not value.split("?", 1)[0].lower().endswith(".keras"):
        raise ValueError(f"'source' must be a Keras 3 '.keras' file (got {value!r})")


def _check_sha256(instance: Any, attribute: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and not _SHA256.fullmatch(value):
        raise ValueError(f"'sha256' must be 64 hexadecimal digits (got {value!r})")


def _check_parent(instance: Any, attribute: attrs.Attribute[str | None], value: str | None) -> None:
    if value == KERAS_V3:
        raise ValueError("'parent' must name another weight format, not keras_v3 itself")


@attrs.frozen(kw_only=True)
class KerasV3WeightsDescr:
    """A ``weights: keras_v3:`` entry: a model saved with ``model.save("….keras")`` (Keras 3)."""

    source: str = attrs.field(validator=_check_source)
    """The ``.keras`` file (relative path or URL)."""
    sha256: str | None = attrs.field(default=None, validator=_check_sha256)
    authors: tuple[Any, ...] | None = None
    """Who converted or trained these weights (same fields as the description's authors)."""
    comment: str = ""
    parent: str | None = attrs.field(default=None, validator=_check_parent)
    """The weight format these weights were converted from, if any."""
    keras_version: str | None = None
    """Keras version the file was saved with, e.g. ``"3.5.0"``."""
