"""Model adapter for the ``onnx`` weight format (onnxruntime)."""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bioimageio_core.plugin import (
    AdapterRequest,
    InputError,
    ModelAdapter,
    OnnxWeightsDescr,
    PluginError,
    file_name,
    fit_input,
    import_framework,
    unloaded_error,
)
from bioimageio_run_onnx.external_data import colocate
from bioimageio_run_onnx.matching import match_names
from bioimageio_run_onnx.providers import CUDA, execution_providers

THREADS_ENV = "BIOIMAGEIO_ONNX_INTRA_OP_THREADS"
"""Environment variable: threads onnxruntime uses inside one operator (0 or unset: its default)."""
SPINNING_ENV = "BIOIMAGEIO_ONNX_ALLOW_SPINNING"
"""Environment variable: whether onnxruntime's idle intra-op threads spin (busy-wait) for the
next operator (``1``/``0``; unset: onnxruntime's default, they spin). ``bioimageio-run serve``
sets ``0`` unless it is set."""
SPINNING_CONFIG_KEY = "session.intra_op.allow_spinning"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

_ONNX_DTYPES: dict[str, str] = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
}


def intra_op_threads(environ: Mapping[str, str] | None = None) -> int:
    """Threads per operator from ``BIOIMAGEIO_ONNX_INTRA_OP_THREADS`` (0: onnxruntime decides)."""
    raw = (os.environ if environ is None else environ).get(THREADS_ENV, "").strip()
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise PluginError(
            f"environment variable {THREADS_ENV} must be a whole number >= 0; got {raw!r}",
            hint="unset it to let onnxruntime choose",
        )
    return value


def allow_spinning(environ: Mapping[str, str] | None = None) -> bool | None:
    """Whether intra-op threads may spin, from ``BIOIMAGEIO_ONNX_ALLOW_SPINNING`` (None: unset,
    onnxruntime's default: they spin).

    Spinning threads take the next operator sooner but keep their cores busy between operators
    and between calls. With the cores to itself a process is faster with it; sharing them (a
    server and its clients, other jobs) it is faster without (docs/benchmarks.md, 17).
    """
    raw = (os.environ if environ is None else environ).get(SPINNING_ENV, "").strip().lower()
    if not raw:
        return None
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise PluginError(
        f"environment variable {SPINNING_ENV} must be 1 or 0; got {raw!r}",
        hint="unset it to keep onnxruntime's default (spinning)",
    )


class OnnxModelAdapter(ModelAdapter):
    """Runs an ONNX model with one onnxruntime ``InferenceSession`` created at construction.

    Inputs and outputs are matched to the graph by name when the graph's names equal the
    description's tensor ids, else by position (graph order = description order).
    """

    weights_format = "onnx"

    def __init__(self, request: AdapterRequest[OnnxWeightsDescr]) -> None:
        super().__init__(request)
        ort = import_framework("onnxruntime", weights_format="onnx")

        weights = request.weights
        self.source: str = str(weights.source)
        model_path = request.open_file(self.source, weights.sha256)
        external = getattr(weights, "external_data", None)
        if external is not None:
            data_path = request.open_file(str(external.source), external.sha256)
            model_path = colocate(
                model_path,
                data_path,
                model_name=model_path.name,
                data_name=file_name(str(external.source)),
                cache=Path(request.settings.cache_path),
                model_sha256=weights.sha256,
                data_sha256=external.sha256,
            )

        providers = execution_providers(request.devices, ort.get_available_providers())
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = intra_op_threads()
        spinning = allow_spinning()
        if spinning is not None:
            options.add_session_config_entry(SPINNING_CONFIG_KEY, "1" if spinning else "0")
        try:
            session = ort.InferenceSession(
                str(model_path), sess_options=options, providers=providers
            )
        except Exception as e:  # onnxruntime raises its own untyped exceptions
            raise PluginError(
                f"onnxruntime could not load the onnx weights {self.source}: {e}",
                loc=("weights", "onnx", "source"),
                hint="check that the file is a valid ONNX model (and that its external data "
                "file is given as weights.onnx.external_data)",
            ) from e
        if any(isinstance(p, tuple) and p[0] == CUDA for p in providers) and (
            CUDA not in session.get_providers()
        ):
            raise PluginError(
                "onnxruntime could not start its CUDA execution provider for "
                f"{self.source} (providers in use: {session.get_providers()})",
                hint="check the CUDA / cuDNN installation matching onnxruntime-gpu, or run with "
                "devices=['cpu']",
            )
        self._session: Any = session
        self.providers: tuple[str, ...] = tuple(session.get_providers())
        graph_inputs = session.get_inputs()
        graph_outputs = session.get_outputs()
        self._input_names = match_names(
            [i.name for i in graph_inputs], self.input_ids, what="inputs", source=self.source
        )
        self._output_names = match_names(
            [o.name for o in graph_outputs], self.output_ids, what="outputs", source=self.source
        )
        by_name = {i.name: i for i in graph_inputs}
        self._input_dtypes: dict[str, np.dtype[Any] | None] = {}
        self._input_ranks: dict[str, int | None] = {}
        for name in self._input_names:
            node = by_name[name]
            dtype = _ONNX_DTYPES.get(node.type)
            self._input_dtypes[name] = None if dtype is None else np.dtype(dtype)
            shape = node.shape
            self._input_ranks[name] = len(shape) if isinstance(shape, list) else None

    def forward(
        self, inputs: Mapping[str, np.ndarray[Any, Any]]
    ) -> dict[str, np.ndarray[Any, Any]]:
        if self._session is None:
            raise unloaded_error(f"the onnx model {self.source}")
        ordered = self.ordered_inputs(inputs)
        feed: dict[str, np.ndarray[Any, Any]] = {}
        for tensor_id, name, array in zip(self.input_ids, self._input_names, ordered, strict=True):
            if array is None:
                raise InputError(
                    f"the onnx model {self.source} needs input {tensor_id!r} (graph input "
                    f"{name!r}); onnx graphs have no optional inputs"
                )
            feed[name] = self._prepare(tensor_id, name, np.asarray(array))
        try:
            outputs = self._session.run(list(self._output_names), feed)
        except Exception as e:  # onnxruntime raises its own untyped exceptions
            given = ", ".join(
                f"{tid} {tuple(a.shape)} {a.dtype}"
                for tid, a in zip(self.input_ids, feed.values(), strict=True)
            )
            raise PluginError(
                f"onnxruntime failed to run {self.source} on inputs {given}: "
                f"{' '.join(str(e).split())}",
                loc=("weights", "onnx"),
                hint="the input sizes may not fit the ONNX graph (compare the description's "
                "axis sizes with the graph's input shapes), or the graph is broken; out of "
                "memory: use smaller blocks (blocksize parameter) or fewer per call",
            ) from e
        return self.outputs_by_id([np.asarray(o) for o in outputs])

    def _prepare(
        self, tensor_id: str, name: str, array: np.ndarray[Any, Any]
    ) -> np.ndarray[Any, Any]:
        fitted = fit_input(
            array,
            tensor_id,
            f"graph input {name!r} of {self.source}",
            rank=self._input_ranks[name],
            dtype=self._input_dtypes[name],
        )
        return np.ascontiguousarray(fitted)

    def unload(self) -> None:
        """Drop the inference session; onnxruntime frees its memory (CPU and GPU) with it."""
        self._session = None
        gc.collect()


def create_adapter(request: AdapterRequest[OnnxWeightsDescr]) -> OnnxModelAdapter:
    """Factory registered for the ``onnx`` weight format."""
    return OnnxModelAdapter(request)
