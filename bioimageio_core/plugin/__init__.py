"""The one door for plugin authors: everything a bioimageio-run plugin imports from the core.

A plugin is a module of hook implementations named by an entry point in the group
``bioimageio_core``::

    # pyproject.toml
    [project.entry-points.bioimageio_core]
    my_plugin = "my_package.plugin"

    # my_package/plugin.py
    from bioimageio_core.plugin import WeightFormatRegister, WeightFormatSpec, hookimpl

    @hookimpl
    def bioimageio_weight_formats(register: WeightFormatRegister) -> None:
        register.add(WeightFormatSpec("my_format", MyWeightsDescr, create_adapter, is_available))

What is here, by concept:

* **Hooks and registers** — :data:`hookimpl`; one register and spec per hook:
  weight formats (:class:`WeightFormatSpec`), processing ops (:class:`OpSpec`,
  :class:`OpTarget`, :class:`OpContext`), weight converters (:class:`ConverterSpec`), source
  resolvers (:class:`SourceResolverSpec`, :class:`ResolvedSource`) and tensor file formats
  (:class:`ImageIOSpec`, :class:`FileLocation`, :class:`RawArray`).
* **Model adapters** — :class:`ModelAdapter` (``forward``, ``unload``), built from an
  :class:`AdapterRequest` (the model, its weights entry, devices, ``open_file``, settings, and
  :meth:`AdapterRequest.require_code_consent`, the one consent check for code a model brings).
* **Backend helpers** — :func:`missing_module` (an ``is_available`` that imports nothing),
  :func:`import_framework`, :func:`parse_device` /
  :func:`single_device` (:class:`Device`), :func:`match_tensors`, :func:`model_file`,
  :func:`link_or_copy`, :func:`extract_all`, :func:`sha256_of_file`, :func:`download`,
  :func:`is_http_url`, :func:`file_name` (of a reference);
  for converters :func:`preprocessed_test_inputs`; for library callables a description names
  :func:`import_library_callable` / :func:`check_library_object`.
* **Descriptions** — :class:`ModelDescr`, :class:`WeightsEntryDescrBase` (subclass it for a new
  weights entry), :func:`version_field`, the built-in weights-entry classes, and the whole data
  model as :mod:`spec <bioimageio_core.spec>`; where a description came from, its ``root``
  (:data:`Root`: :class:`FolderRoot`, :class:`ZipRoot`, :class:`UrlRoot`; a local copy of a
  fetched description keeps that in ``origin``, so its code stays untrusted).
* **Data** — :class:`Tensor` (numpy array + axis ids) and the measures ops ask statistics with
  (:class:`SampleMean` … :class:`DatasetQuantile`; values are :data:`MeasureValue`).
* **Errors** — :class:`BioimageioError` and its subclasses a plugin raises; their field path is a
  :data:`Loc` (``("weights", "onnx", "source")``, written ``$.weights.onnx.source`` by
  :func:`loc_to_path`).
* **Settings** — :class:`Settings`, :func:`get_settings`.
* **What the core sees** — :mod:`registry <bioimageio_core.plugins>` (``weight_formats()``,
  ``choose_weight_format()``, ``create_manager(settings, extra_plugins=…)`` …).
* **Testing** — :mod:`bioimageio_core.plugin.testing` (imports pytest): test models written as
  0.5 and 0.4 descriptions, plugin checks, and :class:`~bioimageio_core.plugin.testing.
  BackendConformance`, the end-to-end battery a backend's tests subclass.

Importing this module imports no deep-learning framework (and nothing a plugin module should not
import when the core loads it).
"""

from __future__ import annotations

