"""The ``remote`` model adapter: forward calls run on a server, everything else stays here.

The prediction pipeline builds it like any other adapter
(``create_prediction_pipeline(..., server=URL)``), so reading, statistics, processing, tiling,
stitching and writing run locally and only each (batched) forward call goes over HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bioimageio_core.adapters import AdapterRequest, ModelAdapter
from bioimageio_core.errors import ServerError, UnsupportedWeightFormatError
from bioimageio_core.plugins import install_hint_for
from bioimageio_core.references import is_http_url
from bioimageio_core.remote.client import (
    ModelRef,
    RemoteModel,
    ServerClient,
    ServerInfo,
    UnknownModelError,
)
from bioimageio_core.remote.package import upload_package
from bioimageio_core.settings import get_settings
from bioimageio_core.sources.roots import ZipRoot

if TYPE_CHECKING:
    from bioimageio_core.spec import ModelDescr


class RemoteModelAdapter(ModelAdapter):
    """Sends each forward call to a server (``POST /v1/models/{key}/predict``).

    ``weights_format`` is the format the server runs. If the server forgot the model (it
    restarted), the model is loaded there again once and the call repeated. Blockwise
    prediction sends consecutive forward calls together, up to ``request_bytes`` of input per
    request (``BIOIMAGEIO_REMOTE_REQUEST_BYTES``, at most the server's limit), and keeps two
    requests in flight (each thread has its own connection): while the server computes one, the
    next one travels and waits there, and the client stitches the last.
    """

    calls_in_flight = 2

    def __init__(
        self,
        request: AdapterRequest[Any],
        client: ServerClient,
        ref: ModelRef,
        remote: RemoteModel,
    ) -> None:
        super().__init__(request)
        self.weights_format = remote.weights_format
        self.client = client
        self.ref = ref
        self.remote = remote
        self._input_axes = {str(t.id): tuple(str(a.id) for a in t.axes) for t in request.model.inputs}
        limit = client.max_request_bytes
        wanted = request.settings.remote_request_bytes
        self.request_bytes = wanted if limit is None else min(wanted, limit)

    def forward(self, inputs: Mapping[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
        return self.forward_calls([inputs])[0]

    def forward_calls(
        self, calls: Sequence[Mapping[str, np.ndarray[Any, Any]]]
    ) -> list[dict[str, np.ndarray[Any, Any]]]:
        """Send ``calls`` in one request (several when the server's limits say so); the server
        runs each as its own forward call, so the outputs equal one request per call."""
        arrays = [
            {
                tid: np.asarray(a)
                for tid, a in zip(self.input_ids, self.ordered_inputs(inputs), strict=True)
                if a is not None
            }
            for inputs in calls
        ]
        if any(set(a) != set(arrays[0]) for a in arrays):  # optional inputs differ: one each
            return [outputs for a in arrays for outputs in self._request([a])]
        return self._request(arrays)

    def _request(
        self, arrays: list[dict[str, np.ndarray[Any, Any]]]
    ) -> list[dict[str, np.ndarray[Any, Any]]]:
        axes = {tid: self._input_axes[tid] for tid in arrays[0]}
        try:
            answers = self.client.predict_calls(self.remote.key, arrays, axes)
        except UnknownModelError:
            self.remote = self.client.load_model(
                self.ref, weights_format=self.weights_format, devices=self.request.devices
            )
            answers = self.client.predict_calls(self.remote.key, arrays, axes)
        for outputs in answers:
            missing = [oid for oid in self.output_ids if oid not in outputs]
            if missing:
                raise ServerError(
                    f"the server at {self.client.url} returned no output(s) {missing} "
                    f"(it returned {sorted(outputs)})"
                )
        return [{oid: outputs[oid] for oid in self.output_ids} for outputs in answers]

    def unload(self) -> None:
        """Close the connection (the server keeps the model for other calls and clients)."""
        self.client.close()


def model_reference(source: object, descr: ModelDescr) -> ModelRef | None:
    """How the server can find the model itself, or None when it must be uploaded.

    An http(s) URL, a zip downloaded from one, or a source string that is no local path (an id)
    is resolved by the server; a local model is uploaded.
    """
    if isinstance(source, str):
        if is_http_url(source):
            return ModelRef(source=source)
        if not Path(source).expanduser().exists():
            return ModelRef(source=source)
    root = getattr(descr, "root", None)
    if isinstance(root, ZipRoot) and root.origin is not None and is_http_url(root.origin):
        return ModelRef(source=root.origin)
    return None


def check_server_formats(
    info: ServerInfo, descr: ModelDescr, weights_format: str | None
) -> None:
    """Raise :class:`UnsupportedWeightFormatError` unless the server can run a weight format of
    the model (``weights_format`` when given)."""
    present = list(descr.weights.available_formats)
    wanted = [weights_format] if weights_format is not None else present
    if weights_format is not None and weights_format not in present:
        raise UnsupportedWeightFormatError(
            f"the model has no {weights_format} weights; it provides {', '.join(present)}",
            hint=f"choose one of {', '.join(present)}",
        )
    if any(f in info.weight_formats and info.weight_formats[f].reason is None for f in wanted):
        return
    lines = []
    hints = []
    for name in wanted:
        entry = info.weight_formats.get(name)
        if entry is None:
            lines.append(f"{name}: no plugin on the server provides it")

            hints.append(install_hint_for(name))
        else:
            lines.append(f"{name}: {entry.reason}")
            if entry.install_hint:
                hints.append(entry.install_hint)
    runs = ", ".join(info.runnable()) or "no weight format"
    raise UnsupportedWeightFormatError(
        f"the server at {info.url} cannot run {descr.name!r} (it runs {runs}):\n    "
        + "\n    ".join(lines),
        hint="install on the server: " + "; ".join(dict.fromkeys(hints))
        if hints
        else "choose a server that runs one of the model's weight formats",
    )


def create_remote_adapter(
    descr: ModelDescr,
    server: str,
    *,
    weights_format: str | None = None,
    devices: Sequence[str] | None = None,
    source: object = None,
    token: str | None = None,
) -> RemoteModelAdapter:
    """Connect to ``server``, make it load the model, and return the adapter.

    ``source`` is what the user named (a URL or id lets the server fetch the model itself);
    otherwise the model is packaged and uploaded, once per content (the server keeps it by
    sha256). Errors: :class:`ServerError` (unreachable, token refused, …),
    :class:`UnsupportedWeightFormatError` (the server lacks the backend), and the server's own
    errors about the model.
    """
    settings = get_settings()
    client = ServerClient(server, token=token, settings=settings)
    try:
        info = client.info()
        check_server_formats(info, descr, weights_format)
        ref = model_reference(source, descr)
        if ref is None:
            with upload_package(descr) as path:
                ref = ModelRef(package=client.ensure_package(path))
        remote = client.load_model(ref, weights_format=weights_format, devices=devices)
        _check_same_tensors(client, descr, remote)
        request = AdapterRequest.for_model(
            descr, remote.weights_format, devices=devices, settings=settings
        )
        return RemoteModelAdapter(request, client, ref, remote)
    except BaseException:
        client.close()
        raise


def _check_same_tensors(client: ServerClient, descr: ModelDescr, remote: RemoteModel) -> None:
    here_in = {str(t.id): tuple(str(a.id) for a in t.axes) for t in descr.inputs}
    here_out = {str(t.id): tuple(str(a.id) for a in t.axes) for t in descr.outputs}
    if dict(remote.inputs) != here_in or dict(remote.outputs) != here_out:
        raise ServerError(
            f"the server at {client.url} loaded a model whose tensors differ from the local "
            f"description ({dict(remote.inputs)} -> {dict(remote.outputs)} there, {here_in} -> "
            f"{here_out} here)",
            hint="the source changed meanwhile; run again, or give a local copy of the model",
        )


__all__ = [
    "RemoteModelAdapter",
    "check_server_formats",
    "create_remote_adapter",
    "model_reference",
]
