"""The ``keras_v3`` weight format: a Keras 3 ``.keras`` file (not part of the bioimage.io spec).

This plugin defines the format itself: :class:`KerasV3WeightsDescr` parses a ``weights: keras_v3:``
entry, so descriptions carrying such weights validate and run once this plugin is installed::

    weights:
      keras_v3:
        source: model.keras
        sha256: 0123…
        keras_version: "3.5.0"
        parent: keras_hdf5   # optional
"""

from __future__ import annotations

import attrs

from bioimageio_core.spec import WeightsEntryDescrBase

KERAS_V3 = "keras_v3"


@attrs.frozen(kw_only=True)
class KerasV3WeightsDescr(WeightsEntryDescrBase):
    """A ``weights: keras_v3:`` entry: a model saved with ``model.save("….keras")`` (Keras 3).

    Fields: ``source`` (the ``.keras`` file, relative path or URL), ``sha256``, ``authors``,
    ``comment``, ``parent`` (the format these weights were converted from) and ``keras_version``.
    """

    # "version" kind: the spec's converter accepts a number here too, with a warning to quote it
    keras_version: str | None = attrs.field(default=None, metadata={"bioimageio_kind": "version"})
    """Keras version the file was saved with, e.g. ``"3.5.0"``."""

    def __attrs_post_init__(self) -> None:
        name = self.source.split("?", 1)[0].split("#", 1)[0]
        if not name.lower().endswith(".keras"):
            raise ValueError(f"'source' must be a Keras 3 '.keras' file (got {self.source!r})")
        if self.parent == KERAS_V3:
            raise ValueError("'parent' must name another weight format, not keras_v3 itself")
