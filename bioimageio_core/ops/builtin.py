"""The built-in processing ops, registered through the same hook a third-party plugin uses."""

from __future__ import annotations

from bioimageio_core.hookspecs import OpRegister, OpSpec, hookimpl
from bioimageio_core.ops import elementwise, normalize, stardist


def _kwargs_classes(*names: str) -> tuple[type, ...]:
    """The kwargs classes of :mod:`bioimageio_core.spec` with these names (those that exist)."""
    from bioimageio_core import spec

    found = (getattr(spec, name, None) for name in names)
    return tuple(c for c in found if isinstance(c, type))


def builtin_op_specs() -> tuple[OpSpec, ...]:
    """Specs of every built-in op."""
    return (
        OpSpec("binarize", _kwargs_classes("BinarizeKwargs", "BinarizeAlongAxisKwargs"),
               elementwise.binarize),
        OpSpec("clip", _kwargs_classes("ClipKwargs"), normalize.clip,
               normalize.clip_required_measures),
        OpSpec("ensure_dtype", _kwargs_classes("EnsureDtypeKwargs"), elementwise.ensure_dtype),
        OpSpec("fixed_zero_mean_unit_variance",
               _kwargs_classes("FixedZeroMeanUnitVarianceKwargs",
                               "FixedZeroMeanUnitVarianceAlongAxisKwargs"),
               elementwise.fixed_zero_mean_unit_variance),
        OpSpec("scale_linear", _kwargs_classes("ScaleLinearKwargs", "ScaleLinearAlongAxisKwargs"),
               elementwise.scale_linear),
        OpSpec("scale_mean_variance", _kwargs_classes("ScaleMeanVarianceKwargs"),
               normalize.scale_mean_variance, normalize.smv_required_measures),
        OpSpec("scale_range", _kwargs_classes("ScaleRangeKwargs"), normalize.scale_range,
               normalize.scale_range_required_measures),
        OpSpec("sigmoid", _kwargs_classes("SigmoidKwargs"), elementwise.sigmoid),
        OpSpec("softmax", _kwargs_classes("SoftmaxKwargs"), elementwise.softmax),
        OpSpec("zero_mean_unit_variance", _kwargs_classes("ZeroMeanUnitVarianceKwargs"),
               normalize.zero_mean_unit_variance, normalize.zmuv_required_measures),
        OpSpec("stardist_postprocessing", _kwargs_classes("StardistPostprocessingKwargs"),
               stardist.stardist_postprocessing, is_available=stardist.stardist_available,
               install_hint=stardist.INSTALL_HINT),
    )


@hookimpl
def bioimageio_processing_ops(register: OpRegister) -> None:
    for spec in builtin_op_specs():
        register.add(spec)
