"""The plugin author guide (docs/plugins.md) runs: its Python examples, in order, as one script.

A block preceded by ``<!-- file: path -->`` is also the content of that file (relative to docs/),
so what the guide shows is what the tests run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bioimageio_core import plugins

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "plugins.md"
BLOCK = re.compile(r"(?:<!-- file: (?P<file>[^>]*?) -->\s*\n)?```python\n(?P<code>.*?)```", re.S)


def _blocks() -> list[tuple[str | None, str]]:
    return [(m.group("file"), m.group("code")) for m in BLOCK.finditer(GUIDE.read_text("utf-8"))]


def test_the_guide_has_examples_of_every_part() -> None:
    code = "\n".join(c for _, c in _blocks())
    for part in (
        "WeightFormatSpec(",
        "OpSpec(",
        "ConverterSpec(",
        "require_code_consent(",
        "parse_device(",
        "BackendConformance",
        "create_manager(",
    ):
        assert part in code, part


def test_a_shown_file_is_that_file() -> None:
    shown = [(f, c) for f, c in _blocks() if f]
    assert shown
    for file, code in shown:
        assert code in (ROOT / "docs" / file).read_text("utf-8"), f"docs/plugins.md shows a different {file}"


def test_the_examples_run_in_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BIOIMAGEIO_ALLOW_REMOTE_CODE", raising=False)
    namespace: dict[str, object] = {"__name__": "__guide__"}
    plugins.reset()
    try:
        for i, (_, code) in enumerate(_blocks()):
            exec(compile(code, f"docs/plugins.md#{i}", "exec"), namespace)
    finally:
        plugins.reset()
    assert namespace["scale_spec"].name == "scale_npy"  # type: ignore[attr-defined]
