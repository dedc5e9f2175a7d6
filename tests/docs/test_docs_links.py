"""Links in the user docs point at files that exist and at headings that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [
    ROOT / "docs" / name
    for name in (
        "index.md",
        "user-guide.md",
        "descriptors.md",
        "cli.md",
        "plugins.md",
        "server.md",
        "internals.md",
    )
] + [ROOT / "docs" / "examples" / "minimal-plugin" / "README.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"```.*?```", re.S)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}


def test_slug_matches_github() -> None:
    assert slug("Package, update hashes, add weight formats") == "package-update-hashes-add-weight-formats"
    assert slug("`bioimageio-run predict`") == "bioimageio-run-predict"
    assert slug("Security: model code") == "security-model-code"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(page: Path) -> None:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path_part, _, anchor = target.partition("#")
        file = (page.parent / path_part).resolve() if path_part else page
        assert file.exists(), f"{page.name}: link to missing {target}"
        if anchor:
            assert file.suffix == ".md", f"{page.name}: anchor into a non-Markdown file {target}"
            assert anchor in anchors(file), f"{page.name}: no heading for #{anchor} in {file.name}"
