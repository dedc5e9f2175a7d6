"""docs/porting.md: every Python snippet runs against a small model; every reference name is listed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from model_testing_helpers import write_model

import bioimageio_core

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "porting.md"
BLOCK = re.compile(r"```python\n(?P<code>.*?)```", re.S)
SNIPPETS = [m.group("code") for m in BLOCK.finditer(PAGE.read_text(encoding="utf-8"))]
REFERENCE_NAMES = (
    "load_description", "load_model_description", "load_model", "load_dataset_description",
    "load_resource", "load_description_and_validate_format_only", "validate_format",
    "build_description", "dump_description", "save_bioimageio_yaml_only",
    "save_bioimageio_package", "save_bioimageio_package_as_folder", "test_model",
    "test_description", "test_resource", "load_description_and_test", "enable_determinism",
    "create_prediction_pipeline", "predict", "predict_many", "create_model_adapter",
    "compute_dataset_measures", "add_weights", "Sample", "Tensor", "Settings",
    "ValidationSummary", "apply_preprocessing", "apply_postprocessing",
    "predict_sample_with_blocking", "predict_sample_block", "get_output_sample_id",
    "save_dataset_stat", "load_dataset_stat",
)  # fmt: skip


def test_the_page_has_snippets_and_names_every_reference_call() -> None:
    text = PAGE.read_text(encoding="utf-8")
    assert len(SNIPPETS) >= 5
    missing = [n for n in REFERENCE_NAMES if f"`{n}" not in text]
    assert not missing, f"porting.md does not mention {missing}"


@pytest.mark.parametrize("code", SNIPPETS, ids=[f"snippet{i}" for i in range(len(SNIPPETS))])
def test_porting_snippet_runs(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_model(tmp_path / "my_model", size=32)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "porting.md", "exec"), {"__name__": "__docs__"})


def test_every_public_reference_name_in_the_table_exists() -> None:
    text = PAGE.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-zA-Z_]+)[`(]", text, re.M)
    assert "load_model_description" in rows
    not_top_level = ("build_description", "load_description_and_test", "bioimageio")
    top_level = [r for r in rows if r not in not_top_level]
    assert [r for r in top_level if not hasattr(bioimageio_core, r)] == []
