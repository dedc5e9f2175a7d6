"""The test-model DSL: one definition of a small model, written as a 0.5 or an equivalent 0.4
description.

A :class:`ModelDef` names its tensors (:class:`TensorDef`: axis letters in array order, a test
array, how the space axes are sized — fixed, :class:`Param`\\ eterized or :class:`Ref`\\ erenced
with a scale — and a halo) and its weights (:class:`WeightsDef`: a file next to the description
and the format's other fields). :func:`model_description` returns the raw description (a dict, as
read from YAML), :func:`write_model` writes it with its test tensors and a README into a folder;
:func:`build_model` turns a raw description into a :class:`~bioimageio_core.spec.ModelDescr`
without IO, and :func:`make_request` gives the :class:`~bioimageio_core.plugin.AdapterRequest` a
backend's ``create_adapter`` receives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np
import yaml

from bioimageio_core.adapters import AdapterRequest, FileOpener
from bioimageio_core.settings import Settings
from bioimageio_core.sources import sha256_of_file
from bioimageio_core.spec import ModelDescr, SpecExtensions, build_description

FORMAT_VERSION = "0.5.4"
"""The format version of the 0.5 descriptions written here."""
FORMAT_VERSION_04 = "0.4.10"
"""The format version of the 0.4 descriptions written here."""
Version = Literal["0.5", "0.4"]

SPACE = "zyx"
"""Axis letters of space axes (sized by :attr:`TensorDef.size`, with a halo)."""
_LETTERS = "bcitzyx"


class InvalidTestDescription(AssertionError):
    """A test description did not build; ``issues`` holds what was wrong (as strings)."""

    def __init__(self, issues: Sequence[str]) -> None:
        super().__init__("invalid test description:\n" + "\n".join(f"  {i}" for i in issues))
        self.issues = tuple(issues)


def sha256_of(path: Path) -> str:
    """The sha256 hex digest of a file's bytes (read now: tests rewrite files in place)."""
    return sha256_of_file(path)


def file_entry(folder: Path, source: str, **fields: Any) -> dict[str, Any]:
    """A raw file reference to ``folder / source``: its source, sha256 and further ``fields``
    (e.g. an architecture's ``callable``, or a weights entry's fields)."""
    return {"source": source, "sha256": sha256_of(folder / source), **fields}


@attrs.frozen
class Param:
    """A parameterized size ``min + n * step`` of every space axis (inputs only)."""

    min: int
    step: int


@attrs.frozen
class Ref:
    """Space-axis sizes relative to another tensor: ``size = size of tensor * scale``.

    In a 0.5 description ``scale`` becomes the axis' physical scale ``1 / scale`` (the referenced
    tensor's axes have scale 1); in 0.4 it is the shape's ``scale``.
    """

    tensor: str
    scale: float = 1.0


@attrs.frozen(eq=False)  # holds arrays
class TensorDef:
    """One input or output tensor.

    ``axes`` are letters in array order: ``b`` batch, ``c`` channel (named ``c0``, ``c1``, …),
    ``i`` index, ``t`` time, ``z``/``y``/``x`` space. ``test`` is the test array (written next to
    the description); without one, ``shape`` gives the sizes (None entries: any size).
    ``size`` sizes the space axes: None fixes them at the test array's (or ``shape``'s) sizes.
    ``halo`` is in this tensor's pixels, on every space axis (outputs). ``dtype`` defaults to the
    test array's dtype, else ``float32``; ``batch`` fixes the batch size.
    """

    id: str
    axes: str
    test: np.ndarray[Any, Any] | None = None
    size: Param | Ref | None = None
    halo: int = 0
    dtype: str | None = None
    batch: int | None = None
    shape: tuple[int | None, ...] | None = None

    def __attrs_post_init__(self) -> None:
        unknown = sorted(set(self.axes) - set(_LETTERS))
        if unknown:
            raise ValueError(f"tensor {self.id!r}: unknown axis letters {unknown} (use b, c, i, t, z, y, x)")
        sizes = self.sizes
        if len(sizes) != len(self.axes):
            raise ValueError(f"tensor {self.id!r}: axes {self.axes!r} do not fit shape {sizes}")

    @property
    def sizes(self) -> tuple[int | None, ...]:
        """The size of each axis: the test array's shape, else ``shape``, else free."""
        if self.test is not None:
            return tuple(int(n) for n in self.test.shape)
        if self.shape is not None:
            return tuple(self.shape)
        return (None,) * len(self.axes)

    def size_of(self, letter: str) -> int | None:
        return self.sizes[self.axes.index(letter)]

    def channels(self) -> int:
        """The number of channels (1 without a channel axis)."""
        return int(self.size_of("c") or 1) if "c" in self.axes else 1

    @property
    def data_type(self) -> str:
        if self.dtype is not None:
            return self.dtype
        return "float32" if self.test is None else str(self.test.dtype)


