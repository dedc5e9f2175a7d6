"""Keras 3 backend for bioimageio-run: ``keras_hdf5`` and the Keras 3 ``.keras`` format.

Importing this package does not import keras; keras is imported (with the backend from
``KERAS_BACKEND`` / ``Settings.keras_backend``) when an adapter is created.
"""

from bioimageio_run_keras.adapter import DISTRIBUTION, KerasModelAdapter, create_adapter
from bioimageio_run_keras.weights import KERAS_V3, KerasV3WeightsDescr

__version__ = "0.1.0"

__all__ = [
    "DISTRIBUTION",
    "KERAS_V3",
    "KerasModelAdapter",
    "KerasV3WeightsDescr",
    "__version__",
    "create_adapter",
]
