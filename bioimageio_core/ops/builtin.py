"""The built-in processing ops, registered through the same hook a third-party plugin uses."""

from __future__ import annotations

from bioimageio_core.hookspecs import OpRegister, OpSpec, hookimpl
from bioimageio_core.ops import cellpose, custom, elementwise, normalize, stardist
from bioimageio_core.spec import BUILTIN_PROCESSING


def _kwargs(op_id: str) -> tuple[type, ...]:
    """The kwargs classes :mod:`bioimageio_core.spec` defines for a built-in op."""
    return BUILTIN_PROCESSING[op_id]


def builtin_op_specs() -> tuple[OpSpec, ...]:
    """Specs of every built-in op."""
    return (
        OpSpec("binarize", _kwargs("binarize"),
               elementwise.binarize, pointwise=True),
        OpSpec("clip", _kwargs("clip"), normalize.clip,
               normalize.clip_required_measures, pointwise=True),
        OpSpec("ensure_dtype", _kwargs("ensure_dtype"), elementwise.ensure_dtype,
               pointwise=True),
        OpSpec("fixed_zero_mean_unit_variance", _kwargs("fixed_zero_mean_unit_variance"),
               elementwise.fixed_zero_mean_unit_variance, pointwise=True),
        OpSpec("scale_linear", _kwargs("scale_linear"),
               elementwise.scale_linear, pointwise=True),
        OpSpec("scale_mean_variance", _kwargs("scale_mean_variance"),
               normalize.scale_mean_variance, normalize.smv_required_measures, pointwise=True),
        OpSpec("scale_range", _kwargs("scale_range"), normalize.scale_range,
               normalize.scale_range_required_measures, pointwise=True),
        OpSpec("sigmoid", _kwargs("sigmoid"), elementwise.sigmoid, pointwise=True),
        OpSpec("softmax", _kwargs("softmax"), elementwise.softmax, pointwise=True),
        OpSpec("zero_mean_unit_variance", _kwargs("zero_mean_unit_variance"),
               normalize.zero_mean_unit_variance, normalize.zmuv_required_measures, pointwise=True),
        OpSpec("stardist_postprocessing", _kwargs("stardist_postprocessing"),
               stardist.stardist_postprocessing, is_available=stardist.stardist_available,
               install_hint=stardist.INSTALL_HINT, input_axes=stardist.stardist_input_axes),
        OpSpec("cellpose_flow_dynamics", _kwargs("cellpose_flow_dynamics"),
               cellpose.cellpose_flow_dynamics, is_available=cellpose.cellpose_available,
               install_hint=cellpose.INSTALL_HINT, input_axes=cellpose.cellpose_input_axes),
        OpSpec("custom", _kwargs("custom"), custom.custom, prepare=custom.prepare_custom),
    )


@hookimpl
def bioimageio_processing_ops(register: OpRegister) -> None:
    for spec in builtin_op_specs():
        register.add(spec)
