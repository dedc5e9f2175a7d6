"""ONNX backend for bioimageio-run: runs the ``onnx`` weight format with onnxruntime.

Importing this package does not import onnxruntime; the framework is imported when an adapter is
created.
"""

from bioimageio_run_onnx.adapter import OnnxModelAdapter, create_adapter
from bioimageio_run_onnx.plugin import DISTRIBUTION
from bioimageio_run_onnx.providers import execution_providers

__version__ = "0.1.0"

__all__ = [
    "DISTRIBUTION",
    "OnnxModelAdapter",
    "__version__",
    "create_adapter",
    "execution_providers",
]
