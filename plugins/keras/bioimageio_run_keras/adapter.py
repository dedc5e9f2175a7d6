"""Model adapter for Keras weights: ``keras_hdf5`` (``.h5``) and ``keras_v3`` (``.keras``)."""

from __future__ import annotations

import contextlib
import gc
import importlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bioimageio_core.adapters import AdapterRequest, ModelAdapter
from bioimageio_core.backend_utils import match_tensors
from bioimageio_core.errors import InputError, PluginError
from bioimageio_run_keras.backend import (
    activate_backend,
    gpu_count,
    keras_device,
    requested_backend,
)
from bioimageio_run_keras.files import with_suffix
from bioimageio_run_keras.weights import KERAS_V3

DISTRIBUTION = "bioimageio-run-keras"
KERAS_HDF5 = "keras_hdf5"
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


class KerasModelAdapter(ModelAdapter):
    """Runs a Keras 3 model loaded once (``keras.saving.load_model``, ``compile=False``).

    Inputs are given to the model as a list in the model's input order; tensors are matched by
    name when the model's input/output names equal the tensor ids, else by position.
    """

    def __init__(self, request: AdapterRequest) -> None:
        super().__init__(request)
        self.weights_format = request.weights_format
        name, explicit = requested_backend(request.settings)
        keras = activate_backend(name, explicit=explicit)
        self.backend: str = str(keras.backend.backend())
        self.device: str | None = keras_device(request.devices)
        if self.device is not None and self.device.startswith("gpu:"):
            index = int(self.device.split(":")[1])
            available = gpu_count(self.backend)
            if index >= available:
                raise PluginError(
                    f"device {self.device!r} asked for, but Keras backend {self.backend!r} "
                    f"sees {available} GPU(s)",
                    hint="install a GPU build of the backend framework, or run with "
                    "devices=['cpu']",
                )

        weights = request.weights
        self.source: str = str(weights.source)
        path = request.open_file(self.source, weights.sha256)
        suffixes = _SUFFIXES.get(self.weights_format, (".h5",))
        path = with_suffix(
            path, suffixes, cache=Path(request.settings.cache_path), sha256=weights.sha256
        )
        try:
            with self._device_scope(keras):
                model = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as e:  # keras raises many kinds of errors for bad files
            raise PluginError(
                f"keras could not load the {self.weights_format} weights {self.source}: {e}",
                loc=f"weights.{self.weights_format}.source",
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
        self._input_positions = match_names(
            in_names, self.input_ids, what="inputs", source=self.source
        )
        self._output_positions = match_names(
            out_names, self.output_ids, what="outputs", source=self.source
        )

    @contextlib.contextmanager
    def _device_scope(self, keras: Any) -> Iterator[None]:
        if self.device is None:
            yield
        else:
            with keras.device(self.device):
                yield

    def forward(
        self, inputs: Mapping[str, np.ndarray[Any, Any]]
    ) -> dict[str, np.ndarray[Any, Any]]:
        if self._model is None:
            raise PluginError(
                f"the keras model {self.source} was unloaded", hint="create a new adapter"
            )
        ordered = self._ordered_inputs(inputs)
        model_inputs: list[np.ndarray[Any, Any]] = [np.empty(0)] * len(ordered)
        for tensor_id, position, array in zip(
            self.input_ids, self._input_positions, ordered, strict=True
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
            return self._outputs_by_id(outputs)  # raises with a clear message
        return self._outputs_by_id([outputs[p] for p in self._output_positions])

    def unload(self) -> None:
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


def create_adapter(request: AdapterRequest) -> KerasModelAdapter:
    """Factory registered for ``keras_hdf5`` and ``keras_v3``."""
    return KerasModelAdapter(request)
