"""Hook specifications of bioimageio_core (pluggy project and entry-point group ``bioimageio_core``).

A plugin is a module with functions decorated by :data:`hookimpl` and named like the hooks below,
exposed through an entry point in the group ``bioimageio_core``::

    [project.entry-points.bioimageio_core]
    my_plugin = "my_package.plugin"

Each hook receives a small registry and adds specs to it; the registry rejects duplicate names with
an error naming both distributions. Do not give hook implementations default arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

import attrs
import pluggy

if TYPE_CHECKING:
    import numpy as np

    from bioimageio_core.adapters import AdapterRequest, FileOpener, ModelAdapter
    from bioimageio_core.io import FileLocation
    from bioimageio_core.io._format import Existing, OutputRequest, RawArray
    from bioimageio_core.settings import Settings
    from bioimageio_core.shapes import TensorShape
    from bioimageio_core.spec import ModelDescr
    from bioimageio_core.stats import Measure, MeasureValue
    from bioimageio_core.tensor import Tensor

PROJECT_NAME = "bioimageio_core"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


W = TypeVar("W")
"""The weights-entry class of a weight format."""


@attrs.frozen
class WeightFormatSpec(Generic[W]):
    """What a backend plugin contributes for one weight format.

    Generic over the weights-entry class ``W``: ``create_adapter`` receives an
    ``AdapterRequest[W]`` whose ``weights`` is an instance of ``entry_class``.
    """

    name: str
    """The key of the format under ``weights:`` in a description, e.g. ``"onnx"``."""
    entry_class: type[W]
    """attrs class that parses that weights entry (for built-in formats, the class from
    :mod:`bioimageio_core.spec`)."""
    create_adapter: Callable[[AdapterRequest[W]], ModelAdapter]
    """Build (and load) a model adapter; import the framework here, not at module import."""
    is_available: Callable[[], str | None]
    """Return None when the format can run here, else the reason it cannot (e.g. "onnxruntime is
    not installed"). Must import nothing heavy: use ``importlib.util.find_spec`` or metadata."""
    priority: int = 100
    """Lower runs first when the user chose no weight format."""
    install_hint: str = ""
    """What to install to run this format when ``is_available`` gives a reason. Empty: ``pip
    install <distribution>`` of the entry point that registered it (set by the registry)."""
    enable_determinism: Callable[[str, int], None] | None = None
    """``enable_determinism(mode, seed)``: seed the framework's random generators with ``seed``;
    with ``mode="full"`` also make it use deterministic algorithms only. Called before model
    tests of this format (``bioimageio_core.enable_determinism``); may import the framework."""
    list_devices: Callable[[], Sequence[str]] | None = None
    """``list_devices()``: the devices this format can run on here, named as ``devices`` takes
    them (``["cpu", "cuda:0"]``). Called by ``bioimageio-run serve`` for its info endpoint; may
    import the framework. None: not reported."""


class WeightFormatRegister(Protocol):
    """Registry passed to :func:`bioimageio_weight_formats`."""

    def add(self, spec: WeightFormatSpec[Any]) -> None: ...


@hookspec
def bioimageio_weight_formats(register: WeightFormatRegister) -> None:
    """Register weight formats this plugin can load and run.

    Call ``register.add(WeightFormatSpec(...))`` once per format. The format's ``entry_class`` is
    used to parse that entry of ``weights:`` in descriptions, so a new format validates like a
    built-in one. Every implementation is called; registering a name twice is an error.
    """


def _always_available() -> str | None:
    return None


def _no_measures(kwargs: Any, target: OpTarget) -> Collection[Measure]:
    return ()


@attrs.frozen
class OpTarget:
    """The tensor an op is applied to, and how statistics are scoped (passed to op functions)."""

    member_id: str
    """Id of the tensor (sample member) the op reads and replaces."""
    axes_none_scope: Literal["dataset", "sample"] = "dataset"
    """What ``axes: null`` means for statistics: ``"dataset"`` (bioimageio.core's behaviour:
    running statistics over every sample a pipeline processes) or ``"sample"`` (the sample
    alone)."""


@attrs.frozen
class OpContext:
    """The model a processing step belongs to, for ops that prepare themselves (``OpSpec.prepare``)."""

    model: ModelDescr | None
    """The description (its ``root`` says where it came from); None for steps built alone."""
    loc: str
    """Field path of the step, e.g. ``$.outputs[0].postprocessing[1]``, for error messages."""
    open_file: FileOpener
    """``open_file(reference, sha256) -> Path`` for a file the step names (relative to the
    description, or a URL); fetches into the cache and checks ``sha256`` when given."""
    settings: Settings

    def require_code_consent(self, what: str, *, reference: str | None = None) -> None:
        """Raise unless code the step brings may run (see :mod:`bioimageio_core.consent`).

        Call it before fetching or importing the code; ``what`` names it for the user,
        ``reference`` is its file as written in the description.
        """
        from bioimageio_core.consent import require_code_consent

        require_code_consent(
            what,
            root=getattr(self.model, "root", None),
            reference=reference,
            loc=self.loc,
            settings=self.settings,
        )


@attrs.frozen
class OpSpec:
    """What a plugin contributes for one processing op (the ``id`` of a processing step)."""

    id: str
    """The step id as written in a description, e.g. ``"scale_range"``."""
    kwargs_classes: tuple[type, ...]
    """attrs classes that parse the step's ``kwargs`` (tried in order; e.g. a scalar and an
    along-axis variant). For built-in ops these are the classes of :mod:`bioimageio_core.spec`."""
    apply: Callable[[Any, OpTarget, Mapping[str, Tensor], Mapping[Measure, MeasureValue]], Tensor]
    """``apply(kwargs, target, members, stat) -> Tensor``: the processed tensor for
    ``target.member_id``. ``members`` maps member ids to tensors of the whole sample (read other
    members for reference tensors); ``stat`` holds at least every measure that
    ``required_measures`` asked for. Do not modify the inputs."""
    required_measures: Callable[[Any, OpTarget], Collection[Measure]] = _no_measures
    """``required_measures(kwargs, target)``: the statistics (measures from
    :mod:`bioimageio_core.stats`) ``apply`` needs for these kwargs."""
    is_available: Callable[[], str | None] = _always_available
    """None when the op can run here, else the reason (e.g. a missing optional package)."""
    install_hint: str = ""
    """What to install when ``is_available`` reports a reason (empty: ``pip install`` of the
    entry point's distribution)."""
    prepare: Callable[[Any, OpTarget, OpContext], Any] | None = None
    """``prepare(kwargs, target, context) -> prepared``: called once when a pipeline is built,
    e.g. to import code the step names (after ``context.require_code_consent``). ``apply`` then
    receives ``prepared`` instead of the kwargs. None: ``apply`` gets the kwargs."""
    pointwise: bool = False
    """True when ``apply`` works element by element, or along the one axis its kwargs name in
    ``axis`` (e.g. ``softmax`` over channels), and reads nothing but the target tensor and its
    measures. A step of such an op may then run on each block instead of the whole tensor (when
    blocking never splits that ``axis``): one that needs no statistics always (postprocessing
    before stitching, so the stitched output is not held twice), one that needs statistics once
    they were computed over the whole tensor beforehand (out-of-core prediction). False: the op
    always runs on the whole tensor."""
    input_axes: Callable[[Any, TensorShape], TensorShape] | None = None
    """For a postprocessing op that changes its tensor's shape (e.g. instance labels made from a
    model's probability and distance maps): ``input_axes(kwargs, described)`` returns the axes
    the op reads, given the axes it produces (:class:`bioimageio_core.shapes.TensorShape`, as the
    description declares the output). The pipeline tiles and stitches the model's raw output with
    these axes and runs such ops on the whole stitched output. None: the op keeps the shape."""


ConvertWeights = Callable[["ModelDescr", str, Path, Mapping[str, Any]], Any]


@attrs.frozen
class ConverterSpec:
    """A weight converter: makes a new weights entry of ``target_format`` from ``source_format``."""

    source_format: str
    target_format: str
    convert: ConvertWeights
    """``convert(model, source_format, output_path, options) -> weights entry``: write the new
    weights to ``output_path`` and return the new entry (an instance of the target format's
    ``entry_class`` whose ``source`` is ``output_path``'s file name). ``options`` holds
    converter-specific settings (e.g. ``{"allow_tracing": True}``); ignore unknown keys."""
    is_available: Callable[[], str | None] = _always_available
    """None when the converter can run here, else the reason it cannot."""
    install_hint: str = ""
    """What to install when ``is_available`` reports a reason (empty: ``pip install`` of the
    entry point's distribution)."""


@attrs.frozen
class ResolvedSource:
    """Where a resolver found the description that a source string (e.g. an id) names."""

    url: str
    """http(s) URL (or local path) of the description file or of a ``.zip`` package."""
    sha256: str | None = None
    """Its sha256, if known (e.g. from an id map): the download is checked against it, and a
    cached copy with that digest is used without asking the server."""
    downloaded: Path | None = None
    """A local copy of ``url`` the resolver already fetched (with
    :func:`bioimageio_core.sources.download`), so that the core does not ask for it again."""


def _no_scope(settings: Settings) -> str:
    return ""


@attrs.frozen
class SourceResolverSpec:
    """Resolves source strings that are neither local paths nor URLs (e.g. model ids)."""

    name: str
    claims: Callable[[str], bool]
    """``claims(source) -> bool``: whether this resolver understands ``source``. Asked only for
    strings that are neither an existing path nor an http(s) URL; must not use the network."""
    resolve: Callable[[str, Settings], ResolvedSource]
    """``resolve(source, settings) -> ResolvedSource``. Fetch with
    :func:`bioimageio_core.sources.download` (cached; offline it serves the cache or raises
    ``OfflineError`` instead of connecting). Raise ``UnresolvedSourceError`` (with close known
    names as ``suggestions``) when ``source`` names nothing known, and ``NetworkError`` when a
    server cannot be reached: the core then falls back to what ``source`` resolved to the last
    time, if that is recorded in the cache."""
    forms: tuple[str, ...] = ()
    """The source forms accepted, with examples, for error messages (``"lab:<name>"``)."""
    scope: Callable[[Settings], str] = _no_scope
    """``scope(settings) -> str``: the configuration results depend on (e.g. the collection's
    URL); results are recorded in the cache per (resolver name, scope, source)."""
    priority: int = 50
    """Resolvers claiming a source are asked in this order (lower first). The built-in
    ``huggingface`` resolver has 40, ``bioimage.io`` (any id-like text) 100."""


@attrs.frozen(eq=False)
class ImageIOSpec:
    """One file format for tensors: its suffixes and how to read, write and stream it.

    The built-in formats (``.npy``, ``.npz``, TIFF, PNG/JPEG, HDF5, zarr) are registered through
    :func:`bioimageio_image_io` too.
    """

    name: str
    suffixes: tuple[str, ...]
    """Lower-case file suffixes with the dot, e.g. ``(".tif", ".tiff")``; each suffix may be
    registered by one format only."""
    read: Callable[[FileLocation, bool], RawArray]
    """``read(location, mmap) -> RawArray(array, dims=None, close=...)``: open
    ``location.path`` (``location.member`` names an array inside a container). ``array`` may be
    lazy (indexed block by block); ``dims`` are the axis ids when the file records them;
    ``mmap`` allows a memory map instead of reading. Raise ``SourceError`` for unreadable
    files."""
    write: Callable[[FileLocation, Tensor], None] | None = None
    """``write(location, tensor)``: save a whole tensor (None: the format cannot be written)."""
    create: (
        Callable[[FileLocation, tuple[int, ...], np.dtype[Any], tuple[str, ...]], RawArray] | None
    ) = None
    """``create(location, shape, dtype, dims) -> RawArray`` with a writable array in a new file,
    for outputs written block by block (None: not supported). Stores that record attributes
    mark the array incomplete (``bioimageio_core.io.staging.mark_incomplete``) and return
    ``RawArray(..., complete=..., discard=...)``: ``complete()`` marks it complete after the last
    block, ``discard()`` removes it after a failure."""
    has_members: bool = False
    """Whether files hold several named arrays (``file.ext:member``)."""
    no_write_hint: str = "save as .npy, .tif, .h5 or .zarr instead"
    """What to tell a user who asks to write this format when ``write``/``create`` is None."""
    directory: bool = False
    """Whether a file of this format is a folder (zarr stores). ``write``/``create`` get a
    temporary path next to the output (an empty file, or an empty folder when ``directory``);
    the core moves it into place once it is complete."""
    probe: Callable[[FileLocation], Existing] | None = None
    """``probe(location) -> Existing(exists, in_place, writer, copy)`` for containers: what a
    write of ``location.member`` finds (None: writing replaces the whole file). ``in_place``:
    the member is written into the existing container directly (it must carry a completion
    marker); ``copy``: the write goes to a temporary copy of the existing file."""
    open_output: Callable[[FileLocation, OutputRequest], RawArray] | None = None
    """``open_output(location, request) -> RawArray``: like ``create`` (and preferred to it),
    with the whole :class:`~bioimageio_core.io.OutputRequest`: the chunk shape to store, the
    axes' physical metadata, and the mode (``create``; ``resume`` an interrupted output when
    ``resumable``; ``attach`` to an output another process is writing when the returned
    ``RawArray.concurrent`` says several processes may write it)."""
    resumable: bool = False
    """Whether ``open_output`` can resume an interrupted output: it then keeps a per-chunk
    completion record in the output (``RawArray.record``) and reopens what a killed run left."""
    concurrent: bool = False
    """Whether several processes may write chunks of one output at once (``open_output``
    with mode ``attach``, returning ``RawArray.concurrent=True``); False: a single writer."""
    remote: bool = False
    """Whether ``read`` accepts remote locations (``location.url``, an fsspec URL such as
    ``https://…`` or ``s3://…``); other formats are read from local files only."""


class OpRegister(Protocol):
    """Registry passed to :func:`bioimageio_processing_ops`."""

    def add(self, spec: OpSpec) -> None: ...


class ConverterRegister(Protocol):
    """Registry passed to :func:`bioimageio_weight_converters`."""

    def add(self, spec: ConverterSpec) -> None: ...


class SourceResolverRegister(Protocol):
    """Registry passed to :func:`bioimageio_source_resolvers`."""

    def add(self, spec: SourceResolverSpec) -> None: ...


class ImageIORegister(Protocol):
    """Registry passed to :func:`bioimageio_image_io`."""

    def add(self, spec: ImageIOSpec) -> None: ...


@hookspec
def bioimageio_processing_ops(register: OpRegister) -> None:
    """Register processing ops (pre- and postprocessing steps).

    Call ``register.add(OpSpec(...))`` once per op id. The op's ``kwargs_classes`` parse the
    ``kwargs`` of steps with that id, so a new op validates like a built-in one. Every
    implementation is called; registering an op id twice is an error. The built-in ops are
    registered through this hook too.
    """


@hookspec
def bioimageio_weight_converters(register: ConverterRegister) -> None:
    """Register weight converters (used by ``add-weights``).

    Call ``register.add(ConverterSpec(...))`` once per (source format, target format) pair.
    Every implementation is called; registering a pair twice is an error.
    """


@hookspec
def bioimageio_source_resolvers(register: SourceResolverRegister) -> None:
    """Register resolvers for source strings that are neither paths nor URLs (e.g. model ids).

    Call ``register.add(SourceResolverSpec(...))``. When a source given to ``load_description``
    (or any command) is neither an existing path nor an http(s) URL, the resolvers that
    ``claims`` it are asked in ``priority`` order; the first ``ResolvedSource`` wins, and the core
    downloads, caches and records it (so the same source resolves again offline). The built-in
    bioimage.io id and Hugging Face resolvers are registered through this hook too. Every
    implementation is called; registering a resolver name twice is an error.
    """


@hookspec
def bioimageio_image_io(register: ImageIORegister) -> None:
    """Register file formats for tensors (read, write, stream), selected by file suffix.

    Call ``register.add(ImageIOSpec(...))`` once per format. ``load_tensor``, ``save_tensor``,
    ``open_output_array`` and the ``predict`` command pick the format whose ``suffixes`` hold the
    file's suffix; the built-in formats are registered through this hook too. Every
    implementation is called; registering a name or a suffix twice is an error.
    """
