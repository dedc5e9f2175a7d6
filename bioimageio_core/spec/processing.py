"""Pre- and postprocessing steps of model 0.5 tensors: ``ProcessingStep(id, kwargs)``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal, NoReturn

import attrs

from bioimageio_core.references import file_name
from bioimageio_core.spec import _validators as v
from bioimageio_core.spec._convert import (
    KIND,
    Invalid,
    at,
    converter,
    current_extensions,
    describe,
    one_or_list,
    register_union,
    report,
    structure_value,
)
from bioimageio_core.spec.data import DType
from bioimageio_core.spec.issues import Loc

_EPS = v.bounds(gt=0, le=0.1)
_AXIS = v.identifier(16, keywords=False)


def _axes_field() -> Any:
    return attrs.field(default=None, validator=_AXIS, metadata={KIND: "axis_ids"})


def _axis_field(default: Any = attrs.NOTHING) -> Any:
    return attrs.field(default=default, validator=_AXIS, metadata={KIND: "axis_id"})


def _eps_field() -> Any:
    return attrs.field(default=1e-6, validator=_EPS)


@attrs.frozen(kw_only=True)
class BinarizeKwargs:
    threshold: float


@attrs.frozen(kw_only=True)
class BinarizeAlongAxisKwargs:
    threshold: tuple[float, ...] = attrs.field(validator=v.length(min=1))
    axis: str = _axis_field()


@attrs.frozen(kw_only=True)
class ClipKwargs:
    """Clip to [min, max]; a bound may be given as a percentile of the tensor's values instead."""

    min: float | None = None
    max: float | None = None
    min_percentile: float | None = attrs.field(default=None, validator=v.bounds(ge=0, lt=100))
    max_percentile: float | None = attrs.field(default=None, validator=v.bounds(gt=1, le=100))
    axes: tuple[str, ...] | None = _axes_field()

    def _issues(self) -> Iterator[tuple[Loc, str]]:
        if self.min is not None and self.min_percentile is not None:
            yield ("min_percentile",), "give either 'min' or 'min_percentile', not both"
        if self.max is not None and self.max_percentile is not None:
            yield ("max_percentile",), "give either 'max' or 'max_percentile', not both"
        if all(x is None for x in (self.min, self.max, self.min_percentile, self.max_percentile)):
            yield (), "clip needs at least one of 'min', 'max', 'min_percentile', 'max_percentile'"
        if self.min is not None and self.max is not None and self.min > self.max:
            yield ("max",), f"'max' must be >= 'min' ({self.min}) (got {self.max})"
        if (
            self.min_percentile is not None
            and self.max_percentile is not None
            and self.min_percentile >= self.max_percentile
        ):
            yield (
                ("max_percentile",),
                f"'max_percentile' must be > 'min_percentile' ({self.min_percentile}) (got {self.max_percentile})",
            )


@attrs.frozen(kw_only=True)
class EnsureDtypeKwargs:
    dtype: DType


@attrs.frozen(kw_only=True)
class FixedZeroMeanUnitVarianceKwargs:
    mean: float
    std: float = attrs.field(validator=v.bounds(ge=1e-6))


@attrs.frozen(kw_only=True)
class FixedZeroMeanUnitVarianceAlongAxisKwargs:
    mean: tuple[float, ...] = attrs.field(validator=v.length(min=1))
    std: tuple[float, ...] = attrs.field(validator=[v.length(min=1), v.bounds(ge=1e-6)])
    axis: str = _axis_field()

    def _issues(self) -> Iterator[tuple[Loc, str]]:
        if len(self.mean) != len(self.std):
            yield (
                ("std",),
                f"'mean' and 'std' must have the same length (got {len(self.mean)} and {len(self.std)})",
            )


@attrs.frozen(kw_only=True)
class ScaleLinearKwargs:
    gain: float = 1.0
    offset: float = 0.0

    def _issues(self) -> Iterator[tuple[Loc, str]]:
        if self.gain == 1.0 and self.offset == 0.0:
            yield (), "redundant scale_linear (gain 1, offset 0); remove the step"


Scalars = float | tuple[float, ...]


def _scalars(raw: Any) -> Scalars:
    result: Scalars = one_or_list(
        raw,
        tuple[float, ...],
        lambda one: converter.structure(one, float),
        "a number or a non-empty list of numbers",
    )
    return result


converter.register_structure_hook_func(lambda t: t == Scalars, lambda raw, _: _scalars(raw))


