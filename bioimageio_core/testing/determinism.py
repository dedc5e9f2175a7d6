"""Seeding the random number generators before a model runs (:func:`enable_determinism`)."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Literal

import numpy as np

from bioimageio_core import plugins

Determinism = Literal["seed_only", "full"]


def enable_determinism(
    mode: Determinism = "seed_only", weight_formats: Iterable[str] | None = None
) -> None:
    """Seed Python's, numpy's and the backends' random number generators with 0.

    ``mode``: ``"seed_only"`` or ``"full"`` (also deterministic algorithms only, where a backend
    offers that); ``weight_formats``: the formats about to run. Each of them whose plugin is usable
    here and provides ``WeightFormatSpec.enable_determinism`` is seeded through it (this imports
    that framework); what ``"full"`` needs besides (e.g. TensorFlow without oneDNN) is the
    plugin's business.
    """
    if mode not in ("seed_only", "full"):
        raise ValueError(f"determinism must be 'seed_only' or 'full' (got {mode!r})")
    random.seed(0)
    np.random.seed(0)
    formats = list(dict.fromkeys(weight_formats or ()))
    if not formats:
        return
    specs = plugins.weight_formats()
    seeded: set[object] = set()
    for name in formats:
        spec = specs.get(name)
        if (
            spec is None
            or spec.enable_determinism is None
            or plugins.unavailable_reason(spec) is not None
        ):
            continue
        if spec.enable_determinism in seeded:  # one framework behind several formats
            continue
        seeded.add(spec.enable_determinism)
        spec.enable_determinism(mode, 0)
