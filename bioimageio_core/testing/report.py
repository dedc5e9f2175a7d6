"""How model testing speaks: its issues and details, and errors or warnings put in one line."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Iterator, Sequence

from bioimageio_core.errors import BioimageioError
from bioimageio_core.spec.issues import Issue, Loc
from bioimageio_core.summary import ValidationDetail, ValidationSummary
from bioimageio_core.tensor import Tensor


def detail_of(name: str, issues: Iterable[Issue]) -> ValidationDetail:
    """A detail of kind ``test`` named ``name``: passed without issues, else failed or warned."""
    return ValidationDetail.from_issues(name, issues, kind="test")


def error_at(loc: Loc, msg: str, type_: str = "test_error") -> Issue:
    """A test error at the description field ``loc``."""
    return Issue(loc, msg, "error", type_)


def warning_at(loc: Loc, msg: str, type_: str = "test_warning") -> Issue:
    """A test warning at the description field ``loc``."""
    return Issue(loc, msg, "warning", type_)


def prediction_failed(error: Exception) -> str:
    """Why running the model failed, with what to do when memory ran out."""
    if isinstance(error, MemoryError):
        return (
            f"not enough memory to run the model on inputs of these sizes ({one_line(error)}); "
            "free memory, or check the sizes the model's axes declare"
        )
    return f"prediction failed: {one_line(error)}"


def one_line(error: BaseException) -> str:
    """The error as one line; our own errors speak for themselves, others get their type name."""
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, BioimageioError) or type(error).__name__ in text:
        return text
    return f"{type(error).__name__}: {text}"


def our_warnings(caught: Sequence[warnings.WarningMessage]) -> list[str]:
    """Texts of the warnings this project and its plugins issued; others are issued again."""
    ours: list[str] = []
    for w in caught:
        if re.search(r"[/\\]bioimageio_(core|run_\w+)[/\\]", w.filename):
            ours.append(" ".join(str(w.message).split()))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return list(dict.fromkeys(ours))


def sizes_text(tensor: Tensor) -> str:
    """``(axis=size, ...)`` of a tensor."""
    return "(" + ", ".join(f"{d}={s}" for d, s in zip(tensor.dims, tensor.shape, strict=True)) + ")"


def iter_details(summary: ValidationSummary) -> Iterator[ValidationDetail]:
    """The details model testing added (kind ``test``)."""
    return (d for d in summary.details if d.kind == "test")
