"""Benchmark: memory and speed of reading and writing volumes block by block, per file format.

Each measurement runs in a fresh process: it writes a float32 volume of the given size block by
block (``OutputArray.write_block``), then reads it back block by block
(``OpenedArray.read_block``). The peak RSS after the first block is the baseline; what the
process holds beyond it must not grow with the volume. One row indexes the whole-file memory map
instead (``opened.array[...]``), to show what a memory map costs when it is not released.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from benchmarks._common import Config, Result, bench_env, run_process

COLS = 2048
BLOCK_ROWS = 512  # 4 MB blocks

_JOB = r"""
import json, resource, sys, time
import numpy as np
from bioimageio_core.io import open_array, open_output_array

mode, target, rows, cols, block = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
chunks = tuple(int(c) for c in sys.argv[6].split(",")) if sys.argv[6] else None

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

noise = np.random.default_rng(0).standard_normal((block, cols)).astype("f4")

def data(y):  # incompressible values, cheap to make (the timing is of the io, not of the data)
    return noise[: min(block, rows - y)] + np.float32(y)

if mode == "write":
    with open_output_array(target, (rows, cols), "float32", "yx", chunks=chunks) as out:
        out.write_block((slice(0, block),), data(0))
        base, t0 = peak_mb(), time.perf_counter()
        for y in range(block, rows, block):
            out.write_block((slice(y, y + block),), data(y))
else:
    with open_array(target) as opened:
        whole_map = mode == "read-map"
        first = opened.array[0:block] if whole_map else opened.read_block((slice(0, block),))
        np.asarray(first).sum()
        base, t0 = peak_mb(), time.perf_counter()
        for y in range(0, rows, block):
            region = (slice(y, y + block),)
            b = opened.array[region] if whole_map else opened.read_block(region)
            float(np.asarray(b).sum())
seconds = time.perf_counter() - t0
print(json.dumps({"base": base, "grew": peak_mb() - base, "seconds": seconds}))
"""

FORMATS: dict[str, tuple[str, str]] = {
    ".npy (memory map)": ("v.npy", ""),
    ".tif contiguous": ("v.tif", ""),
    ".tif tiled 256²": ("t.tif", "256,256"),
    ".h5 chunked": ("v.h5", f"{BLOCK_ROWS},{COLS}"),
    ".zarr (blosc lz4)": ("v.zarr", f"{BLOCK_ROWS},{COLS}"),
}


def _measure(cfg: Config, mode: str, target: Path, rows: int, chunks: str) -> dict[str, float]:
    args = [mode, str(target), str(rows), str(COLS), str(BLOCK_ROWS), chunks]
    run = run_process(
        [sys.executable, "-c", _JOB, *args],
        env={**bench_env(cfg.threads), "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        cwd=target.parent,
    )
    if run.returncode != 0:
        raise RuntimeError(f"io job {mode} {target.name} failed:\n{run.output[-2000:]}")
    parsed: dict[str, float] = json.loads(run.output.strip().splitlines()[-1])
    return parsed


def io_memory(cfg: Config) -> Result:
    """Peak memory of block-by-block reading and writing over 3 volume sizes, per format."""
    sizes_mb = cfg.pick((64, 128, 256), (256, 512, 1024))
    result = Result(
        title="10. Reading and writing volumes block by block (io)",
        description=(
            f"A float32 volume of {COLS} columns written and read in blocks of {BLOCK_ROWS} rows "
            f"(4 MB), one fresh process per measurement. 'held' is the peak RSS beyond the "
            "baseline after the first block: what reading or writing the rest keeps in memory. "
            "The last rows index the whole-file memory map of the .npy file instead of "
            "`read_block`: its pages stay resident."
        ),
        columns=[
            "format",
            "volume (MB)",
            "write: held (MB)",
            "write (MB/s)",
            "read: held (MB)",
            "read (MB/s)",
        ],
        goal="held memory independent of the volume size (a few blocks), for every format",
    )
    worst: list[float] = []
    for size in sizes_mb:
        rows = size * 2**20 // (COLS * 4)
        for label, (name, chunks) in FORMATS.items():
            folder = cfg.work_dir / "io" / f"{size}-{name}"
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / name
            write = _measure(cfg, "write", target, rows, chunks)
            read = _measure(cfg, "read", target, rows, "")
            row = [label, size, write["grew"], size / write["seconds"], read["grew"]]
            row.append(size / read["seconds"])
            result.rows.append(row)
            worst.append(max(write["grew"], read["grew"]))
            if name == "v.npy":
                mapped = _measure(cfg, "read-map", target, rows, "")
                mb_s = size / mapped["seconds"]
                result.rows.append([".npy, whole-file map", size, "—", "—", mapped["grew"], mb_s])
            shutil.rmtree(folder)
    largest = max(worst)
    result.verdict = (
        f"at most {largest:.0f} MB held for volumes up to {max(sizes_mb)} MB"
        if largest < min(sizes_mb) / 2
        else f"FAILED: {largest:.0f} MB held"
    )
    return result
