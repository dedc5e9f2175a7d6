"""Version of the bioimageio-run distribution."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bioimageio-run")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"
