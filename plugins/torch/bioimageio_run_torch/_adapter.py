"""Behaviour shared by the torch adapters: device, forward, output collection, unload."""

from __future__ import annotations

import gc
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bioimageio_core.plugin import (
    AdapterRequest,
    BioimageioError,
    InputError,
    Loc,
    ModelAdapter,
    PluginError,
    PytorchStateDictWeightsDescr,
    TorchscriptWeightsDescr,
)
from bioimageio_run_torch._errors import DISTRIBUTION, backend_error, locate
from bioimageio_run_torch.devices import torch_device
from bioimageio_run_torch.precision import ieee_float32_convolutions, tf32_allowed

TorchWeightsDescr = TorchscriptWeightsDescr | PytorchStateDictWeightsDescr
"""The weights entries the torch adapters run."""


class TorchAdapter(ModelAdapter):
    """A torch module on one device; subclasses only say how to load it (:meth:`_load`).

    The module is loaded when the adapter is created and put in eval mode. ``forward`` passes the
    inputs positionally in the order of the description's inputs (missing optional inputs as
    ``None``) and runs under :func:`torch.inference_mode`; on a CUDA device convolutions run in
    IEEE float32 (no TF32) unless ``BIOIMAGEIO_TORCH_ALLOW_TF32=1`` (see
    :mod:`bioimageio_run_torch.precision`).
    """

    weights_format = ""

    def __init__(self, request: AdapterRequest[TorchWeightsDescr]) -> None:
        super().__init__(request)
        self.weights_source = str(request.weights.source)
        self.device: torch.device = torch_device(request.devices)
        self.allow_tf32 = tf32_allowed()
        module = self._load()
        module.eval()
        self._module: torch.nn.Module | None = module

    @abstractmethod
    def _load(self) -> torch.nn.Module:
        """Load the module onto ``self.device``."""

    @property
    def is_loaded(self) -> bool:
        return self._module is not None

    def _weights_path(self) -> Path:
        """Local path of the weights file (downloaded and sha256-checked by ``open_file``)."""
        try:
            return self.request.open_file(self.weights_source, self.request.weights.sha256)
        except BioimageioError as error:
            raise locate(error, ("weights", self.weights_format)) from None
        except OSError as error:
            raise self._error(
                f"the weights file cannot be read: {error}", loc=self._loc("source")
            ) from error

    def _loc(self, field: str) -> Loc:
        return ("weights", self.weights_format, field)

    def _error(
        self, message: str, *, loc: Loc | None = None, hint: str | None = None
    ) -> PluginError:
        return backend_error(self.weights_format, self.weights_source, message, loc=loc, hint=hint)

    def forward(
        self, inputs: Mapping[str, np.ndarray[Any, Any]]
    ) -> dict[str, np.ndarray[Any, Any]]:
        module = self._module
        if module is None:
            raise self._error("the adapter was unloaded; create a new one to run the model again")
        arrays = self.ordered_inputs(inputs)
        tensors = [
            None if a is None else self._to_tensor(tid, a)
            for tid, a in zip(self.input_ids, arrays, strict=True)
        ]
        try:
            with torch.inference_mode(), self._precision():
                result = module(*tensors)
                outputs = self._collect_outputs(result)
        except BioimageioError:
            raise
        except Exception as error:
            shapes = {
                tid: (None if a is None else (tuple(a.shape), str(a.dtype)))
                for tid, a in zip(self.input_ids, arrays, strict=True)
            }
            raise self._error(
                f"running the model on {self.device} failed for inputs (shape, dtype) {shapes}: "
                f"{type(error).__name__}: {error}",
                hint="check the input shapes and dtypes against the model's description",
            ) from error
        return self.outputs_by_id(outputs)

    def _precision(self) -> AbstractContextManager[None]:
        if self.device.type == "cuda" and not self.allow_tf32:
            return ieee_float32_convolutions()
        return nullcontext()

    def _to_tensor(self, tensor_id: str, array: np.ndarray[Any, Any]) -> torch.Tensor:
        array = np.asarray(array)
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        if not array.flags.writeable or not array.flags.c_contiguous:
            array = np.array(array, order="C", copy=True)
        try:
            tensor = torch.from_numpy(array)
        except TypeError as error:
            raise InputError(
                f"input {tensor_id!r} has dtype {array.dtype}, which torch cannot take "
                f"({self.weights_format} weights {self.weights_source!r}, {DISTRIBUTION})",
                loc=("inputs", self.input_ids.index(tensor_id)),
            ) from error
        return tensor.to(self.device)

    def _collect_outputs(self, result: object) -> list[np.ndarray[Any, Any]]:
        """Model outputs in description order, as numpy arrays on the CPU."""
        if isinstance(result, torch.Tensor):
            items: Sequence[object] = [result]
        elif isinstance(result, (tuple, list)):
            items = result
        elif isinstance(result, Mapping):
            missing = [tid for tid in self.output_ids if tid not in result]
            if missing:
                raise self._error(
                    f"the model returned a dict with keys {sorted(map(str, result))}, which lacks "
                    f"the output ids {missing} of the description",
                    hint="a model that returns a dict must use the output tensor ids as keys",
                )
            items = [result[tid] for tid in self.output_ids]
        else:
            raise self._error(
                f"the model returned a {type(result).__name__}; expected a tensor, a tuple or list "
                "of tensors, or a dict of tensors keyed by output id"
            )
        arrays = []
        for position, item in enumerate(items):
            if not isinstance(item, torch.Tensor):
                raise self._error(
                    f"output {position} of the model is a {type(item).__name__}, not a tensor"
                )
            arrays.append(_to_numpy(item))
        return arrays

    def unload(self) -> None:
        """Drop the module, collect garbage and, after CUDA use, return cached GPU memory."""
        if self._module is None:
            return
        self._module = None
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def _to_numpy(tensor: torch.Tensor) -> np.ndarray[Any, Any]:
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    array: np.ndarray[Any, Any] = tensor.cpu().numpy()
    return array
