"""Every processing step of the published model descriptions binds to a registered op."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from op_pipeline import preprocess, preprocessing_pipeline

from bioimageio_core.ops import build_model_ops, required_measures
from bioimageio_core.spec import ModelDescr, build_description
from bioimageio_core.tensor import Tensor

CONFORMANCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "conformance"

if not CONFORMANCE.is_dir():
    pytest.skip(f"conformance data not found at {CONFORMANCE}", allow_module_level=True)


def published_models() -> list[tuple[str, ModelDescr]]:
    out = []
    for path in sorted(CONFORMANCE.rglob("*.yaml")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if "processing" not in text:
            continue
        try:
            raw: Any = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError:
            continue
        if not isinstance(raw, dict) or raw.get("type") != "model":
            continue
        descr = build_description(raw).descr
        if isinstance(descr, ModelDescr):
            out.append((str(path.relative_to(CONFORMANCE)), descr))
    return out


def test_published_processing_steps_bind_to_ops() -> None:
    models = published_models()
    assert len(models) > 50, "expected the published model descriptions"
    seen: set[str] = set()
    for name, model in models:
        for which in ("pre", "post"):
            try:
                ops = build_model_ops(model, which)  # type: ignore[arg-type]
                required_measures(ops)  # every op can name its statistics
            except Exception as e:
                pytest.fail(f"{name}: {e}")
            seen.update(op.spec.id for op in ops)
    assert {"ensure_dtype", "zero_mean_unit_variance", "scale_range", "scale_linear"} <= seen


def test_unet2d_nuclei_broad_preprocessing_of_the_test_input() -> None:
    root = CONFORMANCE / "models" / "unet2d_nuclei_broad"
    descr = build_description(yaml.safe_load((root / "bioimageio.yaml").read_text())).descr
    assert isinstance(descr, ModelDescr)
    x = np.load(root / "test_input.npy")
    dims = tuple(str(a.id) for a in descr.inputs[0].axes)
    with preprocessing_pipeline(descr) as pipeline:  # as prediction preprocesses it
        out = preprocess(pipeline, {"raw": Tensor(x, dims)})
    v = x.astype(np.float64)
    expected = (v - v.mean(axis=(2, 3), keepdims=True)) / (v.std(axis=(2, 3), keepdims=True) + 1e-6)
    assert out["raw"].dtype == np.float32
    np.testing.assert_allclose(out["raw"].data, expected, rtol=1e-5, atol=1e-5)