@attrs.frozen
class WeightsDef:
    """One weights entry: its file (next to the description) and the format's other fields
    (``v05``; ``v04`` for the 0.4 description, the same as ``v05`` when None). The sha256 of the
    file is added when the file exists in the folder."""

    format: str
    source: str
    v05: Mapping[str, Any] = attrs.field(factory=dict)
    v04: Mapping[str, Any] | None = None

    def raw(self, folder: Path, version: Version) -> dict[str, Any]:
        fields = self.v05 if version == "0.5" or self.v04 is None else self.v04
        entry: dict[str, Any] = {"source": self.source}
        if (folder / self.source).is_file():
            entry["sha256"] = sha256_of(folder / self.source)
        return {**entry, **fields}


@attrs.frozen(eq=False)  # holds arrays
class ModelDef:
    """A model: its tensors, weights and further top-level ``fields`` (``config``, …)."""

    name: str
    inputs: tuple[TensorDef, ...]
    outputs: tuple[TensorDef, ...]
    weights: tuple[WeightsDef, ...]
    fields: Mapping[str, Any] = attrs.field(factory=dict)

    def tensor(self, tensor_id: str) -> TensorDef:
        (found,) = [t for t in (*self.inputs, *self.outputs) if t.id == tensor_id]
        return found

    @classmethod
    def from_arrays(
        cls,
        name: str,
        inputs: Mapping[str, np.ndarray[Any, Any]],
        outputs: Mapping[str, np.ndarray[Any, Any]],
        weights: Sequence[WeightsDef],
        *,
        letters: str,
        **fields: Any,
    ) -> ModelDef:
        """A model of fixed-size tensors, test arrays by tensor id, all with axes ``letters``."""
        return cls(
            name,
            tuple(TensorDef(tid, letters, a) for tid, a in inputs.items()),
            tuple(TensorDef(tid, letters, a) for tid, a in outputs.items()),
            tuple(weights),
            fields,
        )


def axes(
    letters: str,
    shape: Sequence[int | Mapping[str, Any] | None],
    *,
    batch_size: int | None = None,
) -> list[dict[str, Any]]:
    """Raw 0.5 axes for axis letters and sizes, e.g. ``axes("byxc", array.shape)``.

    Letters as for :class:`TensorDef`; the size of ``b`` is ignored (``batch_size`` fixes it). A
    size is an int (fixed), a raw size mapping (``{"min": 64, "step": 16}``, a size reference), or
    None: any size (``{"min": 1, "step": 1}``; inputs only).
    """
    if len(letters) != len(shape):
        raise ValueError(f"axes {letters!r} do not fit shape {tuple(shape)}")
    result: list[dict[str, Any]] = []
    for letter, size in zip(letters, shape, strict=True):
        free: Any = {"min": 1, "step": 1} if size is None else size
        if isinstance(free, int | np.integer):
            free = int(free)
        elif isinstance(free, Mapping):
            free = dict(free)
        if letter == "b":
            axis: dict[str, Any] = {"type": "batch"}
            if batch_size is not None:
                axis["size"] = batch_size
        elif letter == "c":
            if not isinstance(size, int | np.integer):
                raise ValueError("a channel axis needs a size (the number of channels)")
            axis = {"type": "channel", "channel_names": [f"c{i}" for i in range(int(size))]}
        elif letter == "i":
            axis = {"type": "index", "size": free}
        elif letter == "t":
            axis = {"type": "time", "id": "t", "size": free}
        elif letter in SPACE:
            axis = {"type": "space", "id": letter, "size": free}
        else:
            raise ValueError(
                f"unknown axis letter {letter!r} in {letters!r} (use b, c, i, t, z, y, x)"
            )
        result.append(axis)
    return result


