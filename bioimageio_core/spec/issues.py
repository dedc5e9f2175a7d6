"""Validation issues: one error or warning found in a description, with its field path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs

Loc = tuple[str | int, ...]
Severity = Literal["error", "warning"]


def loc_to_path(loc: Sequence[str | int]) -> str:
    """Render a location as a JSON-path like string: ``("inputs", 0, "axes") -> $.inputs[0].axes``."""
    parts = ["$"]
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(f".{item}")
    return "".join(parts)


@attrs.frozen
class Issue:
    """One finding of validation.

    ``loc`` is the path of the offending field in the *raw* description as the user wrote it (for a
    0.4 file that is the 0.4 field path); ``msg`` says what is wrong and, where possible, what to do.
    """

    loc: Loc
    msg: str
    severity: Severity = "error"
    type: str = "value_error"

    @property
    def path(self) -> str:
        return loc_to_path(self.loc)

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.msg}"
