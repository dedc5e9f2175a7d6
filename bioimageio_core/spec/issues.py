"""Validation issues: one error or warning found in a description, with its field path."""

from __future__ import annotations

from typing import Literal

import attrs

from bioimageio_core.errors import Loc, loc_to_path

Severity = Literal["error", "warning"]


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


__all__ = ["Issue", "Loc", "Severity", "loc_to_path"]
