"""ValidationSummary: the outcome of validating (and later testing) one description.

A summary collects *details*, one per check (``format``, ``io checks``, model tests, …), each with
its errors and warnings located by field path (``$.inputs[0].axes[2].size``). Its status is
derived from the details:

* ``failed``: a format check failed (the description is unusable);
* ``valid-format``: the format is valid, but no further check ran or one of them failed;
* ``passed``: the format is valid and every further check passed.

Once a further check failed, the status never returns to ``passed``.
"""

from __future__ import annotations

import functools
import json
import platform
import sys
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import attrs

from bioimageio_core.spec.issues import Issue

SummaryStatus = Literal["passed", "valid-format", "failed"]
DetailStatus = Literal["passed", "failed"]
DetailKind = Literal["format", "test"]

#: distributions listed in a summary's environment when installed
_ENV_DISTRIBUTIONS = (
    "bioimageio-run",
    "numpy",
    "attrs",
    "cattrs",
    "pluggy",
    "PyYAML",
    "requests",
    "click",
    "torch",
    "onnxruntime",
    "tensorflow",
    "keras",
)


@attrs.frozen
class ValidationDetail:
    """One check: its name, status, and the errors and warnings it found.

    ``kind`` is ``"format"`` for checks that decide whether the description is usable at all
    (format, io checks) and ``"test"`` for later checks (model tests).
    """

    name: str
    status: DetailStatus
    errors: tuple[Issue, ...] = ()
    warnings: tuple[Issue, ...] = ()
    kind: DetailKind = "test"

    @classmethod
    def from_issues(
        cls, name: str, issues: Iterable[Issue], *, kind: DetailKind = "test"
    ) -> ValidationDetail:
        """A detail that failed when any issue is an error."""
        items = tuple(issues)
        errors = tuple(i for i in items if i.severity == "error")
        warnings = tuple(i for i in items if i.severity != "error")
        return cls(name, "failed" if errors else "passed", errors, warnings, kind)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "kind": self.kind,
            "errors": [_issue_json(i) for i in self.errors],
            "warnings": [_issue_json(i) for i in self.warnings],
        }


def _issue_json(issue: Issue) -> dict[str, Any]:
    return {"loc": list(issue.loc), "path": issue.path, "msg": issue.msg, "type": issue.type}


@functools.cache
def current_environment() -> tuple[tuple[str, str], ...]:
    """Python, platform and the versions of the installed distributions that matter here.

    Looked up once per process.
    """
    env = [
        ("python", platform.python_version()),
        ("platform", f"{sys.platform}-{platform.machine()}"),
    ]
    for name in _ENV_DISTRIBUTIONS:
        try:
            env.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return tuple(env)


