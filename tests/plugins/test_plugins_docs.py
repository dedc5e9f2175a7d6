"""Meta-test: every hook specification is documented, with its signature, in docs/plugins.md."""

from __future__ import annotations

import inspect
from pathlib import Path

from bioimageio_core import hookspecs

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def hook_names() -> list[str]:
    return [
        name
        for name, fn in vars(hookspecs).items()
        if name.startswith("bioimageio_") and callable(fn)
        and hasattr(fn, f"{hookspecs.PROJECT_NAME}_spec")
    ]


def test_there_are_hooks() -> None:
    assert {"bioimageio_weight_formats", "bioimageio_processing_ops",
            "bioimageio_weight_converters"} <= set(hook_names())


def test_every_hook_is_documented_with_signature() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for name in hook_names():
        fn = getattr(hookspecs, name)
        params = ", ".join(
            f"{p.name}: {p.annotation}" for p in inspect.signature(fn).parameters.values()
        )
        heading = f"### `{name}({params}) -> None`"
        assert heading in text, f"docs/plugins.md lacks a section {heading!r}"
        assert fn.__doc__ and len(fn.__doc__.strip()) > 40, f"{name} needs a docstring"
