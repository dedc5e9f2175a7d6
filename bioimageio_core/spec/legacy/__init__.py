"""Older description forms: tolerance of published oddities and model 0.3/0.4 -> 0.5 conversion.

Both functions work on raw (YAML-loaded) dictionaries and never raise for bad input: problems are
returned as issues whose locations point at the fields as the user wrote them. Call
``normalize_raw`` first, then ``convert_model_to_v0_5`` on the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bioimageio_core.spec.issues import Issue
from bioimageio_core.spec.legacy._common import TARGET_FORMAT_VERSION, file_name_of, suffix_of
from bioimageio_core.spec.legacy.locations import original_location
from bioimageio_core.spec.legacy.model import convert_model_to_v0_5 as _convert
from bioimageio_core.spec.legacy.model import keep_fixed_batch_sizes
from bioimageio_core.spec.legacy.normalize import normalize_raw as _normalize
from bioimageio_core.spec.legacy.upgrade import (
    GENERIC_FORMAT_VERSION,
    MODEL_FORMAT_VERSION,
    convert_generic_v0_2,
    upgrade_generic_v0_3,
    upgrade_model_v0_5,
    wrap_file_fields,
)

__all__ = [
    "GENERIC_FORMAT_VERSION",
    "MODEL_FORMAT_VERSION",
    "TARGET_FORMAT_VERSION",
    "convert_generic_v0_2",
    "convert_model_to_v0_5",
    "file_name_of",
    "keep_fixed_batch_sizes",
    "normalize_raw",
    "original_location",
    "suffix_of",
    "upgrade_generic_v0_3",
    "upgrade_model_v0_5",
    "wrap_file_fields",
]


def normalize_raw(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[Issue]]:
    """Repair unambiguous oddities found in published files (any type, any version)."""
    try:
        return _normalize(raw)
    except Exception as e:  # a safety net: normalisation reports, it never raises
        issue = Issue(loc=(), msg=f"the description could not be read ({type(e).__name__}: {e})")
        return (dict(raw) if isinstance(raw, Mapping) else {}), [issue]


def convert_model_to_v0_5(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[Issue]]:
    """Convert a raw model description of format 0.3.x/0.4.x to a raw 0.5 description."""
    return _convert(raw)
