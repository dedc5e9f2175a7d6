"""The committed JSON Schemas are current, well formed, and accept what we accept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
from spec_examples import minimal_model, rich_model

from bioimageio_core.spec import build_description, dump_description
from bioimageio_core.spec.json_schema import SCHEMAS, all_schemas

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schemas_are_current() -> None:
    for stem, schema in all_schemas().items():
        path = ROOT / "schemas" / f"{stem}.json"
        assert path.exists(), f"{path} missing; run `nox -s schemas`"
        committed = json.loads(path.read_text(encoding="utf-8"))
        assert committed == schema, f"{path} is stale; run `nox -s schemas`"


def test_generator_script_check_mode(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "generate_schemas.py"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = [sys.executable, str(script), "--out", str(tmp_path)]
    check = subprocess.run([*run, "--check"], capture_output=True, text=True, env=env)
    assert check.returncode == 1 and "stale" in check.stdout
    subprocess.run(run, check=True, capture_output=True, env=env)
    assert sorted(p.stem for p in tmp_path.iterdir()) == sorted(SCHEMAS)
    again = subprocess.run([*run, "--check"], capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stdout


def test_schemas_validate_dumped_models() -> None:
    schema = all_schemas()["model_v0_5"]
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for raw in (minimal_model(), rich_model()):
        descr = build_description(raw).descr
        assert descr is not None
        assert not list(validator.iter_errors(dump_description(descr)))


def test_schema_rejects_what_we_reject() -> None:
    validator = jsonschema.Draft202012Validator(all_schemas()["model_v0_5"])
    raw = minimal_model()
    raw["inputs"][0]["axes"][1]["scale"] = -1.0
    raw["weights"]["torchscript"]["sha256"] = "xyz"
    errors = {tuple(e.absolute_path) for e in validator.iter_errors(raw)}
    assert ("inputs", 0, "axes", 1) in errors or ("inputs", 0, "axes", 1, "scale") in errors
    assert ("weights", "torchscript", "sha256") in errors or ("weights", "torchscript") in errors
