"""Property tests: for random sizes, halos, block sizes, scales and batch sizes, blockwise
prediction equals an independent formulation of the model on the whole image."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipeline_models import InputDef, OutputDef, conv_model, kernel, oracle_conv

from bioimageio_core.pipeline import create_prediction_pipeline


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    radius=st.integers(0, 3),
    downscale=st.sampled_from([1, 2]),
    extra_halo=st.integers(0, 2),
    size_y=st.integers(1, 150),
    size_x=st.integers(1, 150),
    batch=st.integers(1, 3),
    ns=st.integers(0, 3),
    batch_size=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    border=st.sampled_from(["inside", "pad"]),
)
def test_blockwise_equals_whole_image_formula(
    radius: int,
    downscale: int,
    extra_halo: int,
    size_y: int,
    size_x: int,
    batch: int,
    ns: int,
    batch_size: int,
    seed: int,
    border: Literal["inside", "pad"],
) -> None:
    # sizes must be multiples of the downscale factor for the output to be whole pixels
    size_y, size_x = size_y * downscale, size_x * downscale
    halo = -(-radius // downscale) + extra_halo  # output pixels; input halo = halo * downscale
    k = kernel(radius, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        model = conv_model(
            Path(tmp),
            inputs=[InputDef("raw", y={"min": 32, "step": 8}, x={"min": 32, "step": 8})],
            outputs=[OutputDef("out", k, downscale=downscale, halo=halo)],
        )
        x = np.random.default_rng(seed).normal(size=(batch, 1, size_y, size_x)).astype(np.float32)
        # the kernel must not reach beyond the reflect padding the pipeline adds at the borders
        with create_prediction_pipeline(model, batch_size=batch_size, border=border) as pp:
            out = pp.predict_sample_with_blocking(x, ns=ns).members["out"].data
    assert out.shape == (batch, 1, size_y // downscale, size_x // downscale)
    if min(size_y, size_x) > radius:  # numpy's reflect needs more pixels than the radius
        np.testing.assert_allclose(out, oracle_conv(x, k, downscale), atol=1e-5, rtol=0)


def test_a_failing_model_stops_the_prefetching_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bioimageio_core.prefetch as prefetch_module

    monkeypatch.setattr(prefetch_module, "PREFETCH_MIN_SECONDS", 0.0)  # always in the background
    model = conv_model(tmp_path, outputs=[OutputDef("out", kernel(1), halo=1)])
    x = np.zeros((1, 1, 300, 300), dtype=np.float32)
    with create_prediction_pipeline(model) as pp:
        assert pp.adapter is not None
        calls = 0

        def broken(inputs: Any) -> Any:
            nonlocal calls
            calls += 1
            raise RuntimeError("model failed")

        pp.adapter.forward = broken  # type: ignore[method-assign]
        with pytest.raises(RuntimeError, match="model failed"):
            pp.predict_sample_with_blocking(x, ns=0)
    assert calls == 1
    assert not [t for t in threading.enumerate() if t.name.startswith("bioimageio-prefetch")]
