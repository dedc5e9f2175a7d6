"""The conformance corpus: every real published description goes through ``build_description``.

Our verdicts are compared with the reference validator's (``MANIFEST.tsv``); every file where they
differ is listed in ``tests/corpus_differences.tsv`` with a reason explained in
``docs/compatibility.md``, so any change of verdict shows up here.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import yaml

from bioimageio_core.spec.build import BuildResult, build_description

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / ".." / "shared" / "conformance" / "rdfs"
DIFFERENCES = Path(__file__).with_name("corpus_differences.tsv")
COMPATIBILITY = ROOT / "docs" / "compatibility.md"
#: the C loader reads YAML exactly like yaml.safe_load, faster
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: messages of the safety nets that turn an unexpected exception into an issue
_INTERNAL = ("internal error", "could not be converted", "could not be read")

pytestmark = pytest.mark.skipif(
    not (CORPUS / "MANIFEST.tsv").exists(),
    reason=f"conformance data not found at {CORPUS} (a checkout with ../shared next to it)",
)


@attrs.frozen
class Case:
    file: str
    reference_accepts: bool
    reference_error: str
    result: BuildResult

    @property
    def accepted(self) -> bool:
        return self.result.descr is not None


def _manifest() -> Iterator[dict[str, str]]:
    with (CORPUS / "MANIFEST.tsv").open(encoding="utf-8") as f:
        yield from csv.DictReader(f, delimiter="\t")


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    out = []
    for row in _manifest():
        raw = yaml.load((CORPUS / row["file"]).read_text(encoding="utf-8"), Loader=_LOADER)
        out.append(
            Case(
                file=row["file"],
                reference_accepts=row["reference_status"] == "valid-format",
                reference_error=row["reference_first_error"],
                result=build_description(raw),
            )
        )
    return out


def _expected_differences() -> dict[str, tuple[str, str]]:
    lines = [
        line
        for line in DIFFERENCES.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    rows = list(csv.DictReader(lines, delimiter="\t"))
    return {row["file"]: (row["our_verdict"], row["reason"]) for row in rows}


def test_corpus_is_complete(cases: list[Case]) -> None:
    assert len(cases) == 507


def test_no_internal_errors(cases: list[Case]) -> None:
    broken = [
        (c.file, str(i))
        for c in cases
        for i in c.result.issues
        if any(text in i.msg for text in _INTERNAL)
    ]
    assert broken == []


def test_differences_from_the_reference_are_exactly_the_listed_ones(cases: list[Case]) -> None:
    found = {
        c.file: "accepted" if c.accepted else "rejected"
        for c in cases
        if c.accepted != c.reference_accepts
    }
    expected = {file: verdict for file, (verdict, _) in _expected_differences().items()}
    assert found == expected


def test_we_accept_at_least_99_percent_of_what_the_reference_accepts(cases: list[Case]) -> None:
    reference_valid = [c for c in cases if c.reference_accepts]
    assert len(reference_valid) == 371
    accepted = sum(c.accepted for c in reference_valid)
    assert accepted / len(reference_valid) >= 0.99


def test_every_rejection_names_a_field(cases: list[Case]) -> None:
    unlocated = [
        c.file for c in cases if not c.accepted and not any(e.loc for e in c.result.errors)
    ]
    assert unlocated == []


def test_accepted_oddities_come_with_warnings(cases: list[Case]) -> None:
    silent = [
        c.file for c in cases if c.accepted and not c.reference_accepts and not c.result.warnings
    ]
    assert silent == []


def test_every_difference_is_explained_in_the_docs() -> None:
    docs = COMPATIBILITY.read_text(encoding="utf-8")
    for file, (verdict, reason) in _expected_differences().items():
        assert f"`{reason}`" in docs, f"reason {reason!r} (of {file}) not explained"
        if verdict == "rejected":
            assert file in docs, f"rejected file {file} not listed in docs/compatibility.md"
