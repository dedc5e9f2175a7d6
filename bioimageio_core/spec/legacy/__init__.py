"""Older description forms: tolerance of published oddities and model 0.3/0.4 -> 0.5 conversion.

Both functions work on raw (YAML-loaded) dictionaries and never raise for bad input: problems are
returned as issues whose locations point at the fields as the user wrote them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bioimageio_core.spec.issues import Issue


def normalize_raw(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[Issue]]:
    """Repair unambiguous oddities found in published files (any type, any version)."""
    return dict(raw), []


def convert_model_to_v0_5(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[Issue]]:
    """Convert a raw model description of format 0.3.x/0.4.x to a raw 0.5 description."""
    raise NotImplementedError("model 0.4 conversion is not available yet")