from bioimageio_core import plugins as registry
from bioimageio_core import spec
from bioimageio_core.adapters import AdapterRequest, FileOpener, ModelAdapter, model_file
from bioimageio_core.backend_utils import (
    Device,
    fit_input,
    import_framework,
    link_or_copy,
    match_tensors,
    missing_module,
    parse_device,
    single_device,
    unloaded_error,
)
from bioimageio_core.consent import (
    CodeOrigin,
    check_library_object,
    exec_code_file,
    import_library_callable,
)
from bioimageio_core.conversion import preprocessed_test_inputs
from bioimageio_core.errors import (
    BioimageioError,
    CodeRefusedError,
    HashMismatchError,
    InputError,
    Loc,
    NetworkError,
    OfflineError,
    PluginError,
    RemoteCodeError,
    SourceError,
    UnresolvedSourceError,
    UnsupportedWeightFormatError,
    loc_to_path,
)
from bioimageio_core.hookspecs import (
    PROJECT_NAME,
    ConverterRegister,
    ConverterSpec,
    ConvertWeights,
    ImageIORegister,
    ImageIOSpec,
    OpContext,
    OpRegister,
    OpSpec,
    OpTarget,
    ResolvedSource,
    SourceResolverRegister,
    SourceResolverSpec,
    WeightFormatRegister,
    WeightFormatSpec,
    hookimpl,
)
from bioimageio_core.io import Existing, FileLocation, RawArray
from bioimageio_core.references import file_name, is_http_url
from bioimageio_core.settings import Settings, get_settings
from bioimageio_core.shapes import AxisShape, TensorShape
from bioimageio_core.sources import (
    FolderRoot,
    Root,
    UrlRoot,
    ZipRoot,
    download,
    sha256_of_file,
)
from bioimageio_core.sources.zips import extract_all
from bioimageio_core.spec import (
    KerasHdf5WeightsDescr,
    KerasV3WeightsDescr,
    ModelDescr,
    OnnxWeightsDescr,
    PytorchStateDictWeightsDescr,
    TensorflowSavedModelBundleWeightsDescr,
    TorchscriptWeightsDescr,
    WeightsEntryDescrBase,
    version_field,
)
from bioimageio_core.stats import (
    DatasetMean,
    DatasetQuantile,
    DatasetStd,
    DatasetVar,
    Measure,
    MeasureValue,
    SampleMean,
    SampleQuantile,
    SampleStd,
    SampleVar,
)
from bioimageio_core.tensor import Tensor

ENTRY_POINT_GROUP = PROJECT_NAME
"""The entry-point group (and pluggy project name) plugins are found under."""

__all__ = [
    "ENTRY_POINT_GROUP",
    "FolderRoot",
    "Root",
    "UrlRoot",
    "ZipRoot",
    "AdapterRequest",
    "AxisShape",
    "BioimageioError",
    "CodeOrigin",
    "CodeRefusedError",
    "ConvertWeights",
    "ConverterRegister",
    "ConverterSpec",
    "DatasetMean",
    "DatasetQuantile",
    "DatasetStd",
    "DatasetVar",
    "Device",
    "Existing",
    "FileLocation",
    "FileOpener",
    "HashMismatchError",
    "Loc",
    "ImageIORegister",
    "ImageIOSpec",
    "InputError",
    "KerasHdf5WeightsDescr",
    "KerasV3WeightsDescr",
    "Measure",
    "MeasureValue",
    "ModelAdapter",
    "ModelDescr",
    "NetworkError",
    "OfflineError",
    "OnnxWeightsDescr",
    "OpContext",
    "OpRegister",
    "OpSpec",
    "OpTarget",
    "PluginError",
    "PytorchStateDictWeightsDescr",
    "RawArray",
    "RemoteCodeError",
    "ResolvedSource",
    "SampleMean",
    "SampleQuantile",
    "SampleStd",
    "SampleVar",
    "Settings",
    "SourceError",
    "SourceResolverRegister",
    "SourceResolverSpec",
    "Tensor",
    "TensorShape",
    "TensorflowSavedModelBundleWeightsDescr",
    "TorchscriptWeightsDescr",
    "UnresolvedSourceError",
    "UnsupportedWeightFormatError",
    "WeightFormatRegister",
    "WeightFormatSpec",
    "WeightsEntryDescrBase",
    "check_library_object",
    "download",
    "exec_code_file",
    "extract_all",
    "get_settings",
    "hookimpl",
    "import_framework",
    "import_library_callable",
    "file_name",
    "fit_input",
    "is_http_url",
    "loc_to_path",
    "link_or_copy",
    "match_tensors",
    "missing_module",
    "model_file",
    "parse_device",
    "preprocessed_test_inputs",
    "registry",
    "sha256_of_file",
    "single_device",
    "spec",
    "unloaded_error",
    "version_field",
]
