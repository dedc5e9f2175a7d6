"""Sample measures of one sample in memory."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from bioimageio_core.stats.measures import (
    MeasureValue,
    SampleMean,
    SampleMeasure,
    SampleQuantile,
    SampleVar,
)
from bioimageio_core.stats.reductions import (
    mean_var,
    nan_where_empty,
    quantile_values,
    reduced_view,
    wrap,
)
from bioimageio_core.tensor import Tensor


def compute_sample_measures(
    members: Mapping[str, Tensor], measures: Iterable[SampleMeasure]
) -> dict[SampleMeasure, MeasureValue]:
    """Compute sample measures of one sample (``members``: tensor by member id).

    Measures over the same member and axes share one pass (mean/var/std) or one sort (quantiles).
    """
    result: dict[SampleMeasure, MeasureValue] = {}
    moments: dict[tuple[str, tuple[str, ...] | None], list[SampleMeasure]] = {}
    quantiles: dict[tuple[str, tuple[str, ...] | None, str], list[SampleQuantile]] = {}
    for m in measures:
        if m.member_id not in members:
            raise KeyError(
                f"statistic {m} refers to member {m.member_id!r}, but the sample has "
                f"{sorted(members)}"
            )
        if isinstance(m, SampleQuantile):
            quantiles.setdefault((m.member_id, m.axes, m.method), []).append(m)
        else:
            moments.setdefault((m.member_id, m.axes), []).append(m)

    for (member_id, axes), group in moments.items():
        flat, kept = reduced_view(members[member_id], axes)
        n, mean, m2 = mean_var(flat)
        with np.errstate(invalid="ignore", divide="ignore"):
            var = nan_where_empty(n, m2 / np.where(n > 0, n, 1.0))
        mean = nan_where_empty(n, mean)
        for m in group:
            if isinstance(m, SampleMean):
                result[m] = wrap(mean, kept, axes)
            elif isinstance(m, SampleVar):
                result[m] = wrap(var, kept, axes)
            else:
                result[m] = wrap(np.sqrt(var), kept, axes)

    for (member_id, axes, method), qgroup in quantiles.items():
        data = members[member_id].data
        flat, kept = reduced_view(members[member_id], axes)
        values = quantile_values(
            flat,
            [m.q for m in qgroup],
            method,  # type: ignore[arg-type]
            overwrite=not np.may_share_memory(flat, data),
        )
        for m, v in zip(qgroup, values, strict=True):
            result[m] = wrap(v, kept, axes)
    return result
