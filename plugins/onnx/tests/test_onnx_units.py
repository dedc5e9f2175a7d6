"""Pure parts of the onnx plugin: providers, name matching, thread setting, external data names."""

from __future__ import annotations

import pytest
from bioimageio_run_onnx.adapter import SPINNING_ENV, THREADS_ENV, allow_spinning, intra_op_threads
from bioimageio_run_onnx.matching import match_names
from bioimageio_run_onnx.providers import CPU, CUDA, execution_providers
from hypothesis import given
from hypothesis import strategies as st

from bioimageio_core.plugin import PluginError, file_name

BOTH = [CUDA, CPU]


def test_default_device_prefers_cuda_when_offered() -> None:
    assert execution_providers(None, BOTH) == [(CUDA, {"device_id": 0}), CPU]
    assert execution_providers(None, [CPU]) == [CPU]
    assert execution_providers(["cpu"], BOTH) == [CPU]
    assert execution_providers(["CPU"], [CPU]) == [CPU]


@given(st.integers(min_value=0, max_value=64))
def test_cuda_index_becomes_device_id(index: int) -> None:
    assert execution_providers([f"cuda:{index}"], BOTH) == [(CUDA, {"device_id": index}), CPU]


def test_cuda_without_provider_and_unknown_device() -> None:
    with pytest.raises(PluginError, match="onnxruntime-gpu"):
        execution_providers(["cuda"], [CPU])
    with pytest.raises(PluginError, match="'tpu'"):
        execution_providers(["tpu"], BOTH)
    with pytest.warns(UserWarning, match="one device"):
        assert execution_providers(["cpu", "cuda:1"], BOTH) == [CPU]


@given(st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=5, unique=True), st.randoms())
def test_names_equal_to_ids_match_by_name(ids: list[str], random: object) -> None:
    graph = list(ids)
    random.shuffle(graph)  # type: ignore[attr-defined]
    assert match_names(graph, ids, what="inputs", source="m.onnx") == tuple(ids)


def test_other_names_match_by_position() -> None:
    assert match_names(["a", "b"], ["y", "x"], what="inputs", source="m.onnx") == ("a", "b")
    with pytest.raises(PluginError, match="has 1 outputs"):
        match_names(["a"], ["y", "x"], what="outputs", source="m.onnx")


def test_threads_from_environment() -> None:
    assert intra_op_threads({}) == 0
    assert intra_op_threads({THREADS_ENV: " 3 "}) == 3
    for bad in ("-1", "two"):
        with pytest.raises(PluginError, match=THREADS_ENV):
            intra_op_threads({THREADS_ENV: bad})


def test_spinning_from_environment() -> None:
    assert allow_spinning({}) is None
    assert allow_spinning({SPINNING_ENV: " "}) is None
    for on in ("1", " true", "YES", "on"):
        assert allow_spinning({SPINNING_ENV: on}) is True
    for off in ("0", "false", "no", "off"):
        assert allow_spinning({SPINNING_ENV: off}) is False
    with pytest.raises(PluginError, match=SPINNING_ENV):
        allow_spinning({SPINNING_ENV: "sometimes"})


def test_file_name_of_reference() -> None:
    assert file_name("weights.onnx.data") == "weights.onnx.data"
    assert file_name("sub/dir/w.data") == "w.data"
    assert file_name("https://host/x/w.data?download=1") == "w.data"