# ---- writing -----------------------------------------------------------------------------------


def _test_file(role: str, tensor_id: str) -> str:
    return f"{role}_{tensor_id}.npy"


def model_description(
    folder: Path, model: ModelDef, version: Version = "0.5", *, wrong_output: str | None = None
) -> dict[str, Any]:
    """The raw description of ``model`` in ``version``; its test tensors (``in_<id>.npy``,
    ``out_<id>.npy``) and a README are written into ``folder``.

    With ``wrong_output`` the test tensor of that output is written off by one (its sha256 is
    that of the written file, so only the numbers are wrong).
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text(f"# {model.name}\n\nA test model of bioimageio-run.\n")
    files: dict[tuple[str, str], str] = {}
    for role, tensors in (("in", model.inputs), ("out", model.outputs)):
        for t in tensors:
            if t.test is None:
                continue
            name = _test_file(role, t.id)
            np.save(folder / name, t.test + 1 if t.id == wrong_output and role == "out" else t.test)
            files[role, t.id] = name
    common = {
        "type": "model",
        "name": model.name,
        "description": f"{model.name}, a test model",
        "authors": [{"name": "bioimageio-run developers"}],
        "cite": [{"text": "bioimageio-run", "url": "https://example.com/"}],
        "license": "MIT",
        "documentation": "README.md",
    }
    weights = {w.format: w.raw(folder, version) for w in model.weights}
    if version == "0.5":
        raw = {
            "format_version": FORMAT_VERSION,
            **common,
            "inputs": [_tensor_v05(folder, t, files.get(("in", t.id))) for t in model.inputs],
            "outputs": [_tensor_v05(folder, t, files.get(("out", t.id))) for t in model.outputs],
            "weights": weights,
        }
    else:
        raw = {
            "format_version": FORMAT_VERSION_04,
            **common,
            "timestamp": "2024-01-01T00:00:00",
            "inputs": [_input_v04(model, t) for t in model.inputs],
            "outputs": [_output_v04(t) for t in model.outputs],
            "test_inputs": [files["in", t.id] for t in model.inputs],
            "test_outputs": [files["out", t.id] for t in model.outputs],
            "weights": weights,
        }
    return {**raw, **model.fields}


def write_model(
    folder: Path, model: ModelDef, version: Version = "0.5", *, wrong_output: str | None = None
) -> Path:
    """Write ``model`` (test tensors, README, description in ``version``) into ``folder``;
    returns the description's path (:func:`description_path`)."""
    raw = model_description(folder, model, version, wrong_output=wrong_output)
    path = description_path(folder, version)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def description_path(folder: Path, version: Version) -> Path:
    """Where :func:`write_model` writes the description of ``version`` in ``folder``."""
    return folder / ("rdf.yaml" if version == "0.5" else "v0_4.rdf.yaml")


# ---- 0.5 ---------------------------------------------------------------------------------------


