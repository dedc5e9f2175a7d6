"""PyTorch backend of bioimageio-run: adapters for ``torchscript`` and ``pytorch_state_dict`` weights.

Importing this package (or its ``plugin`` module, the entry point) never imports torch; torch is
imported when an adapter is created or :func:`enable_determinism` is called.
"""

from bioimageio_run_torch._errors import DISTRIBUTION
from bioimageio_run_torch.determinism import enable_determinism

__version__ = "0.1.0"

__all__ = ["DISTRIBUTION", "__version__", "enable_determinism"]
