"""Crashes the fuzz suite found, each kept as a plain regression test."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml
from fuzz_strategies import deeply_nested_yaml
from fuzz_support import FuzzModels

from bioimageio_core import load_description, predict, validate_format
from bioimageio_core.errors import BioimageioError, InputError, SourceError, ValidationError
from bioimageio_core.sources import FolderRoot, open_file
from bioimageio_core.tensor import pad_array


def write(folder: Path, raw: dict[str, object]) -> Path:
    path = folder / "rdf.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.parametrize("flow", [True, False])
def test_yaml_nested_beyond_the_parsers_recursion_is_a_source_error(
    fuzz_models: FuzzModels, flow: bool
) -> None:
    path = fuzz_models.folder / "deep.yaml"
    path.write_text(deeply_nested_yaml(1500, flow))
    with pytest.raises(ValidationError, match="nested more than .* levels deep"):
        load_description(path)
    assert validate_format(path).status == "failed"


def test_a_file_name_too_long_for_the_file_system_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read a+\\.npy: File name too long"):
        open_file(FolderRoot(tmp_path), "a" * 300 + ".npy")
    with pytest.raises(SourceError, match="File name too long"):
        open_file(FolderRoot(tmp_path), "a" * 300 + ".npy", "0" * 64)


@pytest.mark.parametrize("value", [10**12, 1e308, 2**63])
@pytest.mark.parametrize("field", ["min", "step"])
def test_absurd_axis_sizes_fail_with_our_errors(
    fuzz_models: FuzzModels, value: float, field: str
) -> None:
    raw = copy.deepcopy(fuzz_models.seeds["0.5"])
    raw["inputs"][0]["axes"][3]["size"][field] = value  # type: ignore[index]
    x = np.load(fuzz_models.folder / "test_input.npy")
    with pytest.raises(BioimageioError, match=f"size.{field}"):
        descr = load_description(write(fuzz_models.folder, raw))
        predict(model=descr, inputs=x, blocksize_parameter=0)


def test_padding_to_an_impossible_shape_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"cannot pad an array of shape \(2, 2\)"):
        pad_array(np.zeros((2, 2)), [(0, 2**62), (0, 2**62)])
