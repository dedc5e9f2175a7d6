"""The interface every weight-format backend implements: a model adapter.

A backend plugin registers a :class:`WeightFormatSpec` (see :mod:`bioimageio_core.hookspecs`)
whose ``create_adapter`` builds a :class:`ModelAdapter` from an :class:`AdapterRequest`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs
import numpy as np

from bioimageio_core import consent
from bioimageio_core._closing import Closing
from bioimageio_core.consent import CodeOrigin
from bioimageio_core.errors import Loc
from bioimageio_core.settings import Settings, get_settings
from bioimageio_core.sources import as_root, open_file, root_or_cwd

if TYPE_CHECKING:
    from bioimageio_core.spec import ModelDescr

W = TypeVar("W", covariant=True)
"""The class of a weight format's weights entry (e.g. :class:`~bioimageio_core.spec.OnnxWeightsDescr`)."""

FileOpener = Callable[[str, "str | None"], Path]
"""``open_file(reference, sha256)``: resolve a file reference exactly as written in the description
(a path relative to the description's root, or a URL) to a local file, downloading into the cache
if needed and checking ``sha256`` when given."""


@attrs.frozen
class AdapterRequest(Generic[W]):
    """Everything a backend needs to build an adapter for one model and one weight format.

    Generic over the weights-entry class: a backend of format ``onnx`` receives an
    ``AdapterRequest[OnnxWeightsDescr]``, so ``request.weights.opset_version`` is typed.
    """

    model: ModelDescr
    weights_format: str
    weights: W
    """The parsed weights entry (an instance of the format's ``entry_class``)."""
    devices: tuple[str, ...] | None
    """Devices asked for (``"cpu"``, ``"cuda"``, ``"cuda:1"`` …); None: GPU if available, else CPU."""
    open_file: FileOpener
    """``open_file(reference, sha256) -> Path`` (see :data:`FileOpener`)."""
    settings: Settings

    @classmethod
    def for_model(
        cls,
        model: ModelDescr,
        weights_format: str,
        *,
        weights: Any = None,
        devices: Sequence[str] | None = None,
        settings: Settings | None = None,
        open_file: FileOpener | None = None,
    ) -> AdapterRequest[Any]:
        """A request for ``model``'s ``weights_format`` entry (or ``weights``, e.g. the entry
        parsed with a plugin's class) whose files open relative to the model's root.

        Files are resolved with :func:`bioimageio_core.sources.open_file` (cached, sha256
        checked) against ``model.root`` (the current folder when it has none), unless
        ``open_file`` is given; ``settings`` default to the current ones.
        """
        if weights is None:
            if weights_format not in model.weights:
                raise KeyError(
                    f"the model has no {weights_format!r} weights (it has "
                    f"{list(model.weights.formats)})"
                )
            weights = model.weights[weights_format]
        return cls(
            model=model,
            weights_format=weights_format,
            weights=weights,
            devices=None if devices is None else tuple(devices),
            open_file=open_file if open_file is not None else root_opener(model.root),
            settings=settings if settings is not None else get_settings(),
        )

    @property
    def input_ids(self) -> tuple[str, ...]:
        return tuple(str(t.id) for t in self.model.inputs)

    @property
    def output_ids(self) -> tuple[str, ...]:
        return tuple(str(t.id) for t in self.model.outputs)

    def require_code_consent(
        self, what: str, *, loc: Loc | str | None = None, reference: str | None = None
    ) -> CodeOrigin:
        """Raise :class:`~bioimageio_core.errors.RemoteCodeError` unless code of this model may run.

        Call it before fetching, importing or running anything the description brings that is
        code: ``what`` names it for the user, ``reference`` is its file as written in the
        description (None for code that is not a file, e.g. a library callable or a framework
        graph inside the weights), ``loc`` the field path. Code of a local model the user named
        is trusted; code of a fetched model runs only with ``settings.allow_remote_code``. The
        returned :class:`~bioimageio_core.consent.CodeOrigin` says which applied (``trusted``).
        """
        return consent.require_code_consent(
            what, root=self.model.root, reference=reference, loc=loc, settings=self.settings
        )