@attrs.frozen(kw_only=True)
class ScaleLinearAlongAxisKwargs:
    axis: str = _axis_field()
    gain: Scalars = 1.0
    offset: Scalars = 0.0

    def _issues(self) -> Iterator[tuple[Loc, str]]:
        if isinstance(self.gain, tuple) and isinstance(self.offset, tuple):
            if len(self.gain) != len(self.offset):
                yield (
                    ("offset",),
                    f"'gain' and 'offset' must have the same length (got {len(self.gain)} and {len(self.offset)})",
                )
        gains = self.gain if isinstance(self.gain, tuple) else (self.gain,)
        offsets = self.offset if isinstance(self.offset, tuple) else (self.offset,)
        if all(g == 1.0 for g in gains) and all(o == 0.0 for o in offsets):
            yield (), "redundant scale_linear (gain 1, offset 0); remove the step"


@attrs.frozen(kw_only=True)
class ScaleMeanVarianceKwargs:
    reference_tensor: str
    axes: tuple[str, ...] | None = _axes_field()
    eps: float = _eps_field()


@attrs.frozen(kw_only=True)
class ScaleRangeKwargs:
    axes: tuple[str, ...] | None = _axes_field()
    min_percentile: float = attrs.field(default=0.0, validator=v.bounds(ge=0, lt=100))
    max_percentile: float = attrs.field(default=100.0, validator=v.bounds(gt=1, le=100))
    eps: float = _eps_field()
    reference_tensor: str | None = None

    def _issues(self) -> Iterator[tuple[Loc, str]]:
        if self.min_percentile >= self.max_percentile:
            yield (
                ("max_percentile",),
                f"'max_percentile' must be > 'min_percentile' ({self.min_percentile}) (got {self.max_percentile})",
            )


@attrs.frozen(kw_only=True)
class SigmoidKwargs:
    pass


@attrs.frozen(kw_only=True)
class SoftmaxKwargs:
    axis: str = _axis_field("channel")


@attrs.frozen(kw_only=True)
class ZeroMeanUnitVarianceKwargs:
    axes: tuple[str, ...] | None = _axes_field()
    eps: float = _eps_field()


StardistBorder = int | tuple[tuple[int, int], ...]


def _border(raw: Any) -> StardistBorder:
    if isinstance(raw, list | tuple):
        result: tuple[tuple[int, int], ...] = converter.structure(raw, tuple[tuple[int, int], ...])
        return result
    value: int = converter.structure(raw, int)
    return value


converter.register_structure_hook_func(lambda t: t == StardistBorder, lambda raw, _: _border(raw))


def _stardist_issues(kwargs: Any) -> Iterator[tuple[Loc, str]]:
    if isinstance(kwargs.b, tuple) and len(kwargs.b) != len(kwargs.grid):
        yield (
            ("b",),
            f"'b' must be one border width or one [before, after] pair per spatial axis "
            f"({len(kwargs.grid)}) (got {len(kwargs.b)} pairs)",
        )


@attrs.frozen(kw_only=True)
class StardistPostprocessingKwargs2D:
    """StarDist 2D: non-maximum suppression of star-convex polygons, then instance labels.

    ``grid``: subsampling of the network output per spatial axis (y, x); ``b``: border width
    (one int, or ``[[y0, y1], [x0, x1]]``) where candidates are ignored.
    """

    prob_threshold: float = attrs.field(validator=v.bounds(ge=0, le=1))
    nms_threshold: float = attrs.field(validator=v.bounds(ge=0, le=1))
    n_rays: int = attrs.field(validator=v.bounds(ge=1))
    grid: tuple[int, int] = attrs.field(validator=v.bounds(ge=1))
    b: StardistBorder

    def _issues(self) -> Iterator[tuple[Loc, str]]:
        yield from _stardist_issues(self)


@attrs.frozen(kw_only=True)
class StardistPostprocessingKwargs3D:
    """StarDist 3D: non-maximum suppression of star-convex polyhedra, then instance labels.

    ``grid`` per spatial axis (z, y, x); ``anisotropy``: the physical pixel size per spatial axis
    (rays of the polyhedra); ``overlap_label``: label for regions where objects overlap.
    """

    prob_threshold: float = attrs.field(validator=v.bounds(ge=0, le=1))
    nms_threshold: float = attrs.field(validator=v.bounds(ge=0, le=1))
    n_rays: int = attrs.field(validator=v.bounds(ge=1))
    grid: tuple[int, int, int] = attrs.field(validator=v.bounds(ge=1))
    b: StardistBorder
    anisotropy: tuple[float, float, float] = attrs.field(validator=v.bounds(gt=0))
    overlap_label: int | None = None

    def _issues(self) -> Iterator[tuple[Loc, str]]:
        yield from _stardist_issues(self)


