"""TensorFlow backend for bioimageio-run: the ``tensorflow_saved_model_bundle`` weight format.

Importing this package does not import tensorflow; it is imported when an adapter is created.
"""

from bioimageio_run_tensorflow.adapter import TensorflowModelAdapter, create_adapter
from bioimageio_run_tensorflow.plugin import DISTRIBUTION

__version__ = "0.1.0"

__all__ = ["DISTRIBUTION", "TensorflowModelAdapter", "__version__", "create_adapter"]
