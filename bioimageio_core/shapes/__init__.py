"""Size resolution for 0.5 models: valid sizes, size references, batch, halo, block shapes.

The math works on small frozen value types (:class:`ModelShape` > :class:`TensorShape` >
:class:`AxisShape`, module :mod:`~bioimageio_core.shapes.types`) so that it does not depend on
the descriptor classes; :func:`model_shape` reads a ``ModelDescr`` into them. Modules:
``types`` (value types, :class:`ShapeError`), ``reading`` (descriptions → shapes), ``sizes``
(valid sizes, references, input and output sizes), ``blocking`` (halos, block shapes),
``arguments`` (blocksize parameter and batch size given by a user).

Conventions (documented once, used everywhere):

* An axis is addressed by ``(tensor_id, axis_id)`` (:data:`TensorAxis`).
* A :class:`SizeReference` resolves to ``floor(ref_size * ref.scale / axis.scale) + offset``,
  computed with exact fractions (scales are read from their decimal representation). The
  reference implementation's block transform floors the same way; its spec truncates
  ``int(x + offset)``, which gives the same result for every positive size.
* The blocksize parameter ``n`` selects ``min + n*step`` on parameterized input axes; it is an int
  for every such axis or a mapping ``{(tensor_id, axis_id): n}`` (missing axes use n = 0).
* Size problems raise :class:`ShapeError`; where the sizes are those of data a user gave, the
  caller reports them as :class:`~bioimageio_core.errors.InputError` with :func:`as_input_error`.
"""

from bioimageio_core.shapes.arguments import (
    BlocksizeParameter,
    blocksize_n,
    check_batch_size,
    check_blocksize_parameter,
)
from bioimageio_core.shapes.blocking import block_halos, block_shape, input_halos
from bioimageio_core.shapes.reading import model_shape
from bioimageio_core.shapes.sizes import (
    check_input_sizes,
    describe_valid_sizes,
    fill_data_dependent_sizes,
    get_batch_size,
    get_n,
    get_ns,
    input_sizes,
    output_sizes,
    referenced_size,
    resolve_references,
    scale_ratio,
    valid_input_sizes,
    valid_size,
)
from bioimageio_core.shapes.types import (
    AxisShape,
    AxisType,
    DataDependentSize,
    FixedSize,
    ModelShape,
    ParameterizedSize,
    ShapeError,
    Size,
    SizeReference,
    TensorAxis,
    TensorShape,
    as_input_error,
)

__all__ = [
    "AxisShape",
    "AxisType",
    "BlocksizeParameter",
    "DataDependentSize",
    "FixedSize",
    "ModelShape",
    "ParameterizedSize",
    "ShapeError",
    "Size",
    "SizeReference",
    "TensorAxis",
    "TensorShape",
    "as_input_error",
    "block_halos",
    "block_shape",
    "blocksize_n",
    "check_batch_size",
    "check_blocksize_parameter",
    "check_input_sizes",
    "describe_valid_sizes",
    "fill_data_dependent_sizes",
    "get_batch_size",
    "get_n",
    "get_ns",
    "input_halos",
    "input_sizes",
    "model_shape",
    "output_sizes",
    "referenced_size",
    "resolve_references",
    "scale_ratio",
    "valid_input_sizes",
    "valid_size",
]
