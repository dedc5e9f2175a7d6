"""Reproducible runs: seed torch and (optionally) force deterministic algorithms."""

from __future__ import annotations

import os
from typing import Literal

DeterminismMode = Literal["seed_only", "full"]


def enable_determinism(mode: DeterminismMode = "seed_only", *, seed: int = 0) -> None:
    """Seed torch's random generators (CPU and every CUDA device) with ``seed``.

    ``mode="full"`` also makes torch use deterministic algorithms only (operations without one raise)
    and turns off cuDNN benchmarking; ``"seed_only"`` switches deterministic algorithms off again
    (as bioimageio.core does) and leaves cuDNN settings alone. Imports torch.
    """
    if mode not in ("seed_only", "full"):
        raise ValueError(f"determinism mode must be 'seed_only' or 'full' (got {mode!r})")
    import torch

    full = mode == "full"
    if full:
        # cuBLAS needs a fixed workspace to be deterministic (CUDA >= 10.2); harmless on CPU.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(full)
    if full:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