StardistPostprocessingKwargs = StardistPostprocessingKwargs2D | StardistPostprocessingKwargs3D
"""Kwargs of ``stardist_postprocessing``: the variant follows the length of ``grid``."""


def _stardist(raw: Any) -> StardistPostprocessingKwargs:
    grid = raw.get("grid") if isinstance(raw, Mapping) else None
    cls: Any
    if isinstance(grid, list | tuple) and len(grid) == 3:
        cls = StardistPostprocessingKwargs3D
    elif isinstance(grid, list | tuple) and len(grid) == 2:
        cls = StardistPostprocessingKwargs2D
    elif isinstance(raw, Mapping) and "grid" in raw:
        with at("grid"):
            report(f"must be 2 (2D: y, x) or 3 (3D: z, y, x) integers (got {describe(grid)})")
        raise Invalid
    else:
        cls = (
            StardistPostprocessingKwargs3D
            if "anisotropy" in raw
            else StardistPostprocessingKwargs2D
        )
    result: StardistPostprocessingKwargs = converter.structure(raw, cls)
    return result


register_union(StardistPostprocessingKwargs, _stardist)


@attrs.frozen(kw_only=True)
class CellposeFlowDynamicsKwargs:
    """Cellpose mask reconstruction from flows (``[flow_y, flow_x, cell_probability]`` channels).

    Pixels with a probability above ``cellprob_threshold`` follow the flow field to their sinks and
    form instances; masks whose flow error exceeds ``flow_threshold`` are dropped, and (after hole
    filling) so are masks smaller than ``min_size`` pixels (0: no size filter).
    """

    cellprob_threshold: float
    flow_threshold: float
    do_3D: bool
    min_size: int = 15
    output_dtype: Literal["uint16", "uint32"] = "uint16"


YAML_FILE_NAMES = ("bioimageio.yaml", "rdf.yaml", "model.yaml")


def is_description_file_name(source: str) -> bool:
    """Whether ``source`` names a description file (``rdf.yaml``, ``x.bioimageio.yaml`` …)."""
    name = file_name(source)
    return any(name == n or name.endswith("." + n) for n in YAML_FILE_NAMES)


@attrs.frozen(kw_only=True)
class CustomKwargs:
    """What a ``custom`` postprocessing step names: Python code shipped with the model.

    In YAML ``source``, ``sha256``, ``callable`` and ``kwargs`` sit on the step itself, next to
    ``id: custom``. At run time ``op = callable(**kwargs)`` is made once and applied to the
    tensor's data; running it needs the same consent as any code a description brings.
    """

    source: str = attrs.field(validator=v.length(min=1))
    sha256: str | None = attrs.field(default=None, validator=v.SHA256)
    callable: str = attrs.field(validator=v.length(min=1))
    kwargs: Mapping[str, Any] = attrs.Factory(dict)

    def _issues(self) -> Iterator[tuple[Loc, str]]:
        if is_description_file_name(self.source):
            yield (
                ("source",),
                f"'source' must be a Python file, not a description file name (got {self.source!r})",
            )


CUSTOM = "custom"


@attrs.frozen(kw_only=True)
class ProcessingStep:
    """One processing step: the op ``id`` and its kwargs (an attrs instance of the op's kwargs class)."""

    id: str
    kwargs: Any


BUILTIN_PROCESSING: dict[str, tuple[type, ...]] = {
    "binarize": (BinarizeKwargs, BinarizeAlongAxisKwargs),
    "clip": (ClipKwargs,),
    "ensure_dtype": (EnsureDtypeKwargs,),
    "fixed_zero_mean_unit_variance": (
        FixedZeroMeanUnitVarianceKwargs,
        FixedZeroMeanUnitVarianceAlongAxisKwargs,
    ),
    "scale_linear": (ScaleLinearKwargs, ScaleLinearAlongAxisKwargs),
    "scale_mean_variance": (ScaleMeanVarianceKwargs,),
    "scale_range": (ScaleRangeKwargs,),
    "sigmoid": (SigmoidKwargs,),
    "softmax": (SoftmaxKwargs,),
    "zero_mean_unit_variance": (ZeroMeanUnitVarianceKwargs,),
    "stardist_postprocessing": (StardistPostprocessingKwargs2D, StardistPostprocessingKwargs3D),
    "cellpose_flow_dynamics": (CellposeFlowDynamicsKwargs,),
    CUSTOM: (CustomKwargs,),
}
POSTPROCESSING_ONLY = frozenset(
    {"scale_mean_variance", "stardist_postprocessing", "cellpose_flow_dynamics", CUSTOM}
)


