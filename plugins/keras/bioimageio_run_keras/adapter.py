"""Model adapter for Keras weights: ``keras_hdf5`` (``.h5``) and ``keras_v3`` (``.keras``)."""

from __future__ import annotations

import contextlib
import gc
import importlib
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bioimageio_core.plugin import (
    AdapterRequest,
    InputError,
    KerasHdf5WeightsDescr,
    KerasV3WeightsDescr,
    ModelAdapter,
    PluginError,
    match_tensors,
    unloaded_error,
)
from bioimageio_run_keras.backend import (
    activate_backend,
    gpu_count,
    keras_device,
    pending_seed,
    plan_backend,
    version_warning,
)
from bioimageio_run_keras.files import with_suffix
from bioimageio_run_keras.weights import KERAS_V3
from bioimageio_run_keras.worker import KerasWorker

DISTRIBUTION = "bioimageio-run-keras"
"""The distribution of this plugin (install hints default to ``pip install`` of it)."""
KERAS_HDF5 = "keras_hdf5"
KerasWeightsDescr = KerasHdf5WeightsDescr | KerasV3WeightsDescr
"""The weights entries this adapter runs."""
_SUFFIXES = {KERAS_HDF5: (".h5", ".hdf5"), KERAS_V3: (".keras",)}


def match_names(
    model_names: Sequence[str], tensor_ids: Sequence[str], *, what: str, source: str
) -> tuple[int, ...]:
    """For each tensor id (description order), the position of the matching model input/output.

    By name when the model's names are exactly the tensor ids, else by position.
    """
    return match_tensors(
        model_names, tensor_ids, what=what, holder=f"the keras model in {source}", noun="model"
    )


class KerasRunner:
    """A Keras 3 model loaded once (``keras.saving.load_model``, ``compile=False``) in this process.

    Inputs are given to the model as a list in the model's input order; tensors are matched by
    name when the model's input/output names equal the tensor ids, else by position. Used by the
    adapter in its own process and by the worker process (:mod:`bioimageio_run_keras.worker`).
    """

    def __init__(
        self,
        *,
        path: Path,
        backend: str,
        weights_format: str,
        source: str,
        device: str | None,
        input_ids: Sequence[str],
        output_ids: Sequence[str],
        seed: int | None = None,
    ) -> None:
        keras = activate_backend(backend, explicit=True)
        if seed is not None:
            keras.utils.set_random_seed(seed)
        self.backend: str = str(keras.backend.backend())
        self.weights_format = weights_format
        self.source = source
        self.device = device
        self.input_ids = tuple(input_ids)
        self.output_ids = tuple(output_ids)
        if device is not None and device.startswith("gpu:"):
            index = int(device.split(":")[1])
            available = gpu_count(self.backend)
            if index >= available:
                raise PluginError(
                    f"device {device!r} asked for, but Keras backend {self.backend!r} "
                    f"sees {available} GPU(s)",
                    hint="install a GPU build of the backend framework, or run with "
                    "devices=['cpu']",
                )
        try:
            with self._device_scope(keras):
                model = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as e:  # keras raises many kinds of errors for bad files
            raise PluginError(
                f"keras could not load the {weights_format} weights {source}: {e}",
                loc=("weights", weights_format, "source"),
                hint="check that the file was saved with model.save() (Keras 3 reads Keras 2 "
                ".h5 files of standard layers; custom layers are not supported)",
            ) from e
        self._keras: Any = keras
        self._model: Any = model
        in_names = [str(t.name) for t in model.inputs]
        # output tensors get generated names; functional models name outputs by their layers
        out_names = [str(n) for n in getattr(model, "output_names", None) or []] or [
            str(t.name) for t in model.outputs
        ]
        self._input_positions = match_names(in_names, self.input_ids, what="inputs", source=source)
        self._output_positions = match_names(
            out_names, self.output_ids, what="outputs", source=source
        )

    @contextlib.contextmanager
    def _device_scope(self, keras: Any) -> Iterator[None]:
        if self.device is None:
            yield
        else:
            with keras.device(self.device):
                yield

    def forward(
        self, inputs: Sequence[np.ndarray[Any, Any] | None]
    ) -> list[np.ndarray[Any, Any]] | dict[str, np.ndarray[Any, Any]]:
        """Outputs for ``inputs`` (description order): a list in description order when the
        model returns one array per output, the model's dict when it returns named outputs."""
        if self._model is None:
            raise unloaded_error(f"the keras model {self.source}")
        model_inputs: list[np.ndarray[Any, Any]] = [np.empty(0)] * len(inputs)
        for tensor_id, position, array in zip(
            self.input_ids, self._input_positions, inputs, strict=True
        ):
            if array is None:
                raise InputError(f"the keras model {self.source} needs input {tensor_id!r}")
            model_inputs[position] = np.asarray(array)
        batch = model_inputs[0] if len(model_inputs) == 1 else model_inputs
        with self._device_scope(self._keras):
            result = self._model.predict_on_batch(batch)
        if isinstance(result, dict):  # a model built with named (dict) outputs
            if sorted(result) != sorted(self.output_ids):
                raise PluginError(
                    f"the keras model {self.source} returned outputs named {sorted(result)}, "
                    f"but the description declares {list(self.output_ids)}",
                    hint="name the model's outputs like the description's output ids",
                )
            return {tid: np.asarray(result[tid]) for tid in self.output_ids}
        outputs = [
            np.asarray(r) for r in (result if isinstance(result, list | tuple) else [result])
        ]
        if len(outputs) != len(self.output_ids):
            return outputs  # the adapter raises with a clear message
        return [outputs[p] for p in self._output_positions]

    def close(self) -> None:
        """Drop the model and collect it; with the torch backend also empty torch's CUDA cache.

        TensorFlow and JAX keep freed GPU memory in their allocator pools for reuse.
        """
        if self._model is None:
            return
        self._model = None
        gc.collect()
        if self.backend == "torch":
            torch = importlib.import_module("torch")
            if torch.cuda.is_available():
                torch.cuda.empty_cache()


