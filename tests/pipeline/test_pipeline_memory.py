"""Blockwise prediction of a large input never holds more than a few blocks in memory.

Input and output are 1 GiB float32 ``.npy`` memory maps in ``tmp_path``; numpy's allocations are
measured with tracemalloc (file-backed pages of the maps are not allocations), so the peak is what
the pipeline itself allocates: blocks being cut, batched, run and written.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
from pipeline_models import InputDef, OutputDef, conv_model

from bioimageio_core.pipeline import create_prediction_pipeline

SIDE = 16384  # 1 x 1 x 16384 x 16384 float32 = 1 GiB
GAIN = 2.0


def _input(path: Path) -> np.memmap[Any, Any]:
    x = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(1, 1, SIDE, SIDE))
    rng = np.random.default_rng(0)
    # the file is sparse (zeros) except for stripes with data at the borders and in the middle
    for rows in (slice(0, 700), slice(SIDE // 2 - 300, SIDE // 2 + 300), slice(SIDE - 500, SIDE)):
        x[0, 0, rows] = rng.normal(size=(rows.stop - rows.start, SIDE)).astype(np.float32)
    x.flush()
    del x
    return np.load(path, mmap_mode="r")  # type: ignore[no-any-return]


def test_peak_memory_of_blockwise_prediction_stays_at_a_few_blocks(tmp_path: Path) -> None:
    model = conv_model(
        tmp_path,
        inputs=[InputDef("raw", y={"min": 256, "step": 256}, x={"min": 256, "step": 256})],
        outputs=[
            OutputDef(
                "out",
                np.full((1, 1), GAIN, dtype=np.float32),
                halo=16,
                # runs per block: the output is never held in memory
                postprocessing=[{"id": "scale_linear", "kwargs": {"gain": 0.5, "offset": 1.0}}],
            )
        ],
    )
    x = _input(tmp_path / "in.npy")
    out = np.lib.format.open_memmap(
        tmp_path / "out.npy", mode="w+", dtype=np.float32, shape=(1, 1, SIDE, SIDE)
    )
    check_rows = (1000, 5000, 12000)
    for r in check_rows:
        out[0, 0, r] = np.nan
    ns, batch_size = 7, 2  # blocks of 2048 x 2048 (16 MiB), two per forward call
    block_bytes = 2048 * 2048 * 4
    with create_prediction_pipeline(model) as pp:
        tracemalloc.start()
        try:
            t0 = time.perf_counter()
            result = pp.predict_sample_with_blocking(
                {"raw": x}, ns=ns, batch_size=batch_size, outputs={"out": out}
            )
            elapsed = time.perf_counter() - t0
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert result.members["out"].data is out
    # per batch: 2 blocks cut + stacked + the model output, and the next batch being prepared
    assert peak < 12 * block_bytes, f"peak {peak / 2**20:.0f} MiB ({elapsed:.1f} s)"
    assert peak < x.nbytes / 4
    out.flush()
    for rows in (slice(0, 700), slice(SIDE // 2 - 300, SIDE // 2 + 300), slice(SIDE - 500, SIDE)):
        np.testing.assert_array_equal(out[0, 0, rows], GAIN * x[0, 0, rows] * 0.5 + 1.0)
    # rows between the stripes are zero in the input and must be overwritten (they held NaN)
    for r in check_rows:
        assert np.all(out[0, 0, r] == 1.0)