def kwargs_classes(op_id: str) -> tuple[type, ...] | None:
    """Kwargs classes for ``op_id``: built-ins first, then those of the active extensions."""
    if op_id in BUILTIN_PROCESSING:
        return BUILTIN_PROCESSING[op_id]
    extensions = current_extensions()
    if extensions is not None and op_id in extensions.processing:
        return tuple(extensions.processing[op_id])
    return None


def _choose(candidates: tuple[type, ...], raw: Mapping[str, Any]) -> type:
    """The first candidate whose required fields are present and which knows every given key."""
    keys = set(raw)
    for cls in candidates:
        if not attrs.has(cls):
            continue
        fields = attrs.fields(cls)
        names = {f.name for f in fields}
        required = {f.name for f in fields if f.default is attrs.NOTHING}
        if required <= keys <= names:
            return cls
    # prefer the candidate that shares the most keys, so its errors are the relevant ones
    return max(candidates, key=lambda c: len(keys & {f.name for f in attrs.fields(c)}))


def _step(raw: Any, _: Any) -> ProcessingStep:
    if not isinstance(raw, Mapping):
        raise TypeError(f"must be a processing step {{id: ..., kwargs: ...}} (got {describe(raw)})")
    op_id = raw.get("id")
    if not isinstance(op_id, str):
        with at("id"):
            report(f"must be a processing step id (got {describe(op_id)})")
        raise_invalid()
    if op_id == CUSTOM:
        fields = {k: v for k, v in raw.items() if k != "id"}
        return ProcessingStep(id=op_id, kwargs=structure_value(fields, CustomKwargs))
    candidates = kwargs_classes(op_id)
    unknown = sorted(set(raw) - {"id", "kwargs"})
    for key in unknown:
        report(f"unknown field '{key}'; a processing step has 'id' and 'kwargs'", at=(key,))
    if candidates is None:
        known = ", ".join(sorted(BUILTIN_PROCESSING))
        with at("id"):
            report(
                f"unknown processing step '{op_id}' (known: {known}); "
                "install the plugin that provides it",
            )
        raise_invalid()
    raw_kwargs = raw.get("kwargs", {})
    if raw_kwargs is None:
        raw_kwargs = {}
    if not isinstance(raw_kwargs, Mapping):
        with at("kwargs"):
            report(f"must be a mapping (got {describe(raw_kwargs)})")
        raise_invalid()
    with at("kwargs"):
        if op_id == "stardist_postprocessing":
            kwargs = structure_value(raw_kwargs, StardistPostprocessingKwargs)
        else:
            kwargs = structure_value(raw_kwargs, _choose(candidates, raw_kwargs))
    if unknown:
        raise_invalid()
    return ProcessingStep(id=op_id, kwargs=kwargs)


def raise_invalid() -> NoReturn:
    raise Invalid


def _unstructure_step(step: ProcessingStep) -> dict[str, Any]:
    out: dict[str, Any] = {"id": step.id}
    if isinstance(step.kwargs, CustomKwargs):
        out.update(converter.unstructure(step.kwargs))
        return out
    kwargs = converter.unstructure(step.kwargs)
    if kwargs:
        out["kwargs"] = kwargs
    return out


converter.register_structure_hook(ProcessingStep, _step)
converter.register_unstructure_hook(ProcessingStep, _unstructure_step)


def kwargs_axes(kwargs: Any) -> tuple[tuple[tuple[str | int, ...], str], ...]:
    """The axis ids a kwargs instance names, with their location in the kwargs.

    ``axes: [x, y]`` gives ``((("axes", 0), "x"), (("axes", 1), "y"))``; ``axis: c`` gives
    ``((("axis",), "c"),)``.
    """
    out: list[tuple[tuple[str | int, ...], str]] = []
    axes = getattr(kwargs, "axes", None)
    if isinstance(axes, tuple):
        out.extend((("axes", i), a) for i, a in enumerate(axes) if isinstance(a, str))
    axis = getattr(kwargs, "axis", None)
    if isinstance(axis, str):
        out.append((("axis",), axis))
    return tuple(out)