class KerasModelAdapter(ModelAdapter):
    """Runs ``keras_hdf5`` / ``keras_v3`` weights with the Keras backend the weights declare
    (:func:`~bioimageio_run_keras.backend.plan_backend`): in this process, or in a worker
    process when keras was already imported here with another backend."""

    def __init__(self, request: AdapterRequest[KerasWeightsDescr]) -> None:
        super().__init__(request)
        self.weights_format = request.weights_format
        weights = request.weights
        declared = declared_backend(weights)
        active = _active_backend()
        plan = plan_backend(declared, request.settings, active=active)
        for planned in plan.warnings:
            warnings.warn(f"{self.weights_format}: {planned}", stacklevel=3)
        self.source: str = str(weights.source)
        path = request.open_file(self.source, weights.sha256)
        suffixes = _SUFFIXES.get(self.weights_format, (".h5",))
        path = with_suffix(
            path, suffixes, cache=Path(request.settings.cache_path), sha256=weights.sha256
        )
        options: dict[str, Any] = {
            "path": path,
            "backend": plan.name,
            "weights_format": self.weights_format,
            "source": self.source,
            "device": keras_device(request.devices),
            "input_ids": self.input_ids,
            "output_ids": self.output_ids,
            "seed": pending_seed(),
        }
        self.in_worker = plan.in_worker
        self._runner: KerasRunner | KerasWorker | None = (
            KerasWorker(options) if plan.in_worker else KerasRunner(**options)
        )
        self.backend: str = self._runner.backend
        self.device: str | None = options["device"]
        note = version_warning(declared, self.backend)
        if note is not None:
            warnings.warn(f"{self.weights_format}: {note}", stacklevel=3)

    def forward(
        self, inputs: Mapping[str, np.ndarray[Any, Any]]
    ) -> dict[str, np.ndarray[Any, Any]]:
        if self._runner is None:
            raise unloaded_error(f"the keras model {self.source}")
        result = self._runner.forward(self.ordered_inputs(inputs))
        if isinstance(result, dict):
            return result
        return self.outputs_by_id(result)

    def unload(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.close()


def declared_backend(weights: Any) -> tuple[str, str] | None:
    """``(name, version)`` a ``keras_v3`` entry declares (None for entries without ``backend``)."""
    backend = getattr(weights, "backend", None)
    if backend is None:
        return None
    name, version = backend
    return str(name), str(version)


def _active_backend() -> str | None:
    """The backend of keras if it is imported in this process already, else None."""
    keras = sys.modules.get("keras")
    if keras is None:
        return None
    try:
        return str(keras.backend.backend())
    except Exception:  # a partly imported keras
        return None


def create_adapter(request: AdapterRequest[KerasWeightsDescr]) -> KerasModelAdapter:
    """Factory registered for ``keras_hdf5`` and ``keras_v3``."""
    return KerasModelAdapter(request)
