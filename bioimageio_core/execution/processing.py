"""The sample-level stages around the block loop: statistics, preprocessing, postprocessing.

Statistics are computed on the raw sample before any step (bioimageio.core's semantics); the
fixed dataset statistics win over computed ones; ops of optional inputs the sample lacks are left
out.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from bioimageio_core.errors import InputError
from bioimageio_core.input_padding import preprocessed_paddings
from bioimageio_core.ops import BoundOp, apply_ops
from bioimageio_core.sample import Sample
from bioimageio_core.shapes import ModelShape
from bioimageio_core.stats import Measure, MeasureValue, StatsCalculator
from bioimageio_core.tensor import Padding


def check_statistics_inputs(measures: Collection[Measure], members: Collection[str]) -> None:
    """Refuse a sample without an (optional) input whose statistics ``measures`` need.

    Raises:
        InputError: naming the missing inputs.
    """
    lacking = sorted({m.member_id for m in measures} - set(members))
    if lacking:
        raise InputError(
            f"optional input(s) {lacking} are missing, but the model's processing needs "
            "their statistics",
            hint="give these inputs too",
        )


def preprocess(
    sample: Sample,
    ops: Sequence[BoundOp],
    stats: StatsCalculator,
    fixed: Mapping[Measure, MeasureValue],
) -> Sample:
    """A new sample: statistics of the raw ``sample`` (updating running dataset statistics),
    then every preprocessing op of the inputs it holds.

    Raises:
        InputError: an optional input whose statistics the processing needs is missing.
    """
    stat: dict[Any, Any] = dict(sample.stat)
    measures = (*stats.sample_measures, *stats.dataset_measures)
    if measures:
        check_statistics_inputs(measures, sample.members)
        stat.update(stats.update_and_get_all(sample.members))
        stat.update(fixed)
    present = [op for op in ops if op.target.member_id in sample.members]
    return Sample(members=apply_ops(present, sample.members, stat), stat=stat, id=sample.id)


def postprocess(
    sample: Sample,
    ops: Sequence[BoundOp],
    stats: StatsCalculator,
    fixed: Mapping[Measure, MeasureValue],
    output_ids: Collection[str],
) -> Sample:
    """A new sample of the ``output_ids`` members: statistics of the raw outputs, then every
    postprocessing op (which may read other members of ``sample``, e.g. a reference input)."""
    outputs = {k: v for k, v in sample.members.items() if k in output_ids}
    stat: dict[Any, Any] = dict(sample.stat)
    if stats.sample_measures or stats.dataset_measures:
        stat.update(stats.update_and_get_all(outputs))
        stat.update(fixed)
    members = apply_ops(ops, sample.members, stat)
    return Sample(
        members={k: v for k, v in members.items() if k in output_ids}, stat=stat, id=sample.id
    )


def paddings_for(
    declared: Mapping[str, Padding],
    raw: Sample,
    ops: Sequence[BoundOp],
    stat: Mapping[Any, Any],
    shape: ModelShape,
    *,
    preprocessed: bool,
) -> dict[str, Padding]:
    """How each input of ``raw`` is padded (constant values in preprocessed units when the
    data is preprocessed; see :mod:`bioimageio_core.input_padding`)."""
    if not preprocessed or not any(p.mode == "constant" for p in declared.values()):
        return dict(declared)
    return preprocessed_paddings(
        declared,
        raw.members,
        ops,
        stat,
        {t.id: tuple(a.type for a in t.axes) for t in shape.inputs},
    )


__all__ = ["paddings_for", "postprocess", "preprocess"]
