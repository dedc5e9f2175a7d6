"""Weight converters of the keras plugin (used by ``bioimageio-run add-weights``).

* ``keras_hdf5`` → ``keras_v3``: the ``.h5`` model loaded with Keras 3 and saved as a ``.keras``
  file, in this process with the active Keras backend.
* ``keras_hdf5`` / ``keras_v3`` → ``tensorflow_saved_model_bundle``:
  ``model.export(folder, format="tf_saved_model")``, zipped. Keras exports SavedModels only from
  its TensorFlow backend, and a process keeps the backend of its first ``import keras``, so the
  export runs in a separate Python process with ``KERAS_BACKEND=tensorflow``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bioimageio_core.plugin import ConverterSpec, PluginError, missing_module
from bioimageio_run_keras.adapter import DISTRIBUTION, KERAS_HDF5
from bioimageio_run_keras.weights import KERAS_V3, KerasV3WeightsDescr

if TYPE_CHECKING:
    from bioimageio_core.plugin import ModelDescr, TensorflowSavedModelBundleWeightsDescr

SAVED_MODEL = "tensorflow_saved_model_bundle"
_SUFFIXES = {KERAS_HDF5: (".h5", ".hdf5"), KERAS_V3: (".keras",)}
DEFAULT_EXPORT_TIMEOUT_S = 600
_VERSION_PREFIX = "TENSORFLOW_VERSION="
_EXPORT_SCRIPT = f"""
import sys

import keras
import tensorflow as tf

model = keras.saving.load_model(sys.argv[1], compile=False, safe_mode=True)
model.export(sys.argv[2], format="tf_saved_model")
print("{_VERSION_PREFIX}" + tf.__version__)
"""


def _keras_unavailable() -> str | None:
    from bioimageio_run_keras.plugin import keras_unavailable

    return keras_unavailable()


def saved_model_export_unavailable() -> str | None:
    """None when keras 3 and tensorflow (the export backend) are installed (imports nothing)."""
    reason = _keras_unavailable()
    if reason is not None:
        return reason
    return missing_module("tensorflow", why="Keras exports SavedModels with its TensorFlow backend")


def converter_specs() -> tuple[ConverterSpec, ...]:
    """The conversions this plugin provides."""
    tf_hint = f"pip install {DISTRIBUTION} tensorflow"
    return (
        ConverterSpec(KERAS_HDF5, KERAS_V3, convert_to_keras_v3, _keras_unavailable),
        ConverterSpec(
            KERAS_HDF5, SAVED_MODEL, convert_to_saved_model, saved_model_export_unavailable, tf_hint
        ),
        ConverterSpec(
            KERAS_V3, SAVED_MODEL, convert_to_saved_model, saved_model_export_unavailable, tf_hint
        ),
    )


def convert_to_keras_v3(
    model: ModelDescr, source_format: str, output_path: Path, options: Mapping[str, Any]
) -> KerasV3WeightsDescr:
    """Load ``keras_hdf5`` weights with Keras 3 and save them as a ``.keras`` file."""
    from bioimageio_core.plugin import get_settings
    from bioimageio_run_keras.backend import activate_backend, backend_entry, requested_backend

    _expect(source_format, (KERAS_HDF5,), KERAS_V3)
    name, explicit = requested_backend(get_settings())
    keras = activate_backend(name, explicit=explicit)
    path = weights_file(model, source_format)
    try:
        network = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # keras raises many kinds of errors for files it cannot read
        raise PluginError(
            f"keras could not load the {source_format} weights: {type(e).__name__}: {e}",
            loc=("weights", source_format, "source"),
        ) from e
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "model.keras"  # keras insists on the suffix
        network.save(staged)
        shutil.move(str(staged), output_path)
    version = str(keras.__version__)
    backend, backend_version = backend_entry(keras)
    return KerasV3WeightsDescr(
        source=output_path.name,
        parent=source_format,
        keras_version=version,
        backend=(backend, backend_version),  # type: ignore[arg-type]
        comment=f"converted from {source_format} with keras {version} "
        f"(backend {backend} {backend_version}, {DISTRIBUTION})",
    )


def convert_to_saved_model(
    model: ModelDescr, source_format: str, output_path: Path, options: Mapping[str, Any]
) -> TensorflowSavedModelBundleWeightsDescr:
    """Export Keras weights as a zipped TensorFlow SavedModel (in a separate process)."""
    from bioimageio_core.plugin import TensorflowSavedModelBundleWeightsDescr

    _expect(source_format, (KERAS_HDF5, KERAS_V3), SAVED_MODEL)
    path = weights_file(model, source_format)
    timeout = float(options.get("timeout_s", DEFAULT_EXPORT_TIMEOUT_S))
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "saved_model"
        try:
            result = subprocess.run(
                [sys.executable, "-c", _EXPORT_SCRIPT, str(path), str(folder)],
                capture_output=True,
                text=True,
                env=env,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise PluginError(
                f"the SavedModel export did not finish within {timeout:.0f} s",
                hint="give more time with the converter option timeout_s",
            ) from e
        versions = [
            line[len(_VERSION_PREFIX) :].strip()
            for line in result.stdout.splitlines()
            if line.startswith(_VERSION_PREFIX)
        ]
        if result.returncode != 0 or not versions or not folder.is_dir():
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
            raise PluginError(
                f"exporting the {source_format} weights as a SavedModel failed "
                f"(exit code {result.returncode}):\n{tail}",
                loc=("weights", source_format, "source"),
            )
        zip_folder(folder, output_path)
    tf_version = versions[-1].split("+")[0]
    return TensorflowSavedModelBundleWeightsDescr(
        source=output_path.name,
        parent=source_format,
        tensorflow_version=tf_version,
        comment=f"converted from {source_format} with keras model.export "
        f"(TensorFlow {tf_version}, {DISTRIBUTION})",
    )


def weights_file(model: ModelDescr, weights_format: str) -> Path:
    """A local path of the weights file with the suffix Keras dispatches on."""
    from bioimageio_core.plugin import get_settings, model_file
    from bioimageio_run_keras.files import with_suffix

    entry = model.weights[weights_format]
    path = model_file(model, entry.source, entry.sha256)
    return with_suffix(
        path,
        _SUFFIXES[weights_format],
        cache=Path(get_settings().cache_path),
        sha256=entry.sha256,
    )


def zip_folder(folder: Path, output_path: Path) -> None:
    """Zip the contents of ``folder`` (members relative to it) into ``output_path``."""
    with zipfile.ZipFile(output_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(folder).as_posix())


def _expect(source_format: str, sources: tuple[str, ...], target: str) -> None:
    if source_format not in sources:
        raise PluginError(
            f"{DISTRIBUTION} converts {', '.join(sources)} to {target}, not {source_format}"
        )
