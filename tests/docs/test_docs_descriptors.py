"""docs/descriptors.md: generated part current; every public name of bioimageio_core.spec mentioned."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from docs_helpers import ROOT, load_script

import bioimageio_core.spec as spec
from bioimageio_core.spec.json_schema import SCHEMAS

DOC = ROOT / "docs" / "descriptors.md"
SCRIPT = ROOT / "scripts" / "generate_descriptor_docs.py"


def _generator() -> ModuleType:
    return load_script("generate_descriptor_docs")


def test_generated_part_is_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert _generator().render(text) == text, (
        "docs/descriptors.md is stale: run `python scripts/generate_descriptor_docs.py`"
    )


def test_every_public_spec_name_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [n for n in spec.__all__ if not re.search(rf"`{re.escape(n)}[`(\[.]", text)]
    assert not missing, f"docs/descriptors.md does not mention {missing}"


def test_every_schema_file_and_its_fields_are_in_the_tables() -> None:
    """Read the committed schema files independently and find each field in its class's table."""
    text = DOC.read_text(encoding="utf-8")
    for stem, cls in SCHEMAS.items():
        assert f"`schemas/{stem}.json`" in text
        schema = json.loads((ROOT / "schemas" / f"{stem}.json").read_text(encoding="utf-8"))
        objects = {schema["title"]: schema, **schema["$defs"]}
        for name, sub in objects.items():
            section = re.search(rf"### `{name}`\n(.*?)(?=\n### |\n<!-- END)", text, re.S)
            assert section, f"no section for {name} ({stem}.json)"
            for field in sub.get("properties", {}):
                assert f"| `{field}` |" in section.group(1), f"{name}.{field} missing"
            for field in sub.get("required", ()):
                assert re.search(rf"\| `{field}` \|[^\n]*\| required \|", section.group(1))
        assert f"### `{cls.__name__}`" in text


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    begin, end = _generator().BEGIN, _generator().END
    out = tmp_path / "descriptors.md"
    out.write_text(text.split(begin)[0] + f"{begin}\nold\n{end}\n", encoding="utf-8")
    run = [sys.executable, str(SCRIPT), "--out", str(out)]
    env = {"PYTHONPATH": str(ROOT)}
    stale = subprocess.run([*run, "--check"], capture_output=True, text=True, env=env)
    assert stale.returncode == 1 and "stale" in stale.stdout
    subprocess.run(run, check=True, capture_output=True, env=env)
    assert out.read_text(encoding="utf-8") == text
