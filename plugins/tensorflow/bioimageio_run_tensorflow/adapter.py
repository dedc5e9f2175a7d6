"""Model adapter for the ``tensorflow_saved_model_bundle`` weight format (TF2 API)."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bioimageio_core.plugin import (
    AdapterRequest,
    InputError,
    ModelAdapter,
    PluginError,
    TensorflowSavedModelBundleWeightsDescr,
    fit_input,
    import_framework,
    single_device,
    unloaded_error,
)
from bioimageio_run_tensorflow.graph_check import Finding, find_side_effects
from bioimageio_run_tensorflow.signatures import match_signature
from bioimageio_run_tensorflow.unzip import unpack_saved_model

FORMAT = "tensorflow_saved_model_bundle"
SIGNATURE_KEYS = ("serving_default", "serve")
"""Signature keys tried in this order; a SavedModel with a single signature uses that one."""
SHOWN_FINDINGS = 5


def tf_device(devices: Sequence[str] | None) -> str | None:
    """The TensorFlow device name for ``devices`` (None: TensorFlow's default placement)."""
    device = single_device(devices, backend="tensorflow", stacklevel=3)
    if device is None:
        return None
    return "/CPU:0" if device.type == "cpu" else f"/GPU:{device.index}"


class TensorflowModelAdapter(ModelAdapter):
    """Runs the serving signature of a SavedModel loaded once with ``tf.saved_model.load``.

    TF1 SavedModels load through the same call (TensorFlow wraps their signatures); a SavedModel
    without a usable signature is an error.
    """

    weights_format = FORMAT

    def __init__(self, request: AdapterRequest[TensorflowSavedModelBundleWeightsDescr]) -> None:
        super().__init__(request)
        tf = import_framework("tensorflow", weights_format=FORMAT)
        self._tf: Any = tf
        self.device: str | None = tf_device(request.devices)
        if self.device is not None and self.device.startswith("/GPU:"):
            gpus = tf.config.list_physical_devices("GPU")
            if int(self.device.split(":")[1]) >= len(gpus):
                raise PluginError(
                    f"device {self.device} asked for, but tensorflow sees {len(gpus)} GPU(s)",
                    hint="install TensorFlow's CUDA build (pip install 'tensorflow[and-cuda]' "
                    "in place of tensorflow-cpu; see the plugin README), or run with "
                    "devices=['cpu']",
                )

        weights = request.weights
        self.source: str = str(weights.source)
        archive = request.open_file(self.source, weights.sha256)
        settings = request.settings
        folder = unpack_saved_model(
            archive,
            cache=Path(settings.cache_path),
            sha256=weights.sha256,
            max_bytes=int(settings.max_download_bytes),
            name=self.source,
        )
        self._check_graph(folder)
        try:
            with self._placement():
                loaded = tf.saved_model.load(str(folder))
        except Exception as e:  # tensorflow raises many kinds of errors for bad folders
            raise PluginError(
                f"tensorflow could not load the SavedModel {self.source}: {e}",
                loc=("weights", FORMAT, "source"),
                hint="the zip must hold a folder written by tf.saved_model.save or model.export",
            ) from e
        self._loaded: Any = loaded
        self._signature: Any = self._pick_signature(loaded)
        _, kwargs = self._signature.structured_input_signature
        self._input_specs: dict[str, Any] = dict(kwargs)
        self._input_names = match_signature(
            self._input_specs, self.input_ids, what="inputs", source=self.source
        )
        self._output_names = match_signature(
            self._signature.structured_outputs, self.output_ids, what="outputs", source=self.source
        )

    def _check_graph(self, folder: Path) -> None:
        """Ask for consent before loading a graph with side effects (files, Python, network).

        Nothing of the SavedModel has run yet: loading runs its initialisers and restore code.
        """
        findings = find_side_effects(folder)
        if not findings:
            return
        what = (
            f"the TensorFlow graph {self.source} of the {FORMAT} weights, which has operations "
            f"with side effects: {describe_findings(findings)}"
        )
        origin = self.request.require_code_consent(what, loc=("weights", FORMAT, "source"))
        why = "the model is local" if origin.trusted else "remote code is allowed"
        warnings.warn(f"running {what} ({why})", stacklevel=4)

    def _pick_signature(self, loaded: Any) -> Any:
        signatures = dict(getattr(loaded, "signatures", {}) or {})
        for key in SIGNATURE_KEYS:
            if key in signatures:
                return signatures[key]
        if len(signatures) == 1:
            return next(iter(signatures.values()))
        raise PluginError(
            f"the SavedModel {self.source} has no serving signature "
            f"(signatures: {sorted(signatures) or 'none'})",
            hint="export the model with a 'serving_default' signature (model.export(...) or "
            "tf.saved_model.save(module, path, signatures=...)); TF1 models need a signature_def",
        )

    @contextmanager
    def _placement(self) -> Iterator[None]:
        if self.device is None:
            yield
        else:
            with self._tf.device(self.device):
                yield

    def forward(
        self, inputs: Mapping[str, np.ndarray[Any, Any]]
    ) -> dict[str, np.ndarray[Any, Any]]:
        if self._signature is None:
            raise unloaded_error(f"the SavedModel {self.source}")
        ordered = self.ordered_inputs(inputs)
        feed: dict[str, Any] = {}
        for tensor_id, name, array in zip(self.input_ids, self._input_names, ordered, strict=True):
            if array is None:
                raise InputError(f"the SavedModel {self.source} needs input {tensor_id!r}")
            feed[name] = self._prepare(tensor_id, name, np.asarray(array))
        with self._placement():
            result = self._signature(**feed)
        return self.outputs_by_id([np.asarray(result[name]) for name in self._output_names])

    def _prepare(self, tensor_id: str, name: str, array: np.ndarray[Any, Any]) -> Any:
        spec = self._input_specs[name]
        what = f"signature input {name!r} of {self.source}"
        dtype = np.dtype(spec.dtype.as_numpy_dtype)
        return self._tf.convert_to_tensor(
            fit_input(array, tensor_id, what, rank=spec.shape.rank, dtype=dtype)
        )

    def unload(self) -> None:
        """Drop the loaded SavedModel and collect it.

        TensorFlow keeps freed GPU memory in its allocator pool for reuse by this process.
        """
        self._signature = None
        self._loaded = None
        gc.collect()


def describe_findings(findings: Sequence[Finding]) -> str:
    """The first few findings for a message, with how many more there are."""
    shown = "; ".join(str(f) for f in findings[:SHOWN_FINDINGS])
    more = len(findings) - SHOWN_FINDINGS
    return shown + (f"; and {more} more" if more > 0 else "")


def create_adapter(
    request: AdapterRequest[TensorflowSavedModelBundleWeightsDescr],
) -> TensorflowModelAdapter:
    """Factory registered for ``tensorflow_saved_model_bundle``."""
    return TensorflowModelAdapter(request)