class ModelAdapter(Closing, ABC):
    """A loaded model that maps input arrays to output arrays.

    Arrays are plain numpy arrays whose axes are in the order the description declares for that
    tensor. ``forward`` receives one entry per model input (keyed by tensor id; optional inputs may
    be missing) and returns one entry per model output, keyed by output tensor id.
    Adapters are context managers: leaving the ``with`` block calls :meth:`unload`.
    """

    weights_format: str = ""
    calls_in_flight: int = 1
    """How many ``forward`` calls blockwise prediction keeps running at once. An adapter whose
    calls mostly wait (the ``remote`` adapter: 2, so that one call's transfer overlaps the
    server's work on the other, and both the client's stitching) sets more; its ``forward``
    must then be safe to call from several threads. Results are used in block order."""
    request_bytes: int = 0
    """Blockwise prediction hands consecutive forward calls to :meth:`forward_calls` together,
    as many as fit in this many bytes of input (at least one); 0: one call at a time. An adapter
    with a fixed cost per request (the ``remote`` adapter: an HTTP round trip) sets it so that
    the cost is shared by several blocks."""

    def __init__(self, request: AdapterRequest[Any]) -> None:
        self.request: AdapterRequest[Any] = request
        """The request this adapter was built from (a subclass may narrow its type, e.g. to
        ``AdapterRequest[OnnxWeightsDescr]``)."""
        self.input_ids: tuple[str, ...] = request.input_ids
        self.output_ids: tuple[str, ...] = request.output_ids

    @abstractmethod
    def forward(self, inputs: Mapping[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
        """Run the model once on a batch of inputs."""

    def forward_calls(
        self, calls: Sequence[Mapping[str, np.ndarray[Any, Any]]]
    ) -> list[dict[str, np.ndarray[Any, Any]]]:
        """:meth:`forward` on each of ``calls`` in turn (an adapter may send them together, but
        must run each as its own forward call); their outputs in order."""
        return [self.forward(inputs) for inputs in calls]

    @abstractmethod
    def unload(self) -> None:
        """Free all framework memory (CPU and GPU) held by this adapter; idempotent."""

    def close(self) -> None:
        """The same as :meth:`unload` (``with adapter:`` unloads on leaving)."""
        self.unload()

    def ordered_inputs(
        self, inputs: Mapping[str, np.ndarray[Any, Any]]
    ) -> list[np.ndarray[Any, Any] | None]:
        """The inputs of a ``forward`` call in description order (missing optional inputs as
        None); raises ``KeyError`` for an id that is no input of the model."""
        unknown = set(inputs) - set(self.input_ids)
        if unknown:
            raise KeyError(
                f"unknown input tensor ids {sorted(unknown)}; the model's inputs are {self.input_ids}"
            )
        return [inputs.get(tid) for tid in self.input_ids]

    def outputs_by_id(self, outputs: Sequence[np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
        """Pair outputs given in description order with the output tensor ids (what ``forward``
        returns); raises ``RuntimeError`` when their number differs from the description's."""
        if len(outputs) != len(self.output_ids):
            raise RuntimeError(
                f"{self.weights_format} model returned {len(outputs)} outputs, but the description "
                f"declares {len(self.output_ids)}: {self.output_ids}"
            )
        return dict(zip(self.output_ids, outputs, strict=True))


def root_opener(root: object) -> FileOpener:
    """The :data:`FileOpener` of a description whose ``root`` is ``root`` (a folder ``Path``, a
    :data:`~bioimageio_core.sources.Root`, a URL, or None for the current folder)."""
    resolved = root_or_cwd(root) if root is None else as_root(root)

    def open_relative(reference: str, sha256: str | None) -> Path:
        return open_file(resolved, reference, sha256)

    return open_relative


def model_file(model: ModelDescr, reference: str, sha256: str | None = None) -> Path:
    """A local path of a file that ``model`` references (relative to its root, or a URL), e.g.
    a weights file in a weight converter: fetched into the cache when needed, ``sha256``
    checked when given (see :func:`root_opener`)."""
    return root_opener(model.root)(reference, sha256)
