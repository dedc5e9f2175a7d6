"""Weights entries of model 0.5 descriptions, keyed by weight format in file order."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal, TypeVar

import attrs

from bioimageio_core.references import file_name
from bioimageio_core.spec import _convert as c
from bioimageio_core.spec import _validators as v
from bioimageio_core.spec.generic import Author, FileDescr, version_field
from bioimageio_core.spec.issues import Loc

_SOURCE = v.length(min=1)
E = TypeVar("E")


@attrs.frozen(kw_only=True)
class ArchitectureFromFileDescr:
    """A callable defined in a Python file shipped with the model."""

    source: str = attrs.field(validator=_SOURCE)
    callable: str = attrs.field(
        validator=v.matches(r"[A-Za-z_][A-Za-z0-9_]*", "a Python identifier")
    )
    sha256: str | None = attrs.field(default=None, validator=v.SHA256)
    kwargs: Mapping[str, Any] = attrs.Factory(dict)


@attrs.frozen(kw_only=True)
class ArchitectureFromLibraryDescr:
    """A callable imported from an installed package."""

    import_from: str = attrs.field(validator=v.length(min=1))
    callable: str = attrs.field(
        validator=v.matches(r"[A-Za-z_][A-Za-z0-9_]*", "a Python identifier")
    )
    kwargs: Mapping[str, Any] = attrs.Factory(dict)


ArchitectureDescr = ArchitectureFromFileDescr | ArchitectureFromLibraryDescr


def _architecture(raw: Any) -> ArchitectureDescr:
    if not isinstance(raw, Mapping):
        raise TypeError(
            f"must be {{source, callable, sha256, kwargs}} or {{import_from, callable, kwargs}} (got {c.describe(raw)})"
        )
    cls: type = ArchitectureFromLibraryDescr if "import_from" in raw else ArchitectureFromFileDescr
    result: ArchitectureDescr = c.converter.structure(raw, cls)
    return result


c.register_union(ArchitectureDescr, _architecture)


@attrs.frozen(kw_only=True)
class WeightsEntryDescrBase:
    """Fields every weights entry has."""

    source: str = attrs.field(validator=_SOURCE)
    sha256: str | None = attrs.field(default=None, validator=v.SHA256)
    authors: tuple[Author, ...] | None = None
    parent: str | None = None
    comment: str = ""


@attrs.frozen(kw_only=True)
class PytorchStateDictWeightsDescr(WeightsEntryDescrBase):
    architecture: ArchitectureDescr
    pytorch_version: str = version_field()
    dependencies: FileDescr | None = None
    strict: bool = True
    """Load the state dict strictly (missing or unexpected keys are errors); False: warnings."""


@attrs.frozen(kw_only=True)
class TorchscriptWeightsDescr(WeightsEntryDescrBase):
    pytorch_version: str = version_field()


@attrs.frozen(kw_only=True)
class OnnxWeightsDescr(WeightsEntryDescrBase):
    opset_version: int = attrs.field(validator=v.bounds(ge=7))
    external_data: FileDescr | None = None


@attrs.frozen(kw_only=True)
class TensorflowSavedModelBundleWeightsDescr(WeightsEntryDescrBase):
    tensorflow_version: str = version_field()
    dependencies: FileDescr | None = None


@attrs.frozen(kw_only=True)
class KerasHdf5WeightsDescr(WeightsEntryDescrBase):
    tensorflow_version: str = version_field()


@attrs.frozen(kw_only=True)
class TensorflowJsWeightsDescr(WeightsEntryDescrBase):
    tensorflow_version: str = version_field()


KERAS_V3 = "keras_v3"
KerasBackendName = Literal["tensorflow", "jax", "torch"]
KERAS_BACKENDS: tuple[KerasBackendName, ...] = ("tensorflow", "jax", "torch")


def _backend(raw: Any, _: Any) -> tuple[KerasBackendName, str]:
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        raise TypeError(
            "must be a list [name, version] such as [torch, '2.3.0'], name one of "
            f"{', '.join(KERAS_BACKENDS)} (got {c.describe(raw)})"
        )
    name, version = raw
    failed = False
    with c.at(0):
        if name not in KERAS_BACKENDS:
            c.report(
                f"must be one of {', '.join(repr(b) for b in KERAS_BACKENDS)} (got {c.describe(name)})"
            )
            failed = True
    with c.at(1):
        text = (
            str(version)
            if isinstance(version, int | float) and not isinstance(version, bool)
            else version
        )
        if not isinstance(text, str) or v.release(text) is None:
            c.report(f"must be the backend's version such as '2.3.0' (got {c.describe(version)})")
            failed = True
    if failed:
        raise c.Invalid
    return name, text


c.converter.register_structure_hook_func(lambda t: t == tuple[KerasBackendName, str], _backend)


@attrs.frozen(kw_only=True)
class KerasV3WeightsDescr(WeightsEntryDescrBase):
    """A Keras 3 model saved with ``model.save("….keras")`` (model format 0.5.8+).

    ``backend`` is the Keras backend (name, version) the file was written with; ``source`` must
    end in ``.keras``.
    """

    keras_version: str = version_field(min_major=3)
    backend: tuple[KerasBackendName, str]

    def _issues(self) -> Iterator[tuple[Loc, str]]:
        if not file_name(self.source).endswith(".keras"):
            yield ("source",), f"'source' must be a '.keras' file (got {self.source!r})"


@attrs.frozen(kw_only=True)
class UnknownWeightsDescr:
    """An entry of a weight format no installed plugin knows; kept as written."""

    format: str
    source: str | None
    sha256: str | None
    raw: Mapping[str, Any]

    @property
    def parent(self) -> str | None:
        parent = self.raw.get("parent")
        return parent if isinstance(parent, str) else None


BUILTIN_WEIGHT_FORMATS: dict[str, type] = {
    "keras_hdf5": KerasHdf5WeightsDescr,
    KERAS_V3: KerasV3WeightsDescr,
    "onnx": OnnxWeightsDescr,
    "pytorch_state_dict": PytorchStateDictWeightsDescr,
    "tensorflow_js": TensorflowJsWeightsDescr,
    "tensorflow_saved_model_bundle": TensorflowSavedModelBundleWeightsDescr,
    "torchscript": TorchscriptWeightsDescr,
}


@attrs.frozen
class WeightsDescr:
    """The weights entries by format name, in file order."""

    formats: Mapping[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.formats[name]

    def __contains__(self, name: object) -> bool:
        return name in self.formats

    def __iter__(self) -> Iterator[str]:
        return iter(self.formats)

    def __len__(self) -> int:
        return len(self.formats)

    def get(self, name: str) -> Any:
        return self.formats.get(name)

    @property
    def available_formats(self) -> tuple[str, ...]:
        return tuple(self.formats)

    @property
    def pytorch_state_dict(self) -> PytorchStateDictWeightsDescr | None:
        return self._known("pytorch_state_dict", PytorchStateDictWeightsDescr)

    @property
    def torchscript(self) -> TorchscriptWeightsDescr | None:
        return self._known("torchscript", TorchscriptWeightsDescr)

    @property
    def onnx(self) -> OnnxWeightsDescr | None:
        return self._known("onnx", OnnxWeightsDescr)

    @property
    def tensorflow_saved_model_bundle(self) -> TensorflowSavedModelBundleWeightsDescr | None:
        return self._known("tensorflow_saved_model_bundle", TensorflowSavedModelBundleWeightsDescr)

    @property
    def keras_hdf5(self) -> KerasHdf5WeightsDescr | None:
        return self._known("keras_hdf5", KerasHdf5WeightsDescr)

    @property
    def keras_v3(self) -> KerasV3WeightsDescr | None:
        return self._known(KERAS_V3, KerasV3WeightsDescr)

    @property
    def tensorflow_js(self) -> TensorflowJsWeightsDescr | None:
        return self._known("tensorflow_js", TensorflowJsWeightsDescr)

    def _known(self, name: str, cls: type[E]) -> E | None:
        entry = self.formats.get(name)
        return entry if isinstance(entry, cls) else None


def entry_class(name: str) -> type | None:
    """The class parsing weights entries of format ``name`` (extensions first, then built-ins)."""
    extensions = c.current_extensions()
    if extensions is not None and name in extensions.weight_formats:
        cls: type = extensions.weight_formats[name]
        return cls
    return BUILTIN_WEIGHT_FORMATS.get(name)


def _weights(raw: Any, _: Any) -> WeightsDescr:
    if not isinstance(raw, Mapping):
        raise TypeError(f"must be a mapping of weight format to entry (got {c.describe(raw)})")
    formats: dict[str, Any] = {}
    failed = False
    for name, entry in raw.items():
        if entry is None:  # `format: null` means absent
            continue
        with c.at(str(name)):
            cls = entry_class(str(name))
            if cls is None:
                if not isinstance(entry, Mapping):
                    c.report(f"must be a weights entry mapping (got {c.describe(entry)})")
                    failed = True
                    continue
                source = entry.get("source")
                sha = entry.get("sha256")
                c.report(
                    f"unknown weight format '{name}' (kept; a plugin may provide it). "
                    f"Built-in formats: {', '.join(sorted(BUILTIN_WEIGHT_FORMATS))}",
                    severity="warning",
                    type="unknown_weight_format",
                )
                formats[str(name)] = UnknownWeightsDescr(
                    format=str(name),
                    source=source if isinstance(source, str) else None,
                    sha256=sha if isinstance(sha, str) else None,
                    raw=dict(entry),
                )
                continue
            try:
                formats[str(name)] = c.structure_value(entry, cls)
            except c.Invalid:
                failed = True
    if failed:
        raise c.Invalid
    return WeightsDescr(formats=formats)


def _unstructure_weights(weights: WeightsDescr) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, entry in weights.formats.items():
        out[name] = (
            dict(entry.raw)
            if isinstance(entry, UnknownWeightsDescr)
            else c.converter.unstructure(entry)
        )
    return out


c.converter.register_structure_hook(WeightsDescr, _weights)
c.converter.register_unstructure_hook(WeightsDescr, _unstructure_weights)
