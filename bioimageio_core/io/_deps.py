"""Import optional dependencies with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from bioimageio_core.errors import BioimageioError


class MissingOptionalDependencyError(BioimageioError, ImportError):
    """A file format needs a package that is not installed (install the named extra)."""

    def __init__(self, module: str, extra: str, purpose: str) -> None:
        self.module = module
        self.extra = extra
        super().__init__(
            f"{purpose} needs the optional package {module!r}, which is not installed",
            hint=f'pip install "bioimageio-run[{extra}]"',
        )


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingOptionalDependencyError` naming ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingOptionalDependencyError(module, extra, purpose) from e
