"""Writing a generated documentation file, or (``--check``) only reporting that it is stale."""

from __future__ import annotations

from pathlib import Path


def update(out: Path, text: str, current: str | None, *, check: bool, command: str) -> int:
    """Write ``text`` to ``out`` unless ``current`` (its content now, None: absent) equals it.

    With ``check`` nothing is written: a stale file is reported with ``command``, the command
    that regenerates it. Returns the exit status (1: stale under ``check``, else 0).
    """
    if current == text:
        return 0
    if check:
        print(f"{out} is stale: run `{command}`")
        return 1
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0
