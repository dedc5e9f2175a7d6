"""The ``keras_v3`` weight format: a Keras 3 ``.keras`` file (model format 0.5.8+).

The format defines the entry (:class:`bioimageio_core.spec.KerasV3WeightsDescr`); this plugin
runs it. Re-exported here for code that imported it from this module::

    weights:
      keras_v3:
        source: model.keras
        sha256: 0123…
        keras_version: "3.5.0"
        backend: [torch, "2.13.0"]   # the Keras backend (name, version) the file was saved with
        parent: keras_hdf5           # optional
"""

from __future__ import annotations

from bioimageio_core.plugin import KerasV3WeightsDescr, spec

KERAS_V3 = spec.weights.KERAS_V3

__all__ = ["KERAS_V3", "KerasV3WeightsDescr"]
