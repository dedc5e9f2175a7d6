"""The block loop of a prediction as explicit stages: plan → read → batch → forward → stitch → write.

* :mod:`~.plan`: the blocks a sample is cut into (:class:`Blocking` → :class:`BlockPlan`);
* :mod:`~.read`: a block's input data, padded beyond the sample border (:class:`BlockReader`);
* :mod:`~.batch`: blocks stacked along the batch axis for one forward call, outputs split again;
* :mod:`~.forward`: the model call (:class:`Forward`), falling back to one block per call when
  the model rejects a batch;
* :mod:`~.stitch`: each block's outputs cropped to the inner regions it owns, postprocessed
  there when postprocessing may run per block (:mod:`~.pointwise`);
* :mod:`~.write`: inner regions written into the whole outputs (arrays, factories, files).

:mod:`~.processing` holds the sample-level stages around the loop (statistics, pre- and
postprocessing); :mod:`~.inprocess` runs the loop in this process
(:func:`~.inprocess.run_blocks`). Every stage is deterministic per block, so the same blocks
give the same numbers however they are scheduled.

Out-of-core (volumes larger than memory): :mod:`~.stored` (inputs read from files region by
region), :mod:`~.statistics` (statistics in passes over segments, equal to the in-memory ones),
:mod:`~.outofcore` (the same stages as tasks that own whole output chunks; resumable),
:mod:`~.choice` (in memory, out-of-core, or on a cluster) and :mod:`~.distributed` (the
dask.distributed executor; extra ``distributed``, imported only when used).
"""

from bioimageio_core.execution.forward import Forward
from bioimageio_core.execution.inprocess import ProgressCallback, run_blocks
from bioimageio_core.execution.plan import Blocking, BlockPlan, ModelLayout, plan
from bioimageio_core.execution.pointwise import runs_per_block
from bioimageio_core.execution.read import BlockReader, MemberReader
from bioimageio_core.execution.stitch import Stitcher
from bioimageio_core.execution.write import (
    FileOutputs,
    OutputArrays,
    OutputFactory,
    Outputs,
    OutputTargets,
)

__all__ = [
    "BlockPlan",
    "BlockReader",
    "Blocking",
    "FileOutputs",
    "Forward",
    "MemberReader",
    "ModelLayout",
    "OutputArrays",
    "OutputFactory",
    "OutputTargets",
    "Outputs",
    "ProgressCallback",
    "Stitcher",
    "plan",
    "run_blocks",
    "runs_per_block",
]
