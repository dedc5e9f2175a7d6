"""Shared backend helpers: single-device choice, tensor matching, link-or-copy."""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bioimageio_core import backend_utils, plugins
from bioimageio_core.errors import InputError, PluginError

MakeDist = Callable[[str, str], str]
IDS = st.lists(st.text("abcdefgh_", min_size=1, max_size=4), min_size=1, max_size=6, unique=True)


def test_no_device_is_the_backends_default() -> None:
    assert backend_utils.single_device(None, backend="x") is None
    assert backend_utils.single_device((), backend="x") is None


@given(
    st.integers(min_value=0, max_value=1000),
    st.sampled_from(["", " ", "  "]),
    st.booleans(),
)
def test_device_strings(index: int, pad: str, upper: bool) -> None:
    def text(s: str) -> str:
        return pad + (s.upper() if upper else s) + pad

    assert backend_utils.single_device([text("cpu")], backend="x") == backend_utils.Device("cpu", 0)
    assert backend_utils.single_device([text("cuda")], backend="x") == backend_utils.Device(
        "cuda", 0
    )
    assert backend_utils.single_device(
        [text(f"cuda:{index}")], backend="x"
    ) == backend_utils.Device("cuda", index)


def test_cpu_0_is_the_cpu() -> None:
    """``type:0`` of a device type without numbers names that device, for every backend alike
    (torch and TensorFlow name the CPU ``cpu:0`` too)."""
    assert backend_utils.single_device(["cpu:0"], backend="x") == backend_utils.Device("cpu", 0)
    assert (
        backend_utils.parse_device("cpu:0")
        == backend_utils.parse_device("CPU")
        == backend_utils.Device("cpu")
    )


@pytest.mark.parametrize("bad", ["tpu", "mps", "cuda:", "cuda:-1", "cpu:1", "cuda:1:2", "gpu"])
def test_unknown_device_names_the_backend(bad: str) -> None:
    with pytest.raises(PluginError, match=f"the mybackend backend does not know device '{bad}'"):
        backend_utils.single_device([bad], backend="mybackend")


@settings(max_examples=50)
@given(
    st.sampled_from(["cpu", "cuda", "mps", "xpu"]),
    st.none() | st.integers(min_value=0, max_value=4096),
    st.booleans(),
)
def test_device_strings_round_trip(device_type: str, index: int | None, upper: bool) -> None:
    if device_type != "cuda":
        index = None  # only cuda devices are numbered
    text = device_type if index is None else f"{device_type}:{index}"
    device = backend_utils.parse_device(f" {text.upper() if upper else text} ")
    assert device == backend_utils.Device(device_type, index)
    assert str(device) == text
    assert backend_utils.parse_device(str(device)) == device


@pytest.mark.parametrize(
    "bad", ["", "gpu0", "cuda:", "cuda:x", "cuda 1", ":1", "cuda:1:2", "cu-da"]
)
def test_malformed_device_strings(bad: str) -> None:
    with pytest.raises(PluginError, match="is not a device name") as info:
        backend_utils.parse_device(bad)
    assert "use 'cpu', 'cuda', 'cuda:N'" in str(info.value)


def test_device_types_a_backend_knows() -> None:
    types = ("cpu", "cuda", "mps")
    assert backend_utils.parse_device("MPS", types=types, backend="b") == backend_utils.Device(
        "mps"
    )
    assert backend_utils.parse_device("mps:0", types=types, backend="b") == backend_utils.Device(
        "mps"
    )
    with pytest.raises(
        PluginError,
        match=r"b backend does not know device 'mps:1' \(only 'cuda' devices are numbered\)",
    ):
        backend_utils.parse_device("mps:1", types=types, backend="b")
    with pytest.raises(PluginError, match="the b backend does not know device 'xpu'") as info:
        backend_utils.parse_device("xpu", types=types, backend="b")
    assert info.value.hint == "use 'cpu', 'cuda', 'cuda:N' (N: the GPU index) or 'mps'"


def test_extra_devices_warn_at_the_callers_caller() -> None:
    def backend_function() -> backend_utils.Device | None:
        return backend_utils.single_device(["cuda:1", "cpu"], backend="b", stacklevel=2)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert backend_function() == backend_utils.Device(
            "cuda", 1
        )  # this line is the caller's caller
    (warning,) = caught
    assert "the b backend runs a model on one device; using 'cuda:1'" in str(warning.message)
    assert "ignoring ['cpu']" in str(warning.message)
    assert warning.filename == __file__


@settings(max_examples=50)
@given(IDS, st.randoms(use_true_random=False))
def test_names_equal_to_ids_match_by_name(ids: list[str], rnd: random.Random) -> None:
    names = ids[:]
    rnd.shuffle(names)
    positions = backend_utils.match_tensors(names, ids, what="inputs", holder="h", noun="graph")
    assert [names[p] for p in positions] == ids


