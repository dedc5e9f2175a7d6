"""bioimageio_core: load, validate, test and run bioimage.io models.

The deep-learning frameworks are never imported here: backends are plugins.
"""

import importlib
from typing import TYPE_CHECKING, Any

from bioimageio_core._version import __version__
from bioimageio_core.errors import (
    BioimageioError,
    HashMismatchError,
    InputError,
    NetworkError,
    OfflineError,
    PluginError,
    ServerError,
    SettingsError,
    SourceError,
    UnresolvedSourceError,
    UnsupportedWeightFormatError,
    ValidationError,
)
from bioimageio_core.settings import Settings, get_settings

if TYPE_CHECKING:
    from bioimageio_core.adapter_loading import create_model_adapter
    from bioimageio_core.conversion import add_weights
    from bioimageio_core.io import load_tensor, save_tensor
    from bioimageio_core.loading import (
        dump_description,
        load_dataset_description,
        load_description,
        load_description_and_validate_format_only,
        load_model_description,
        save_bioimageio_yaml_only,
        validate_format,
    )
    from bioimageio_core.loading import load_description as load_resource
    from bioimageio_core.loading import load_model_description as load_model
    from bioimageio_core.packaging import (
        save_bioimageio_package,
        save_bioimageio_package_as_folder,
        update_hashes,
    )
    from bioimageio_core.pipeline import PredictionPipeline, create_prediction_pipeline
    from bioimageio_core.prediction import predict, predict_many
    from bioimageio_core.sample import Sample
    from bioimageio_core.stats import compute_dataset_measures
    from bioimageio_core.summary import ValidationSummary
    from bioimageio_core.tensor import Tensor
    from bioimageio_core.testing import (
        enable_determinism,
        test_description,
        test_model,
        test_resource,
    )

# imported on first use (PEP 562) so that `import bioimageio_core` and the CLI start fast
_LAZY = {
    "dump_description": "bioimageio_core.loading",
    "load_description": "bioimageio_core.loading",
    "load_model_description": "bioimageio_core.loading",
    "load_dataset_description": "bioimageio_core.loading",
    "load_description_and_validate_format_only": "bioimageio_core.loading",
    "save_bioimageio_yaml_only": "bioimageio_core.loading",
    "validate_format": "bioimageio_core.loading",
    "ValidationSummary": "bioimageio_core.summary",
    "add_weights": "bioimageio_core.conversion",
    "save_bioimageio_package": "bioimageio_core.packaging",
    "save_bioimageio_package_as_folder": "bioimageio_core.packaging",
    "update_hashes": "bioimageio_core.packaging",
    "Tensor": "bioimageio_core.tensor",
    "Sample": "bioimageio_core.sample",
    "compute_dataset_measures": "bioimageio_core.stats",
    "load_tensor": "bioimageio_core.io",
    "save_tensor": "bioimageio_core.io",
    "PredictionPipeline": "bioimageio_core.pipeline",
    "create_prediction_pipeline": "bioimageio_core.pipeline",
    "create_model_adapter": "bioimageio_core.adapter_loading",
    "predict": "bioimageio_core.prediction",
    "predict_many": "bioimageio_core.prediction",
    "enable_determinism": "bioimageio_core.testing",
    "test_description": "bioimageio_core.testing",
    "test_model": "bioimageio_core.testing",
    "test_resource": "bioimageio_core.testing",
}
_ALIASES = {"load_model": "load_model_description", "load_resource": "load_description"}
"""bioimageio.core's other names."""


def __getattr__(name: str) -> Any:
    target = _ALIASES.get(name, name)
    module = _LAZY.get(target)
    if module is None:
        raise AttributeError(f"module 'bioimageio_core' has no attribute {name!r}")

    value = getattr(importlib.import_module(module), target)
    globals()[name] = value
    return value


__all__ = [
    "BioimageioError",
    "HashMismatchError",
    "InputError",
    "NetworkError",
    "OfflineError",
    "PluginError",
    "Sample",
    "Settings",
    "ServerError",
    "SettingsError",
    "SourceError",
    "Tensor",
    "UnresolvedSourceError",
    "UnsupportedWeightFormatError",
    "ValidationError",
    "ValidationSummary",
    "__version__",
    "add_weights",
    "compute_dataset_measures",
    "dump_description",
    "get_settings",
    "load_tensor",
    "save_tensor",
    "load_dataset_description",
    "load_description",
    "load_description_and_validate_format_only",
    "load_model",
    "load_model_description",
    "load_resource",
    "save_bioimageio_package",
    "save_bioimageio_package_as_folder",
    "save_bioimageio_yaml_only",
    "update_hashes",
    "validate_format",
    "PredictionPipeline",
    "create_model_adapter",
    "create_prediction_pipeline",
    "predict",
    "predict_many",
    "enable_determinism",
    "test_description",
    "test_model",
    "test_resource",
]
