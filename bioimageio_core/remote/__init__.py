"""Client side of remote prediction: the ``remote`` model adapter and the server's HTTP client.

``create_prediction_pipeline(model, server="http://host:8000")`` (CLI: ``predict --server``,
``test --server``) runs everything locally except the model's forward calls, which go to a
``bioimageio-run serve`` server. Needs only the standard library and numpy.
"""

from bioimageio_core.remote.adapter import (
    RemoteModelAdapter,
    check_server_formats,
    create_remote_adapter,
    model_reference,
)
from bioimageio_core.remote.client import (
    ModelRef,
    RemoteModel,
    ServerClient,
    ServerInfo,
    UnknownModelError,
)

__all__ = [
    "ModelRef",
    "RemoteModel",
    "RemoteModelAdapter",
    "ServerClient",
    "ServerInfo",
    "UnknownModelError",
    "check_server_formats",
    "create_remote_adapter",
    "model_reference",
]
