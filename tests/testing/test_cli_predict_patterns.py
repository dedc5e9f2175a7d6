"""Input patterns of ``predict`` / ``block-artifacts``: globs, {tensor_id}, sample ids, outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_testing_helpers import write_images

from bioimageio_core.cli.input_files import match_inputs, sample_id_of
from bioimageio_core.errors import InputError
from bioimageio_core.prediction import samples_output_paths as output_paths

# --- pattern matching ---------------------------------------------------------------------------


def test_sample_ids_are_the_wildcard_parts() -> None:
    assert sample_id_of("raw/*.tif", "raw/img01.tif") == "img01"
    assert sample_id_of("raw/img*.tif", "raw/img01.tif") == "01"
    assert sample_id_of("data/*/img_?.npy", "data/day1/img_3.npy") == "day1_3"
    assert sample_id_of("data/**/x[0-9].npy", "data/a/b/x7.npy") == "a_b_7"
    assert sample_id_of("single/file.ome.tif", "single/file.ome.tif") == "file"


def test_match_single_input(tmp_path: Path) -> None:
    write_images(tmp_path / "raw", ["b", "a"])
    samples = match_inputs([str(tmp_path / "raw" / "*.npy")], ["raw"])
    assert [s.id for s in samples] == ["a", "b"]
    assert samples[0].inputs == {"raw": tmp_path / "raw" / "a.npy"}
    with pytest.raises(InputError, match="no file matches"):
        match_inputs([str(tmp_path / "raw" / "*.tif")], ["raw"])
    with pytest.raises(InputError, match="not found"):
        match_inputs([str(tmp_path / "raw" / "c.npy")], ["raw"])


def test_match_several_inputs(tmp_path: Path) -> None:
    write_images(tmp_path / "a", ["s1", "s2"])
    write_images(tmp_path / "b", ["s1", "s2"])
    by_id = match_inputs([str(tmp_path / "{tensor_id}" / "*.npy")], ["a", "b"])
    assert [(s.id, s.inputs["b"].parent.name) for s in by_id] == [("s1", "b"), ("s2", "b")]
    positional = match_inputs(
        [str(tmp_path / "a" / "*.npy"), str(tmp_path / "b" / "*.npy")], ["a", "b"]
    )
    assert [s.inputs for s in positional] == [s.inputs for s in by_id]
    (tmp_path / "b" / "s2.npy").unlink()
    with pytest.raises(InputError, match="sample 's2' has no file for input.*b"):
        match_inputs([str(tmp_path / "{tensor_id}" / "*.npy")], ["a", "b"])
    # an optional input may be missing
    assert len(match_inputs([str(tmp_path / "{tensor_id}" / "*.npy")], ["a", "b"], ["b"])) == 2
    with pytest.raises(InputError, match="2 inputs"):
        match_inputs([str(tmp_path / "a" / "*.npy")], ["a", "b"])


def test_output_paths() -> None:
    paths = output_paths("out/{sample_id}_{tensor_id}.npy", ["s1", "s2"], ["x", "y"])
    assert paths[("s2", "y")] == Path("out/s2_y.npy")
    assert len(set(paths.values())) == 4
    with pytest.raises(InputError, match="no \\{sample_id\\}"):
        output_paths("out/{tensor_id}.npy", ["s1", "s2"], ["x"])
    with pytest.raises(InputError, match="no \\{tensor_id\\}"):
        output_paths("out/{sample_id}.npy", ["s1"], ["x", "y"])
    with pytest.raises(InputError, match="not valid"):
        output_paths("out/{sample}.npy", ["s1"], ["x"])
    assert output_paths("o/{output_id}.npy", ["s"], ["x", "y"])[("s", "y")] == Path("o/y.npy")


names = st.lists(
    st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=8),
    min_size=1,
    max_size=5,
    unique=True,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(names)
def test_samples_pair_files_by_wildcard_part(
    tmp_path_factory: pytest.TempPathFactory, ids: list[str]
) -> None:
    root = tmp_path_factory.mktemp("data")
    for tid in ("left", "right"):
        (root / tid).mkdir()
        for sid in ids:
            (root / tid / f"img_{sid}.npy").write_bytes(b"")
    samples = match_inputs([str(root / "{tensor_id}" / "img_*.npy")], ["left", "right"])
    assert [s.id for s in samples] == sorted(ids)
    for s in samples:
        assert s.inputs == {tid: root / tid / f"img_{s.id}.npy" for tid in ("left", "right")}
    paths = output_paths(
        str(root / "out" / "{sample_id}-{tensor_id}.tif"), [s.id for s in samples], ["o"]
    )
    assert sorted(p.name for p in paths.values()) == sorted(f"{sid}-o.tif" for sid in ids)
