"""Full float32 precision on CUDA: no TF32 in cuDNN convolutions while a model runs.

By default torch lets cuDNN run float32 convolutions in TF32 on Ampere and newer GPUs: inputs are
rounded to a 10-bit mantissa, so outputs differ from a CPU run by about 1e-3 relative, more than
the tolerance test outputs are usually recorded with (the bundled example model: up to 4e-4
absolute after its sigmoid, against a tolerance of 1e-4). The adapters therefore run convolutions
on CUDA in IEEE float32 unless ``BIOIMAGEIO_TORCH_ALLOW_TF32=1`` leaves torch's own settings in
force (faster, less exact). The settings are process-wide; they are restored after each forward.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch

from bioimageio_core.plugin import PluginError
from bioimageio_run_torch._errors import DISTRIBUTION

ALLOW_TF32_ENV = "BIOIMAGEIO_TORCH_ALLOW_TF32"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def tf32_allowed(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``BIOIMAGEIO_TORCH_ALLOW_TF32`` lets CUDA convolutions use TF32 (default: no)."""
    raw = (os.environ if environ is None else environ).get(ALLOW_TF32_ENV, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise PluginError(
        f"environment variable {ALLOW_TF32_ENV} must be 1 or 0; got {raw!r} (torch backend, "
        f"{DISTRIBUTION})",
        hint="set it to 1 to let CUDA convolutions use TF32 as torch does by default, or unset it",
    )


def _per_operation_settings() -> tuple[Any, Any] | None:
    """torch >= 2.9: the ``fp32_precision`` holders of cuDNN convolutions and RNNs."""
    cudnn = torch.backends.cudnn
    try:
        return (cudnn.conv, cudnn.rnn)  # type: ignore[attr-defined]
    except AttributeError:
        return None


@contextmanager
def ieee_float32_convolutions() -> Iterator[None]:
    """Inside the block, cuDNN runs float32 convolutions (and RNNs) without TF32; torch's previous
    settings are restored on exit.

    Matrix products are left alone: torch runs them in IEEE float32 unless the user chose
    otherwise (``torch.set_float32_matmul_precision``).
    """
    cudnn = torch.backends.cudnn
    holders = _per_operation_settings()
    saved = None if holders is None else [holder.fp32_precision for holder in holders]
    try:
        allowed: bool | None = cudnn.allow_tf32
    except RuntimeError:  # torch >= 2.9 refuses to read it after a mix of old and new switches
        allowed = None
    try:
        # the old switch first, then the per-operation ones: both agree inside the block, so code
        # that reads either (torch.backends.cudnn.flags reads the old one) keeps working
        cudnn.allow_tf32 = False
        for holder in holders or ():
            holder.fp32_precision = "ieee"
        yield
    finally:
        if allowed is not None:
            cudnn.allow_tf32 = allowed
        for holder, value in zip(holders or (), saved or (), strict=True):
            holder.fp32_precision = value
