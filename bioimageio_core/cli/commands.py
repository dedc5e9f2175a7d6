"""Imports every command module so that each registers itself on the ``main`` group."""

# one import per command module (keep sorted)
from bioimageio_core.cli import block_artifacts as _block_artifacts  # noqa: F401
from bioimageio_core.cli import package as _package  # noqa: F401
from bioimageio_core.cli import plugins as _plugins  # noqa: F401
from bioimageio_core.cli import predict as _predict  # noqa: F401
from bioimageio_core.cli import serve as _serve  # noqa: F401
from bioimageio_core.cli import test as _test  # noqa: F401
from bioimageio_core.cli import validate as _validate  # noqa: F401
