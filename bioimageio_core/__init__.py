"""bioimageio_core: load, validate, test and run bioimage.io models.

The deep-learning frameworks are never imported here: backends are plugins.
"""

from bioimageio_core._version import __version__
from bioimageio_core.errors import (
    BioimageioError,
    HashMismatchError,
    InputError,
    PluginError,
    SourceError,
    UnsupportedWeightFormatError,
    ValidationError,
)
from bioimageio_core.sample import Sample
from bioimageio_core.settings import Settings, get_settings
from bioimageio_core.tensor import Tensor

__all__ = [
    "BioimageioError",
    "HashMismatchError",
    "InputError",
    "PluginError",
    "Sample",
    "Settings",
    "SourceError",
    "Tensor",
    "UnsupportedWeightFormatError",
    "ValidationError",
    "__version__",
    "get_settings",
]
