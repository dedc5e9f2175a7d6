"""``bioimageio-run serve``: a small inference server for bioimage.io models (optional extra).

Needs the ``server`` extra (``pip install "bioimageio-run[server]"``: Starlette, uvicorn); only
the ``serve`` command imports this package. The client side (the ``remote`` model adapter) is
:mod:`bioimageio_core.remote` and needs no extra.

Starlette rather than FastAPI: the API is a handful of routes with binary ``.npz`` bodies and
small JSON objects that the routes parse strictly themselves; FastAPI would add pydantic as a
second data-model library next to attrs/cattrs and a generated schema we would still have to
correct for the binary bodies. The OpenAPI document is written out (:mod:`.openapi`) and tested
against the routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bioimageio_core.server.config import ServerConfig

if TYPE_CHECKING:
    from bioimageio_core.server.app import create_app
    from bioimageio_core.server.run import serve


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from bioimageio_core.server.app import create_app

        return create_app
    if name == "serve":
        from bioimageio_core.server.run import serve

        return serve
    raise AttributeError(f"module 'bioimageio_core.server' has no attribute {name!r}")


__all__ = ["ServerConfig", "create_app", "serve"]
