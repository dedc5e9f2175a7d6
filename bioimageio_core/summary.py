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
import html
import json
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import attrs

from bioimageio_core.io.staging import write_text
from bioimageio_core.spec.issues import Issue, Loc

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
    loc: Loc = ()
    """Where in the description the check looked (e.g. ``("weights", "onnx")``)."""
    note: str = ""
    """What the check covered, for a reader (e.g. which files were found and how)."""

    @classmethod
    def from_issues(
        cls,
        name: str,
        issues: Iterable[Issue],
        *,
        kind: DetailKind = "test",
        loc: Loc = (),
        note: str = "",
    ) -> ValidationDetail:
        """A detail that failed when any issue is an error."""
        items = tuple(issues)
        errors = tuple(i for i in items if i.severity == "error")
        warnings = tuple(i for i in items if i.severity != "error")
        return cls(name, "failed" if errors else "passed", errors, warnings, kind, loc, note)

    def to_json(self) -> dict[str, Any]:
        """The reference's detail fields (``name``, ``status``, ``loc``, ``errors``,
        ``warnings``, ``context``, ``recommended_env``, ``conda_compare``) plus ``kind`` and
        ``note``."""
        return {
            "name": self.name,
            "status": self.status,
            "loc": list(self.loc),
            "errors": [_issue_json(i) for i in self.errors],
            "warnings": [_issue_json(i) for i in self.warnings],
            "context": None,
            "recommended_env": None,
            "conda_compare": None,
            "kind": self.kind,
            "note": self.note,
        }


_WARNING_LEVEL = 30
"""The reference's warning severity (Python's logging level WARNING)."""


