"""The conformance battery of bioimageio-run for the ``linear_npz`` weight format.

``BackendConformance`` writes the model this backend builds as a 0.5 and a 0.4 description and
checks, through the installed plugin and the ``bioimageio-run`` command line, that it validates,
passes its model test, fails on a wrong test output, predicts large images whole and blockwise
like numpy does, and that the adapter unloads. A linear map per pixel can only be the "tiled"
model (one input, one output of the same size); its receptive field is a single pixel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import numpy as np

import bioimageio_core.plugin.testing as kit
from bioimageio_core.plugin.testing import ModelDef, Param, Ref, TensorDef, WeightsDef

Array = np.ndarray[Any, Any]


@attrs.frozen(eq=False)
class Linear:
    """What the format computes: ``out[c] = sum_k weight[c, k] * in[k] + bias[c]``."""

    weight: Array
    bias: Array

    def __call__(self, x: Array) -> Array:
        y = np.einsum("ok,bk...->bo...", self.weight.astype(np.float64), x) + self.bias[
            None, :, None, None
        ]
        return y.astype(np.float32)


class TestLinearNpzBackend(kit.BackendConformance[Linear]):
    distribution = "bioimageio-run-example-linear"
    framework_modules = ()  # the "framework" is numpy
    weights_formats = ("linear_npz",)
    models = ("tiled",)
    tiled_radius = 0  # pixel by pixel: no halo needed, no block artifacts
    large_size = 1024

    def build(self, name: str, folder: Path) -> tuple[ModelDef, Linear]:
        rng = np.random.default_rng(3)
        linear = Linear(
            rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=3).astype(np.float32)
        )
        np.savez(folder / "weights.npz", weight=linear.weight, bias=linear.bias)
        x = rng.normal(size=(1, 2, 16, 24)).astype(np.float32)
        model = ModelDef(
            "linear channel mixer",
            (TensorDef("raw", "bcyx", x, Param(8, 8)),),
            (TensorDef("mixed", "bcyx", linear(x), Ref("raw")),),
            (WeightsDef("linear_npz", "weights.npz", {"layout": "out_in"}),),
        )
        return model, linear

    def run_directly(self, network: Linear, inputs: kit.Arrays) -> kit.Arrays:
        return {"mixed": network(inputs["raw"])}
