"""Per-chunk completion record of an output being written (what ``--resume`` skips).

The record is a folder inside the output store (next to the array's chunks) holding one empty
file per finished chunk, named by the chunk index (``3.0.1``). Creating a file is atomic and
needs no lock, so any number of processes, on any number of hosts sharing the file system, can
record the chunks they wrote. A chunk is recorded only after its data was written, so a killed
writer leaves at worst a written chunk without its record (written again on resume), never a
record without its chunk. The folder is removed when the output is finalised.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from bioimageio_core.io._chunks import ChunkGrid, ChunkIndex, chunk_key, parse_chunk_key
from bioimageio_core.io.staging import remove_tree

RECORD_FOLDER = ".bioimageio_run_done"
"""Name of the record folder inside an array's folder (hidden; zarr ignores it)."""


class ChunkRecord:
    """The chunks of an output recorded as finished (see the module docstring)."""

    def __init__(self, folder: Path, grid: ChunkGrid) -> None:
        self.folder = folder
        self.grid = grid

    def mark(self, indices: Iterable[ChunkIndex]) -> None:
        """Record the chunks ``indices`` as finished (their data must be written already)."""
        made = False
        for index in indices:
            if not made:
                self.folder.mkdir(parents=True, exist_ok=True)
                made = True
            fd = os.open(self.folder / chunk_key(index), os.O_WRONLY | os.O_CREAT, 0o666)
            os.close(fd)

    def done(self) -> frozenset[ChunkIndex]:
        """Every chunk recorded as finished (names that are no chunk of the grid are ignored)."""
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return frozenset()
        n = self.grid.grid_shape
        found = set()
        for entry in entries:
            index = parse_chunk_key(entry.name, self.grid.ndim)
            if index is not None and all(i < m for i, m in zip(index, n, strict=True)):
                found.add(index)
        return frozenset(found)

    def clear(self) -> None:
        """Remove the record (when the output is complete, or is started over)."""
        if self.folder.exists():
            remove_tree(self.folder)