def _issue_json(issue: Issue) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "loc": list(issue.loc),
        "msg": issue.msg,
        "type": issue.type,
        "path": issue.path,
    }
    if issue.severity == "error":
        entry["traceback"] = []
    else:
        entry["severity"] = _WARNING_LEVEL
    return entry


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

    @property
    def failed_tests(self) -> list[ValidationDetail]:
        """The further checks (model tests) that failed."""
        return [d for d in self.details if d.kind == "test" and d.status == "failed"]

    @property
    def outcome(self) -> Literal["passed", "valid-format", "failed"]:
        """``failed`` when any check failed (also a test after a valid format), else the status."""
        return "failed" if self.failed_tests else self.status

    def headline(self) -> str:
        """One line saying what the outcome means for the user."""
        failed_tests = self.failed_tests
        if self.status == "failed":
            return f"FAILED: {self.name} is not a valid description"
        if failed_tests:
            return (
                f"FAILED: {self.name} is a valid description, but {len(failed_tests)} test "
                f"check(s) failed (status {self.status})"
            )
        if self.type not in (None, "model"):
            files = next((d.note for d in self.details if d.kind == "format" and d.note), None)
            checked = f"referenced files checked: {files}" if files else "referenced files not checked"
            verdict = "passed" if self.status == "passed" else "is valid-format"
            return f"OK: {self.name} {verdict}: a valid {self.type} description; {checked}"
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
            if d.note:
                lines.append(f"      checked {d.note}")
            for e in d.errors:
                lines.append(f"      error   {_where(e)}{e.msg}")
            for w in d.warnings:
                lines.append(f"      warning {_where(w)}{w.msg}")
        lines.append("environment: " + ", ".join(f"{n} {v}" for n, v in self.env))
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict in the shape of bioimageio.spec's validation summary (``name``,
        ``source_name``, ``id``, ``type``, ``format_version``, ``status``, ``details`` with
        ``name``/``status``/``loc``/``errors``/``warnings``, ``env`` as a list of
        ``{name, version}``) plus ``converted_format_version``."""
        return {
            "name": self.name,
            "source_name": self.source,
            "id": self.id,
            "type": self.type,
            "format_version": self.format_version,
            "status": self.status,
            "metadata_completeness": None,
            "details": [d.to_json() for d in self.details],
            "env": [{"name": n, "version": v} for n, v in self.env],
            "converted_format_version": self.converted_format_version,
        }

    def format_json(self) -> str:
        return json.dumps(self.to_json(), indent=2, default=str) + "\n"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ValidationSummary:
        """Rebuild a summary from :meth:`to_json` output."""

        def issues(
            items: Sequence[Mapping[str, Any]], severity: Literal["error", "warning"]
        ) -> tuple[Issue, ...]:
            return tuple(
                Issue(tuple(i.get("loc", ())), i["msg"], severity, i.get("type", "value_error"))
                for i in items
            )

        details = [
            ValidationDetail(
                d["name"],
                d["status"],
                issues(d.get("errors", ()), "error"),
                issues(d.get("warnings", ()), "warning"),
                d.get("kind", "test"),
                tuple(d.get("loc") or ()),
                d.get("note") or "",
            )
            for d in data["details"]
        ]
        env = data.get("env") or []
        pairs = (
            [(str(e["name"]), str(e["version"])) for e in env]
            if isinstance(env, list)
            else [(str(k), str(v)) for k, v in env.items()]
        )
        return cls(
            name=data["name"],
            source=data.get("source_name", data.get("source", data["name"])),
            type=data.get("type"),
            id=data.get("id"),
            format_version=data.get("format_version"),
            converted_format_version=data.get("converted_format_version"),
            details=details,
            env=tuple(pairs),
        )

    def format_md(self) -> str:
        """Markdown: an info table, a table of checks, errors and warnings, the environment."""
        outcome = self.outcome
        icon = "❌" if outcome == "failed" else "✔️"
        out = [f"# {icon} {_md(self.name)}: {outcome}", "", _md(self.headline()), ""]
        out += ["| | |", "|---|---|"]
        out += [f"| {key} | {_md(value)} |" for key, value in self._info_rows()]
        out += ["", "## Checks", "", "| | check | location | message |", "|---|---|---|---|"]
        for d in self.details:
            note = _md(f"checked {d.note}") if d.note else ""
            out.append(f"| {'✔️' if d.status == 'passed' else '❌'} | {_md(d.name)} | | {note} |")
            for e in d.errors:
                out.append(f"| ❌ | {_md(d.name)} | `{e.path}` | {_md(e.msg)} |")
            for w in d.warnings:
                out.append(f"| ⚠️ | {_md(d.name)} | `{w.path}` | {_md(w.msg)} |")
        out += ["", "## Environment", "", "| package | version |", "|---|---|"]
        out += [f"| {_md(n)} | {_md(v)} |" for n, v in self.env]
        return "\n".join(out) + "\n"

    def format_html(self) -> str:
        """A standalone HTML page (every text escaped): headline, info, checks, environment."""
        outcome = self.outcome
        icon = "❌" if outcome == "failed" else "✔️"
        info = "".join(f"<tr><th>{_h(k)}</th><td>{_h(v)}</td></tr>" for k, v in self._info_rows())
        rows: list[str] = []
        for d in self.details:
            mark = "✔️" if d.status == "passed" else "❌"
            note = f"checked {d.note}" if d.note else ""
            rows.append(
                f'<tr class="{_h(d.status)}"><td>{mark}</td><td>{_h(d.name)}</td><td></td>'
                f"<td>{_h(note)}</td></tr>"
            )
            for issue, sign, cls in [
                *((e, "❌", "error") for e in d.errors),
                *((w, "⚠️", "warning") for w in d.warnings),
            ]:
                rows.append(
                    f'<tr class="{cls}"><td>{sign}</td><td>{_h(d.name)}</td>'
                    f"<td><code>{_h(issue.path)}</code></td><td>{_h(issue.msg)}</td></tr>"
                )
        env = "".join(f"<tr><td>{_h(n)}</td><td>{_h(v)}</td></tr>" for n, v in self.env)
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{_h(self.name)}: {_h(outcome)}</title>\n<style>{_CSS}</style>\n</head>\n"
            f"<body>\n<h1>{icon} {_h(self.name)}: {_h(outcome)}</h1>\n"
            f"<p>{_h(self.headline())}</p>\n<table>{info}</table>\n<h2>Checks</h2>\n"
            "<table><tr><th></th><th>check</th><th>location</th><th>message</th></tr>"
            f"{''.join(rows)}</table>\n<h2>Environment</h2>\n"
            f"<table><tr><th>package</th><th>version</th></tr>{env}</table>\n</body>\n</html>\n"
        )

    def format(self, kind: str) -> str:
        """The summary as ``"json"``, ``"md"`` (Markdown), ``"html"`` or, for any other
        ``kind``, text."""
        if kind == "json":
            return self.format_json()
        if kind == "md":
            return self.format_md()
        if kind in ("html", "htm"):
            return self.format_html()
        return self.format_text()

    def save(self, path: str | Path) -> Path:
        """Write the summary; the suffix picks the format (``.json``, ``.md``, ``.html``, else
        text). A report is replaced like a log file; it appears complete or not at all."""
        target = Path(path)
        return write_text(target, self.format(target.suffix.lower().lstrip(".")))


def _where(issue: Issue) -> str:
    return f"{issue.path}: " if issue.loc else ""


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def _h(text: object) -> str:
    return html.escape(str(text), quote=True)


_CSS = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1em}"
    "td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}"
    "tr.error td{background:#fde8e8}tr.warning td{background:#fff6dd}"
)


__all__ = [
    "DetailKind",
    "DetailStatus",
    "SummaryStatus",
    "ValidationDetail",
    "ValidationSummary",
    "current_environment",
]
