"""Model testing: reproduce a model's test outputs and check parameterized input sizes.

:func:`test_model` / :func:`test_description` validate a description (format, and the files the
test needs), then, per weight format, run the test inputs through a prediction pipeline without
blocking and compare with the test outputs, then run a few valid larger input sizes and check the
output shapes. Every result is a detail of the returned :class:`ValidationSummary`.

Numbers follow bioimageio.core: arrays are compared in float32; an element is mismatched when
``|actual - expected| > atol + rtol * |expected|`` (asymmetric, as :func:`numpy.isclose`; NaN never
matches); a 0.5 model may have up to ``mismatched_elements_per_million`` (default 100) mismatched
elements, a 0.4 model none. Mismatches within that allowance are reported as warnings.

One idea a module: ``tolerance`` (how close an output must be), ``comparison`` (how close it is),
``determinism`` (seeding), ``formats`` (which weight formats run here), ``sizes`` (parameterized
size cases), ``tensors`` (reading the test tensors), ``report`` (issues and details), ``runner``
(the test run of one model) and ``description`` (the entry points).
"""

from __future__ import annotations

from bioimageio_core.testing.comparison import N_WORST, Comparison, Mismatch, compare_arrays
from bioimageio_core.testing.description import test_description, test_model, test_resource
from bioimageio_core.testing.determinism import Determinism, enable_determinism
from bioimageio_core.testing.formats import FormatPlan, plan_weight_formats
from bioimageio_core.testing.report import iter_details
from bioimageio_core.testing.sizes import check_output_sizes, resize_to, size_cases
from bioimageio_core.testing.tolerance import (
    DEFAULT_ABSOLUTE_TOLERANCE,
    DEFAULT_MISMATCHED_PPM,
    DEFAULT_RELATIVE_TOLERANCE,
    Tolerance,
    get_tolerance,
)

__all__ = [
    "DEFAULT_ABSOLUTE_TOLERANCE",
    "DEFAULT_MISMATCHED_PPM",
    "DEFAULT_RELATIVE_TOLERANCE",
    "N_WORST",
    "Comparison",
    "Determinism",
    "FormatPlan",
    "Mismatch",
    "Tolerance",
    "check_output_sizes",
    "compare_arrays",
    "enable_determinism",
    "get_tolerance",
    "iter_details",
    "plan_weight_formats",
    "resize_to",
    "size_cases",
    "test_description",
    "test_model",
    "test_resource",
]
