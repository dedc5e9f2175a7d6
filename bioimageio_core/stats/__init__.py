"""Statistics (measures) of tensors, per sample and per dataset.

A *measure* is a small frozen value type naming what to compute (mean, std, var or a quantile),
of which member (tensor id) and over which axes (``None``: all axes). Measures are hashable and
are the keys of a sample's statistics mapping. A measure's value is a ``float`` when it reduces
every axis (``axes=None``), else a :class:`~bioimageio_core.tensor.Tensor` over the axes that are
kept, in the member's axis order.

Numerics (the same as bioimageio.core so that normalised numbers agree):

* every computation accumulates in float64 (data is read in its own dtype, chunk by chunk);
* ``mean`` skips NaN; ``var``/``std`` are the population variance/deviation (ddof 0) and are NaN
  when a reduced value is NaN (``inf`` gives NaN variance); quantiles skip NaN;
* sample quantiles use ``method`` ``"linear"`` (numpy's default, type 7) or ``"inverted_cdf"``
  (type 1); dataset quantiles use ``"linear"``.

Three ways to compute measures:

* :func:`compute_sample_measures`: one sample in memory (the pipeline's per-sample statistics);
* :class:`StatsAccumulator` (and :func:`compute_dataset_measures`, :func:`accumulate_measures`):
  data of any size seen chunk by chunk, in passes, with bounded memory and exact results
  (quantiles equal ``numpy.quantile`` of the whole data in float64, bit for bit): the mechanism
  for dataset statistics computed before prediction and for data larger than memory;
* :class:`DatasetStatsCalculator` / :class:`StatsCalculator`: *running* dataset statistics, one
  pass, updated sample by sample (bioimageio.core's semantics, used when a pipeline predicts
  without precomputed dataset statistics). Mean and variance are merged with Chan's parallel
  update; quantiles are exact while the kept values stay below ``max_quantile_values`` per
  measure group, then the calculator switches to the approximation bioimageio.core always uses
  (the average of per-sample quantiles weighted by value count; a warning is emitted once).

Modules: ``measures`` (the value types), ``reductions`` (float64 views, moments, order
statistics), ``sample`` (:func:`compute_sample_measures`), ``selection`` (exact quantiles over
chunks), ``accumulator`` (:class:`StatsAccumulator`), ``running`` (the running calculators),
``serialization`` (JSON form). Pure functions and small value types: no IO, no plugins.
"""

from bioimageio_core.stats.accumulator import (
    StatsAccumulator,
    accumulate_measures,
    compute_dataset_measures,
)
from bioimageio_core.stats.measures import (
    BATCH_AXIS,
    DATASET_MEASURES,
    SAMPLE_MEASURES,
    DatasetMean,
    DatasetMeasure,
    DatasetQuantile,
    DatasetStd,
    DatasetVar,
    Measure,
    MeasureValue,
    QuantileMethod,
    SampleMean,
    SampleMeasure,
    SampleQuantile,
    SampleStd,
    SampleVar,
)
from bioimageio_core.stats.running import (
    DEFAULT_MAX_QUANTILE_VALUES,
    DatasetStatsCalculator,
    StatsCalculator,
)
from bioimageio_core.stats.sample import compute_sample_measures
from bioimageio_core.stats.selection import DEFAULT_MAX_KEPT_VALUES
from bioimageio_core.stats.serialization import (
    measure_from_json,
    measure_to_json,
    value_from_json,
    value_to_json,
)

__all__ = [
    "BATCH_AXIS",
    "DATASET_MEASURES",
    "DEFAULT_MAX_KEPT_VALUES",
    "DEFAULT_MAX_QUANTILE_VALUES",
    "SAMPLE_MEASURES",
    "DatasetMean",
    "DatasetMeasure",
    "DatasetQuantile",
    "DatasetStatsCalculator",
    "DatasetStd",
    "DatasetVar",
    "Measure",
    "MeasureValue",
    "QuantileMethod",
    "SampleMean",
    "SampleMeasure",
    "SampleQuantile",
    "SampleStd",
    "SampleVar",
    "StatsAccumulator",
    "StatsCalculator",
    "accumulate_measures",
    "compute_dataset_measures",
    "compute_sample_measures",
    "measure_from_json",
    "measure_to_json",
    "value_from_json",
    "value_to_json",
]
