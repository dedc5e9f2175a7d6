"""Reading and writing block by block keeps memory bounded (peak RSS of a fresh process).

The volume here is 64 MB (CI stays fast); ``benchmarks/io_blocks.py`` measures larger ones. A
whole-file memory map (what indexing ``OpenedArray.array`` gives) would keep all 64 MB resident.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROWS, COLS, BLOCK_ROWS = 16384, 1024, 256  # float32: 64 MB in blocks of 1 MB
VOLUME_MB = ROWS * COLS * 4 / 2**20
BOUND_MB = VOLUME_MB / 4

_JOB = """
    import json, resource, sys
    import numpy as np
    from bioimageio_core.io import open_array, open_output_array

    mode, target, rows, cols, block = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    chunks = tuple(int(c) for c in sys.argv[6].split(",")) if sys.argv[6] else None

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def data(y):
        return np.random.default_rng(y).standard_normal((min(block, rows - y), cols)).astype("f4")

    total = 0.0
    if mode == "write":
        with open_output_array(target, (rows, cols), "float32", "yx", chunks=chunks) as out:
            out.write_block((slice(0, block),), data(0))  # warm-up: libraries, buffers
            base = peak_mb()
            for y in range(block, rows, block):
                out.write_block((slice(y, y + block),), data(y))
    else:
        with open_array(target) as opened:
            opened.read_block((slice(0, block),))
            base = peak_mb()
            for y in range(0, rows, block):
                total += float(opened.read_block((slice(y, y + block),))[:, 0].sum())
    print(json.dumps({"grew_mb": peak_mb() - base, "total": total}))
"""

FORMATS = {
    "v.npy": None,
    "v.tif": None,
    "tiled.tif": (256, 256),
    "v.h5": (BLOCK_ROWS, COLS),
    "v.zarr": (BLOCK_ROWS, COLS),
}


def _run(mode: str, target: Path, chunks: tuple[int, int] | None) -> dict[str, Any]:
    args = [mode, str(target), str(ROWS), str(COLS), str(BLOCK_ROWS)]
    args.append(",".join(map(str, chunks)) if chunks else "")
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_JOB), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in kB on Linux only")
@pytest.mark.parametrize("name", list(FORMATS))
def test_block_by_block_memory_is_bounded(tmp_path: Path, name: str) -> None:
    if name.endswith(".zarr"):
        pytest.importorskip("zarr", reason="the 'zarr' extra is not installed")
    target = tmp_path / name
    written = _run("write", target, FORMATS[name])
    assert written["grew_mb"] < BOUND_MB, (name, "write", written)
    read = _run("read", target, None)
    assert read["grew_mb"] < BOUND_MB, (name, "read", read)
    expected = 0.0
    for y in range(0, ROWS, BLOCK_ROWS):
        block = np.random.default_rng(y).standard_normal((min(BLOCK_ROWS, ROWS - y), COLS))
        expected += float(block.astype("f4")[:, 0].sum())
    assert read["total"] == pytest.approx(expected, rel=1e-6, abs=1e-3)