@attrs.define
class ValidationSummary:
    """The outcome of validating one description; add later checks with :meth:`add_detail`."""

    name: str
    source: str
    type: str | None = None
    id: str | None = None
    format_version: str | None = None
    converted_format_version: str | None = None
    details: list[ValidationDetail] = attrs.field(factory=list)
    env: tuple[tuple[str, str], ...] = attrs.field(factory=current_environment)

    @property
    def status(self) -> SummaryStatus:
        if any(d.status == "failed" and d.kind == "format" for d in self.details):
            return "failed"
        tests = [d for d in self.details if d.kind == "test"]
        if tests and all(d.status == "passed" for d in tests):
            return "passed"
        return "valid-format"

    @property
    def is_valid(self) -> bool:
        """True unless the format check failed (status ``valid-format`` or ``passed``)."""
        return self.status != "failed"

    def add_detail(self, detail: ValidationDetail) -> None:
        """Record one more check (details keep their order)."""
        self.details.append(detail)

    @property
    def errors(self) -> list[tuple[str, Issue]]:
        """Every error as (check name, issue), in order."""
        return [(d.name, e) for d in self.details for e in d.errors]

    @property
    def warnings(self) -> list[tuple[str, Issue]]:
        """Every warning as (check name, issue), in order."""
        return [(d.name, w) for d in self.details for w in d.warnings]

    def first_error_text(self) -> str:
        """One line naming the source, the field path and what is wrong with it."""
        if not self.errors:
            return f"{self.source}: no errors (status {self.status})"
        _, issue = self.errors[0]
        where = f"{issue.path}: " if issue.loc else ""
        more = len(self.errors) - 1
        tail = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
        return f"{self.source}: {where}{issue.msg}{tail}"

    # ------------------------------------------------------------------ rendering

    def _format_version_text(self) -> str:
        text = self.format_version or "unknown"
        if self.converted_format_version and self.converted_format_version != self.format_version:
            text += f" (converted to {self.converted_format_version})"
        return text

    def _info_rows(self) -> list[tuple[str, str]]:
        rows = [("status", self.status), ("name", self.name), ("source", self.source)]
        if self.id:
            rows.append(("id", self.id))
        if self.type:
            rows.append(("type", self.type))
        rows.append(("format version", self._format_version_text()))
        return rows

    def headline(self) -> str:
        """One line saying what the outcome means for the user."""
        failed_tests = [d for d in self.details if d.kind == "test" and d.status == "failed"]
        if self.status == "failed":
            return f"FAILED: {self.name} is not a valid description"
        if failed_tests:
            return (
                f"FAILED: {self.name} is a valid description, but {len(failed_tests)} test "
                f"check(s) failed (status {self.status})"
            )
        if self.status == "passed":
            return f"OK: {self.name} passed"
        return f"OK: {self.name} is valid-format (the model itself was not tested)"

    def format_text(self) -> str:
        """Plain text for a terminal."""
        lines = [self.headline()]
        lines += [f"  {key + ':':<16}{value}" for key, value in self._info_rows()[1:]]
        lines.append("checks:")
        for d in self.details:
            lines.append(f"  [{d.status}] {d.name}")
            for e in d.errors:
                lines.append(f"      error   {_where(e)}{e.msg}")
            for w in d.warnings:
                lines.append(f"      warning {_where(w)}{w.msg}")
        lines.append("environment: " + ", ".join(f"{n} {v}" for n, v in self.env))
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "source": self.source,
            "id": self.id,
            "type": self.type,
            "status": self.status,
            "format_version": self.format_version,
            "converted_format_version": self.converted_format_version,
            "details": [d.to_json() for d in self.details],
            "env": {n: v for n, v in self.env},
        }

    def format_json(self) -> str:
        return json.dumps(self.to_json(), indent=2, default=str) + "\n"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ValidationSummary:
        """Rebuild a summary from :meth:`to_json` output."""

        def issues(
            items: Sequence[dict[str, Any]], severity: Literal["error", "warning"]
        ) -> tuple[Issue, ...]:
            return tuple(
                Issue(tuple(i["loc"]), i["msg"], severity, i.get("type", "value_error"))
                for i in items
            )

        details = [
            ValidationDetail(
                d["name"],
                d["status"],
                issues(d["errors"], "error"),
                issues(d["warnings"], "warning"),
                d.get("kind", "test"),
            )
            for d in data["details"]
        ]
        return cls(
            name=data["name"],
            source=data["source"],
            type=data.get("type"),
            id=data.get("id"),
            format_version=data.get("format_version"),
            converted_format_version=data.get("converted_format_version"),
            details=details,
            env=tuple((str(k), str(v)) for k, v in data.get("env", {}).items()),
        )

    def format_md(self) -> str:
        """Markdown: an info table, a table of checks, errors and warnings, the environment."""
        icon = {"passed": "✔️", "valid-format": "✔️", "failed": "❌"}[self.status]
        out = [f"# {icon} {_md(self.name)}: {self.status}", "", "| | |", "|---|---|"]
        out += [f"| {key} | {_md(value)} |" for key, value in self._info_rows()]
        out += ["", "## Checks", "", "| | check | location | message |", "|---|---|---|---|"]
        for d in self.details:
            out.append(f"| {'✔️' if d.status == 'passed' else '❌'} | {_md(d.name)} | | |")
            for e in d.errors:
                out.append(f"| ❌ | {_md(d.name)} | `{e.path}` | {_md(e.msg)} |")
            for w in d.warnings:
                out.append(f"| ⚠️ | {_md(d.name)} | `{w.path}` | {_md(w.msg)} |")
        out += ["", "## Environment", "", "| package | version |", "|---|---|"]
        out += [f"| {_md(n)} | {_md(v)} |" for n, v in self.env]
        return "\n".join(out) + "\n"

    def format(self, kind: str) -> str:
        """The summary as ``"json"``, ``"md"`` (Markdown) or, for any other ``kind``, text."""
        if kind == "json":
            return self.format_json()
        if kind == "md":
            return self.format_md()
        return self.format_text()

    def save(self, path: str | Path) -> Path:
        """Write the summary; the suffix picks the format (``.json``, ``.md``, else text)."""
        target = Path(path)
        target.write_text(self.format(target.suffix.lower().lstrip(".")), encoding="utf-8")
        return target


def _where(issue: Issue) -> str:
    return f"{issue.path}: " if issue.loc else ""


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


__all__ = [
    "DetailKind",
    "DetailStatus",
    "SummaryStatus",
    "ValidationDetail",
    "ValidationSummary",
    "current_environment",
]
