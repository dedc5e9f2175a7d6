"""Fuzzing: mutated descriptions through validate_format, load_description and predict.

Only the project's own errors (:class:`BioimageioError`) may escape, and nothing may be written
outside the temporary folder. ``HYPOTHESIS_PROFILE=fuzz`` (the ``nox -s fuzz`` session) runs
many more examples than the default profiles.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from fuzz_strategies import KEEP_LOADABLE, mutated, yaml_texts
from fuzz_support import FuzzModels, WriteGuard
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bioimageio_core import load_description, predict, validate_format
from bioimageio_core.errors import BioimageioError
from bioimageio_core.spec import ModelDescr

FUZZ_SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _own_errors_only(call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call(...)``, or None when it raised one of the project's own errors."""
    name = getattr(call, "__name__", "call")
    try:
        result = call(*args, **kwargs)
    except BioimageioError as e:
        event(f"{name}: {type(e).__name__}")
        return None
    event(f"{name}: returned")
    return result


def run_everything(path: Path, blocksize: int | None, save_as: str | None = None) -> None:
    """validate, load and (for a loadable model) predict the description at ``path``,
    writing the outputs as ``out/<sample>_<output><save_as>`` next to it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = _own_errors_only(validate_format, path)
        assert summary is None or summary.status in ("passed", "valid-format", "failed")
        descr = _own_errors_only(load_description, path)
        if isinstance(descr, ModelDescr):
            x = np.load(path.parent / "test_input.npy")
            pattern = None if save_as is None else path.parent / "out" / f"{{sample_id}}_{{output_id}}{save_as}"
            _own_errors_only(
                predict,
                model=descr,
                inputs=x,
                blocksize_parameter=blocksize,
                save_output_path=pattern,
            )


def test_the_seeds_are_valid_and_run(fuzz_models: FuzzModels) -> None:
    for version, raw in fuzz_models.seeds.items():
        path = fuzz_models.folder / f"seed-{version}.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        descr = load_description(path)
        assert isinstance(descr, ModelDescr), version
        x = np.load(fuzz_models.folder / "test_input.npy")
        out = predict(model=descr, inputs=x).members["out"]
        assert out.shape == (1, 1, 24, 24) and np.isfinite(out.data).all()


def test_the_write_guard_sees_writes_outside(write_guard: WriteGuard, tmp_path: Path) -> None:
    with tempfile.TemporaryDirectory() as outside:
        with write_guard.watching(tmp_path) as violations:
            (tmp_path / "inside.txt").write_text("ok")
            Path(outside, "outside.txt").write_text("not ok")
            os.replace(Path(outside, "outside.txt"), Path(outside, "moved.txt"))
        assert any(v.startswith("open:") and "outside.txt" in v for v in violations)
        assert any(v.startswith("os.rename:") and "moved.txt" in v for v in violations)
        assert not any("inside.txt" in v for v in violations)


@FUZZ_SETTINGS
@given(data=st.data())
def test_mutated_descriptions_fail_only_with_our_errors(
    fuzz_models: FuzzModels, write_guard: WriteGuard, data: st.DataObject
) -> None:
    version = data.draw(st.sampled_from(sorted(fuzz_models.seeds)), label="seed")
    raw = data.draw(mutated(fuzz_models.seeds[version]), label="description")
    blocksize = data.draw(st.sampled_from([None, 0, 1]), label="blocksize")
    path = fuzz_models.folder / "rdf.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    with write_guard.watching(fuzz_models.temp_root) as violations:
        run_everything(path, blocksize)
    assert violations == []


@FUZZ_SETTINGS
@given(data=st.data())
def test_odd_tensor_descriptions_predict_or_fail_with_our_errors(
    fuzz_models: FuzzModels, write_guard: WriteGuard, data: st.DataObject
) -> None:
    version = data.draw(st.sampled_from(["0.5", "0.5", "0.4"]), label="seed")
    within = ("inputs", "outputs", "weights", "test_inputs", "test_outputs")
    raw = data.draw(
        mutated(fuzz_models.seeds[version], KEEP_LOADABLE, within), label="description"
    )
    blocksize = data.draw(st.sampled_from([None, 0, 1]), label="blocksize")
    save_as = data.draw(st.sampled_from([None, ".npy", ".tif", ".h5", ".zarr", ".png"]))
    path = fuzz_models.folder / "rdf.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    with write_guard.watching(fuzz_models.temp_root) as violations:
        run_everything(path, blocksize, save_as)
    assert violations == []
    out = fuzz_models.folder / "out"
    assert not out.is_dir() or not [n for n in os.listdir(out) if n.startswith(".tmp-")]


@FUZZ_SETTINGS
@given(text=yaml_texts)
def test_arbitrary_yaml_text_fails_only_with_our_errors(
    fuzz_models: FuzzModels, write_guard: WriteGuard, text: str
) -> None:
    path = fuzz_models.folder / "text.yaml"
    path.write_text(text, encoding="utf-8")
    with write_guard.watching(fuzz_models.temp_root) as violations:
        run_everything(path, None)
    assert violations == []
