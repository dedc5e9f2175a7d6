"""Processing ops (pre- and postprocessing), registered through the plugin hooks.

The built-in ops live in :mod:`bioimageio_core.ops.elementwise`, :mod:`~.normalize` and
:mod:`~.stardist`; :mod:`~.builtin` registers them; :mod:`~.processing` binds a tensor's steps to
ops and applies them.
"""

from bioimageio_core.ops.processing import (
    BoundOp,
    apply_ops,
    build_model_ops,
    build_ops,
    required_measures,
)

__all__ = ["BoundOp", "apply_ops", "build_model_ops", "build_ops", "required_measures"]
