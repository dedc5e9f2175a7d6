"""Real published format 0.5 descriptions (and other resource types) build without errors."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import yaml

from bioimageio_core.spec import ModelDescr, build_description, dump_description

RDFS = Path(__file__).resolve().parents[2] / ".." / "shared" / "conformance" / "rdfs"
pytestmark = pytest.mark.skipif(not RDFS.exists(), reason=f"conformance data not found at {RDFS}")

EXAMPLES = [
    "bioimage-io__spec-bioimage-io/example_descriptions__models__unet2d_nuclei_broad__bioimageio.yaml",
    "bioimage-io__spec-bioimage-io/example_descriptions__models__unet2d_diff_output_shape__bioimageio.yaml",
    "bioimage-io__spec-bioimage-io/example_descriptions__models__unet2d_multi_tensor__bioimageio.yaml",
    "bioimage-io__spec-bioimage-io/example_descriptions__models__unet2d_nuclei_broad__expand_output_shape.bioimageio.yaml",
]


def _load(name: str) -> Any:
    with (RDFS / name).open(encoding="utf-8") as f:
        return yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_models_build(name: str) -> None:
    result = build_description(_load(name))
    assert isinstance(result.descr, ModelDescr), [str(i) for i in result.errors]
    assert not result.errors
    again = build_description(dump_description(result.descr))
    assert again.descr == result.descr


def _manifest() -> list[dict[str, str]]:
    if not RDFS.exists():
        return []
    with (RDFS / "MANIFEST.tsv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_corpus_v05_and_non_models_agree_with_reference() -> None:
    """Every 0.5 model and every non-model the reference accepts builds; none crashes."""
    checked = 0
    rejected = []
    for row in _manifest():
        if row["type"] == "model" and not row["format_version"].startswith("0.5"):
            continue  # 0.3/0.4 models need the legacy conversion
        raw = _load(row["file"])
        fv = str(raw.get("format_version", "")) if isinstance(raw, dict) else ""
        is_old_model = (
            isinstance(raw, dict) and raw.get("type") == "model" and not fv.startswith("0.5")
        )
        if is_old_model:
            continue  # 0.3/0.4 models need the legacy conversion
        result = build_description(raw)
        assert not [i for i in result.issues if "internal error" in i.msg], row["file"]
        checked += 1
        if row["reference_status"] != "failed" and result.descr is None:
            rejected.append((row["file"], [str(i) for i in result.errors][:2]))
    assert checked > 100
    assert not rejected
