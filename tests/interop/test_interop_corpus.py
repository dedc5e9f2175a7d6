"""Both directions on the 507 published descriptions of the conformance corpus (format only).

* Every description we accept, written in the current format (what ``update-format`` writes),
  is accepted by the reference as model 0.5.14 / generic 0.3.4.
* Every description the reference accepts, written by its ``update_format``, is accepted by us.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from interop_helpers import reference_validate_dict

from bioimageio_core.spec import build_description, dump_description

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@pytest.fixture(scope="module")
def corpus(conformance_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    rdfs = conformance_dir / "rdfs"
    with (rdfs / "MANIFEST.tsv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [
        (row["file"], yaml.load((rdfs / row["file"]).read_text(encoding="utf-8"), Loader=_LOADER))
        for row in rows
    ]


def test_what_we_write_is_accepted_by_the_reference(
    reference: ModuleType, corpus: list[tuple[str, dict[str, Any]]]
) -> None:
    written = 0
    rejected: list[tuple[str, str, list[str]]] = []
    for file, raw in corpus:
        result = build_description(raw, format_version="latest")
        if result.descr is None:
            continue
        data = dump_description(result.descr)
        assert data["format_version"] in ("0.5.14", "0.3.4"), file
        written += 1
        status, errors = reference_validate_dict(reference, data)
        if status != "valid-format":
            rejected.append((file, status, errors[:3]))
    assert rejected == []
    assert written >= 420  # of the 507 files, those the current format can express


def test_what_the_reference_writes_is_accepted_by_us(
    reference: ModuleType, corpus: list[tuple[str, dict[str, Any]]]
) -> None:
    written = 0
    rejected: list[tuple[str, list[str]]] = []
    for file, raw in corpus:
        with reference.ValidationContext(perform_io_checks=False):
            descr = reference.build_description(raw, format_version="latest")
            if isinstance(descr, reference.InvalidDescr):
                continue
            out = io.StringIO()
            reference.update_format(descr, output=out, perform_io_checks=False)
        data = yaml.safe_load(out.getvalue())
        assert data["format_version"] in ("0.5.14", "0.3.4"), file
        written += 1
        result = build_description(data)
        if result.descr is None:
            rejected.append((file, [str(e) for e in result.errors][:3]))
    assert rejected == []
    assert written >= 350
