"""Weight format ``numpy_conv``: a small fixed 2D convolution per output, then optional pooling.

The weights file is an ``.npz`` with, for output number ``k`` (description order):

* ``kernel_k``: a 2D kernel of odd size, applied to the last two axes of the input (reflect
  padding inside the model, so a block with a halo of at least the kernel radius reproduces the
  whole-image result exactly); a ``1x1`` kernel is a fast elementwise scale;
* ``input_k`` (optional): index of the input read (default ``k`` modulo the number of inputs);
* ``bias_k`` (optional): added after the convolution;
* ``downscale_k`` (optional): average pooling factor over the last two axes (default 1);
* ``zeros_k`` (optional): if true, the convolution pads with zeros at the input's border (as most
  CNNs do) instead of reflecting.

Leading axes (batch, channel, …) pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from bioimageio_core.plugin import (
    AdapterRequest,
    ModelAdapter,
    WeightFormatRegister,
    WeightFormatSpec,
    hookimpl,
)

FORMAT = "numpy_conv"


@attrs.frozen(kw_only=True)
class NumpyConvWeightsDescr:
    """Weights entry ``numpy_conv``: ``source`` is the ``.npz`` described in the module docstring."""

    source: str
    sha256: str | None = None
    parent: str | None = None
    comment: str | None = None


@attrs.frozen
class OutputRule:
    input_index: int
    kernel: np.ndarray[Any, Any] = attrs.field(eq=False)
    bias: float
    downscale: int
    zeros: bool = False


def conv2d_reflect(
    x: np.ndarray[Any, Any], kernel: np.ndarray[Any, Any], zeros: bool = False
) -> np.ndarray[Any, Any]:
    """'same' correlation of the last two axes of ``x`` with ``kernel`` (reflect or zero padded)."""
    ky, kx = kernel.shape
    ry, rx = ky // 2, kx // 2
    if ky == 1 and kx == 1:
        return np.asarray(x * kernel[0, 0])
    widths = [(0, 0)] * (x.ndim - 2) + [(ry, ry), (rx, rx)]
    padded = np.pad(x, widths, mode="constant") if zeros else np.pad(x, widths, mode="reflect")
    h, w = x.shape[-2:]
    out = np.zeros_like(x)
    for i in range(ky):
        for j in range(kx):
            out += kernel[i, j] * padded[..., i : i + h, j : j + w]
    return out


def downscale(x: np.ndarray[Any, Any], factor: int) -> np.ndarray[Any, Any]:
    """Average pooling of the last two axes by ``factor`` (sizes must be multiples of it)."""
    if factor == 1:
        return x
    h, w = x.shape[-2:]
    if h % factor or w % factor:
        raise ValueError(f"spatial size {(h, w)} is not a multiple of the downscale factor {factor}")
    shaped = x.reshape(*x.shape[:-2], h // factor, factor, w // factor, factor)
    return np.asarray(shaped.mean(axis=(-3, -1), dtype=x.dtype))


class NumpyConvAdapter(ModelAdapter):
    weights_format = FORMAT

    def __init__(self, request: AdapterRequest) -> None:
        super().__init__(request)
        path = request.open_file(request.weights.source, request.weights.sha256)
        n_in = len(self.input_ids)
        rules = []
        with np.load(path) as npz:
            for k in range(len(self.output_ids)):
                kernel = np.asarray(npz[f"kernel_{k}"], dtype=np.float32)
                if kernel.ndim != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
                    raise ValueError(f"kernel_{k} must be 2D with odd sizes (got {kernel.shape})")
                rules.append(
                    OutputRule(
                        input_index=int(npz[f"input_{k}"]) if f"input_{k}" in npz else k % n_in,
                        kernel=kernel,
                        bias=float(npz[f"bias_{k}"]) if f"bias_{k}" in npz else 0.0,
                        downscale=int(npz[f"downscale_{k}"]) if f"downscale_{k}" in npz else 1,
                        zeros=bool(npz[f"zeros_{k}"]) if f"zeros_{k}" in npz else False,
                    )
                )
        self.rules: tuple[OutputRule, ...] = tuple(rules)
        self.calls = 0
        self.loaded = True

    def forward(self, inputs: Mapping[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
        self.calls += 1
        ordered = self.ordered_inputs(inputs)
        outputs = []
        for rule in self.rules:
            x = ordered[rule.input_index]
            if x is None:
                raise ValueError(f"input {self.input_ids[rule.input_index]!r} is required")
            y = conv2d_reflect(np.asarray(x, dtype=np.float32), rule.kernel, rule.zeros)
            if rule.bias:
                y += np.float32(rule.bias)
            outputs.append(downscale(y, rule.downscale))
        return self.outputs_by_id(outputs)

    def unload(self) -> None:
        self.loaded = False


@hookimpl
def bioimageio_weight_formats(register: WeightFormatRegister) -> None:
    register.add(
        WeightFormatSpec(
            name=FORMAT,
            entry_class=NumpyConvWeightsDescr,
            create_adapter=NumpyConvAdapter,
            is_available=lambda: None,
            priority=60,
            install_hint="pip install -e tests/plugin_dists/numpy_models",
        )
    )
