"""The user docs say true things: every setting is in the table, every Python example runs.

A Python block preceded by ``<!-- requires: module[, module] -->`` runs only where those modules
are importable (e.g. a backend plugin that the core's test session does not install).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import attrs
import pytest

from bioimageio_core import plugins
from bioimageio_core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "user-guide.md"
PAGES = [
    ROOT / "docs" / "index.md",
    GUIDE,
    ROOT / "docs" / "descriptors.md",
    ROOT / "docs" / "examples" / "minimal-plugin" / "README.md",
]
BLOCK = re.compile(r"(?:<!-- requires: (?P<requires>[^>]*?) -->\s*\n)?```python\n(?P<code>.*?)```", re.S)


def _blocks() -> list[tuple[str, tuple[str, ...], str]]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for i, m in enumerate(BLOCK.finditer(text)):
            requires = tuple(r.strip() for r in (m.group("requires") or "").split(",") if r.strip())
            found.append((f"{page.relative_to(ROOT)}#{i}", requires, m.group("code")))
    return found


def test_every_setting_and_environment_variable_is_documented() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    source = (ROOT / "bioimageio_core" / "settings.py").read_text(encoding="utf-8")
    names = {f"BIOIMAGEIO_{n}" for n in re.findall(r'(?<!env\.)get\("([A-Z_]+)"\)', source)}
    names |= set(re.findall(r'env\.get\("([A-Z_]+)"\)', source))
    assert {"BIOIMAGEIO_CACHE_PATH", "KERAS_BACKEND"} <= names
    for name in names:
        assert re.search(rf"^\| `{name}` \|", text, re.M), f"{name} is not in the settings table"
    for field in attrs.fields(Settings):
        if field.name != "user_agent":
            assert f"| `{field.name}` |" in text, f"Settings.{field.name} is not in the table"


SAMPLES = {Path: "/tmp/elsewhere", float: "3.5", int: "12345", str: "jax"}
FIELD_SAMPLES = {
    "collection_http_pattern": "https://example.org/{bioimageio_id}/rdf.yaml",
    "id_map": "https://example.org/id_map.json",
    "id_map_draft": "https://example.org/id_map_draft.json",
    "huggingface_http_pattern": "https://example.org/{repo_id}/{branch}/bioimageio.yaml",
}
"""Values for settings that must be valid URLs (templates)."""


def test_each_documented_variable_sets_its_settings_field() -> None:
    """Read the table (variable, field) and check get_settings really maps one to the other."""
    from bioimageio_core.settings import get_settings

    rows = re.findall(r"^\| `([A-Z_]+)` \| `([a-z_]+)` \|", GUIDE.read_text(encoding="utf-8"), re.M)
    assert len(rows) >= 9
    default = get_settings({})
    types = {f.name: f.type for f in attrs.fields(Settings)}
    for variable, field in rows:
        before = getattr(default, field)
        if isinstance(before, bool):
            raw = "0" if before else "1"
        elif field in ("load_plugins", "disable_plugins"):
            raw = "a, b"
        elif field in FIELD_SAMPLES:
            raw = FIELD_SAMPLES[field]
        else:
            raw = next(
                v
                for t, v in SAMPLES.items()
                if isinstance(before, t) or types[field] in (t.__name__, f"{t.__name__} | None")
            )
        after = getattr(get_settings({variable: raw}), field)
        assert after != before, f"{variable}={raw!r} does not change Settings.{field}"


def test_every_page_has_python_examples() -> None:
    pages = {name.split("#")[0] for name, _, _ in _blocks()}
    assert {"docs/user-guide.md", "docs/descriptors.md"} <= pages


@pytest.mark.parametrize(("name", "requires", "code"), _blocks(), ids=[b[0] for b in _blocks()])
def test_python_example_runs(
    name: str,
    requires: tuple[str, ...],
    code: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    missing = [r for r in requires if importlib.util.find_spec(r) is None]
    if missing:
        pytest.skip(f"{name} needs {missing}")
    # run in a scratch folder that sees the repository's files, so examples may write files
    work = tmp_path / "work"
    work.mkdir()
    for entry in ROOT.iterdir():
        if not entry.name.startswith("."):
            (work / entry.name).symlink_to(entry)
    monkeypatch.chdir(work)
    plugins.reset()
    try:
        exec(compile(code, name, "exec"), {"__name__": "__docs__"})
    finally:
        plugins.reset()
