"""Hook specifications of bioimageio_core (pluggy project and entry-point group ``bioimageio_core``).

A plugin is a module with functions decorated by :data:`hookimpl` and named like the hooks below,
exposed through an entry point in the group ``bioimageio_core``::

    [project.entry-points.bioimageio_core]
    my_plugin = "my_package.plugin"

Each hook receives a small registry and adds specs to it; the registry rejects duplicate names with
an error naming both distributions. Do not give hook implementations default arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import attrs
import pluggy

if TYPE_CHECKING:
    from bioimageio_core.adapters import AdapterRequest, ModelAdapter

PROJECT_NAME = "bioimageio_core"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@attrs.frozen
class WeightFormatSpec:
    """What a backend plugin contributes for one weight format."""

    name: str
    """The key of the format under ``weights:`` in a description, e.g. ``"onnx"``."""
    entry_class: type
    """attrs class that parses that weights entry (for built-in formats, the class from
    :mod:`bioimageio_core.spec`)."""
    create_adapter: Callable[[AdapterRequest], ModelAdapter]
    """Build (and load) a model adapter; import the framework here, not at module import."""
    is_available: Callable[[], str | None]
    """Return None when the format can run here, else the reason it cannot (e.g. "onnxruntime is
    not installed"). Must import nothing heavy: use ``importlib.util.find_spec`` or metadata."""
    priority: int = 100
    """Lower runs first when the user chose no weight format."""
    install_hint: str = ""
    """What to install to run this format, e.g. ``pip install bioimageio-run-onnx``."""


class WeightFormatRegister(Protocol):
    """Registry passed to :func:`bioimageio_weight_formats`."""

    def add(self, spec: WeightFormatSpec) -> None: ...


@hookspec
def bioimageio_weight_formats(register: WeightFormatRegister) -> None:
    """Register weight formats this plugin can load and run.

    Call ``register.add(WeightFormatSpec(...))`` once per format. The format's ``entry_class`` is
    used to parse that entry of ``weights:`` in descriptions, so a new format validates like a
    built-in one. Every implementation is called; registering a name twice is an error.
    """