def _tensor_v05(folder: Path, t: TensorDef, test_file: str | None) -> dict[str, Any]:
    sizes: list[int | Mapping[str, Any] | None] = []
    for letter, size in zip(t.axes, t.sizes, strict=True):
        if letter not in SPACE or t.size is None:
            sizes.append(size)
        elif isinstance(t.size, Param):
            sizes.append({"min": t.size.min, "step": t.size.step})
        else:
            sizes.append({"tensor_id": t.size.tensor, "axis_id": letter})
    raw_axes = axes(t.axes, sizes, batch_size=t.batch)
    for letter, axis in zip(t.axes, raw_axes, strict=True):
        if letter in SPACE:
            if isinstance(t.size, Ref) and t.size.scale != 1:
                axis["scale"] = 1 / t.size.scale
            if t.halo:
                axis["halo"] = t.halo
    entry: dict[str, Any] = {"id": t.id, "axes": raw_axes}
    if test_file is not None:
        entry["test_tensor"] = {"source": test_file, "sha256": sha256_of(folder / test_file)}
    entry["data"] = {"type": t.data_type}
    return entry


# ---- 0.4 ---------------------------------------------------------------------------------------


def _fixed(t: TensorDef, letter: str) -> int:
    if letter == "b":
        return t.batch or 1
    size = t.size_of(letter)
    if size is None:
        raise ValueError(f"0.4 descriptions need a size for axis {letter!r} of {t.id!r}")
    return size


def _input_v04(model: ModelDef, t: TensorDef) -> dict[str, Any]:
    size = t.size
    if isinstance(size, Ref):  # 0.4 inputs cannot reference each other: same parameterization
        referenced = model.tensor(size.tensor).size
        if size.scale != 1 or isinstance(referenced, Ref):
            raise ValueError(f"input {t.id!r}: 0.4 inputs cannot reference scaled tensors")
        size = referenced
    shape: Any
    if isinstance(size, Param):
        shape = {
            "min": [size.min if a in SPACE else _fixed(t, a) for a in t.axes],
            "step": [size.step if a in SPACE else 0 for a in t.axes],
        }
    else:
        shape = [_fixed(t, a) for a in t.axes]
    return {"name": t.id, "axes": t.axes, "data_type": t.data_type, "shape": shape}


def _output_v04(t: TensorDef) -> dict[str, Any]:
    out: dict[str, Any] = {"name": t.id, "axes": t.axes, "data_type": t.data_type}
    if isinstance(t.size, Ref):
        scale = t.size.scale
        out["shape"] = {
            "reference_tensor": t.size.tensor,
            "scale": [scale if a in SPACE else (0.0 if a == "c" else 1.0) for a in t.axes],
            "offset": [t.channels() / 2 if a == "c" else 0.0 for a in t.axes],
        }
    else:
        out["shape"] = [_fixed(t, a) for a in t.axes]
    if t.halo:
        out["halo"] = [t.halo if a in SPACE else 0 for a in t.axes]
    return out


# ---- building ----------------------------------------------------------------------------------


def build_model(
    raw: Mapping[str, Any],
    root: object,
    *,
    extensions: SpecExtensions | None = None,
    allow_warnings: bool = True,
) -> ModelDescr:
    """The :class:`ModelDescr` of ``raw`` (built without IO) with ``root`` set.

    ``root`` is what relative references resolve against (a folder ``Path``, a
    :data:`~bioimageio_core.sources.Root`, or a URL base). ``extensions`` makes plugin-defined
    weight formats known. Raises :class:`InvalidTestDescription` listing the issues when the
    description is invalid (or has warnings, unless ``allow_warnings``).
    """
    result = build_description(raw, extensions=extensions)
    issues = result.issues if not allow_warnings else result.errors
    if not isinstance(result.descr, ModelDescr) or issues:
        raise InvalidTestDescription([str(i) for i in result.issues] or ["not a model"])
    return attrs.evolve(result.descr, root=root)


def make_request(
    model: ModelDescr,
    weights_format: str,
    devices: Sequence[str] | None = None,
    *,
    settings: Settings | None = None,
    open_file: FileOpener | None = None,
) -> AdapterRequest[Any]:
    """An :class:`AdapterRequest` for ``model`` and one of its weight formats
    (:meth:`AdapterRequest.for_model`: files open relative to ``model.root``, sha256 checked,
    unless ``open_file`` is given; ``settings`` default to the current ones)."""
    return AdapterRequest.for_model(
        model, weights_format, devices=devices, settings=settings, open_file=open_file
    )