@settings(max_examples=50)
@given(IDS)
def test_other_names_match_by_position(ids: list[str]) -> None:
    names = [f"graph_{i}" for i in range(len(ids))]
    assert backend_utils.match_tensors(
        names, ids, what="outputs", holder="h", noun="graph"
    ) == tuple(range(len(ids)))


def test_count_mismatch_says_where_and_what() -> None:
    with pytest.raises(PluginError) as info:
        backend_utils.match_tensors(
            ["a"], ["y", "x"], what="outputs", holder="the graph in m.onnx", noun="graph"
        )
    assert "the graph in m.onnx has 1 outputs ['a'], but the description declares 2" in str(
        info.value
    )
    assert "the graph's outputs in number and order" in str(info.value)


def test_link_or_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "a.bin"
    source.write_bytes(b"payload")
    backend_utils.link_or_copy(source, tmp_path / "linked.bin")
    assert (tmp_path / "linked.bin").read_bytes() == b"payload"
    assert os.path.samefile(source, tmp_path / "linked.bin")

    def no_links(src: object, dst: object) -> None:
        raise OSError("cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    backend_utils.link_or_copy(source, tmp_path / "copied.bin")
    assert (tmp_path / "copied.bin").read_bytes() == b"payload"
    assert not os.path.samefile(source, tmp_path / "copied.bin")


def test_import_framework(make_dist: MakeDist) -> None:
    import json

    assert backend_utils.import_framework("json", weights_format="w") is json
    ep = make_dist(
        "my-dist",
        """
        from bioimageio_core.hookspecs import WeightFormatSpec, hookimpl

        @hookimpl
        def bioimageio_weight_formats(register):
            register.add(WeightFormatSpec("my_fmt", dict, lambda r: None, lambda: None))
        """,
    )
    assert ep in {i.name for i in plugins.plugin_infos()}
    with pytest.raises(PluginError) as info:
        backend_utils.import_framework("no_such_framework_xyz", weights_format="my_fmt")
    assert "the my_fmt weight format needs no_such_framework_xyz, which failed to import" in str(
        info.value
    )
    # what to install: the hint of the registered format, by default its distribution
    assert info.value.hint == "pip install my-dist"
    with pytest.raises(PluginError) as info:
        backend_utils.import_framework("no_such_framework_xyz", weights_format="onnx_like_unknown")
    assert info.value.hint == (
        "install a plugin distribution that provides the 'onnx_like_unknown' weight format"
    )


def test_missing_module_asks_without_importing() -> None:
    import sys

    assert backend_utils.missing_module("json", "attrs") is None
    assert (
        backend_utils.missing_module("json", "no_such_framework_xyz")
        == "no_such_framework_xyz is not installed"
    )
    assert backend_utils.missing_module("no_such_framework_xyz", why="the exporter needs it") == (
        "no_such_framework_xyz is not installed (the exporter needs it)"
    )
    # a submodule of a missing package is missing too, not an ImportError
    assert (
        backend_utils.missing_module("no_such_framework_xyz.core")
        == "no_such_framework_xyz.core is not installed"
    )
    before = set(sys.modules)
    assert backend_utils.missing_module("xml.dom.minidom") is None
    assert "xml.dom.minidom" in before or "xml.dom.minidom" not in sys.modules  # not imported


def test_unloaded_error_names_the_model_and_the_remedy() -> None:
    error = backend_utils.unloaded_error("the onnx model weights.onnx")
    assert isinstance(error, PluginError)
    assert "the onnx model weights.onnx was unloaded" in str(error)
    assert "create a new adapter" in str(error)


def test_fit_input_casts_within_the_kind_and_checks_the_rank() -> None:
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    fitted = backend_utils.fit_input(x, "raw", "graph input 'x'", rank=2, dtype=np.dtype("float32"))
    assert fitted.dtype == np.float32
    np.testing.assert_array_equal(fitted, x)
    assert backend_utils.fit_input(x, "raw", "graph input 'x'", rank=None, dtype=None) is x
    with pytest.raises(
        InputError, match=r"input 'raw' has 2 dimensions, but graph input 'x' takes 4"
    ):
        backend_utils.fit_input(x, "raw", "graph input 'x'", rank=4, dtype=None)
    with pytest.raises(
        InputError, match="has dtype float64, but graph input 'x' takes int32"
    ) as info:
        backend_utils.fit_input(x, "raw", "graph input 'x'", rank=2, dtype=np.dtype("int32"))
    assert "ensure_dtype" in str(info.value)
