"""OnnxModelAdapter on tiny graphs built here, checked against numpy and onnxruntime itself."""

from __future__ import annotations

import shutil
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from bioimageio_run_onnx import OnnxModelAdapter, create_adapter
from bioimageio_run_onnx.adapter import SPINNING_CONFIG_KEY, SPINNING_ENV
from onnx_testing import (
    conv_model,
    conv_numpy,
    describe,
    make_request,
    onnx_entry,
    pool_model,
    two_in_two_out_model,
    uint8_scale_model,
)

from bioimageio_core.plugin import InputError, PluginError
from bioimageio_core.plugin.testing import WeightsDef

RNG = np.random.default_rng(1234)


def _conv_weights() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    rng = np.random.default_rng(7)
    return (
        rng.standard_normal((2, 1, 3, 3)).astype(np.float32),
        rng.standard_normal(2).astype(np.float32),
    )


def _described_conv(
    root: Path,
    x: np.ndarray[Any, Any],
    weight: np.ndarray[Any, Any],
    bias: np.ndarray[Any, Any],
    entry: WeightsDef,
) -> tuple[dict[str, Any], np.ndarray[Any, Any]]:
    """The description of a conv model (``raw`` -> ``features``) with test input ``x``, and the
    output it expects (numpy's convolution, float64)."""
    expected = conv_numpy(x, weight, bias)
    outputs = {"features": expected.astype(np.float32)}
    return describe(root, {"raw": x}, outputs, {"onnx": entry}), expected


def _run_direct(path: Path, feed: dict[str, np.ndarray[Any, Any]]) -> list[np.ndarray[Any, Any]]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in session.run(None, feed)]


def test_conv_batch_of_two_matches_numpy_and_onnxruntime(tmp_path: Path) -> None:
    weight, bias = _conv_weights()
    onnx.save_model(conv_model(weight, bias), tmp_path / "conv.onnx")
    x = RNG.standard_normal((2, 1, 9, 7)).astype(np.float32)
    raw, expected = _described_conv(tmp_path, x, weight, bias, onnx_entry(tmp_path, "conv.onnx"))

    with create_adapter(make_request(tmp_path, raw)) as adapter:
        assert adapter.providers == ("CPUExecutionProvider",)
        out = adapter.forward({"raw": x})

    assert set(out) == {"features"}
    assert out["features"].shape == (2, 2, 9, 7)
    np.testing.assert_allclose(out["features"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(
        out["features"], _run_direct(tmp_path / "conv.onnx", {"input": x})[0]
    )


def test_multi_input_output_by_position(tmp_path: Path) -> None:
    onnx.save_model(two_in_two_out_model(["a", "b"], ["s", "p"]), tmp_path / "m.onnx")
    raw_in = RNG.standard_normal((1, 1, 4, 5)).astype(np.float32)
    mask = RNG.standard_normal((1, 1, 4, 5)).astype(np.float32)
    raw = describe(
        tmp_path,
        {"raw": raw_in, "mask": mask},
        {"sum": raw_in + mask, "prod": raw_in * mask - raw_in},
        {"onnx": onnx_entry(tmp_path, "m.onnx")},
    )

    with create_adapter(make_request(tmp_path, raw)) as adapter:
        out = adapter.forward({"mask": mask, "raw": raw_in})  # dict order must not matter

    np.testing.assert_allclose(out["sum"], raw_in + mask, rtol=1e-6)
    np.testing.assert_allclose(out["prod"], raw_in * mask - raw_in, rtol=1e-6, atol=1e-6)


def test_multi_input_output_by_name_when_graph_names_are_tensor_ids(tmp_path: Path) -> None:
    # the graph declares its inputs/outputs in the opposite order from the description
    onnx.save_model(two_in_two_out_model(["mask", "raw"], ["prod", "sum"]), tmp_path / "m.onnx")
    raw_in = RNG.standard_normal((1, 1, 3, 3)).astype(np.float32)
    mask = RNG.standard_normal((1, 1, 3, 3)).astype(np.float32)
    # graph: a = "mask", b = "raw"; first output "prod" = a + b, second output "sum" = a * b - a
    expected = {"sum": mask * raw_in - mask, "prod": mask + raw_in}
    raw = describe(
        tmp_path, {"raw": raw_in, "mask": mask}, expected, {"onnx": onnx_entry(tmp_path, "m.onnx")}
    )

    with create_adapter(make_request(tmp_path, raw)) as adapter:
        out = adapter.forward({"raw": raw_in, "mask": mask})

    direct = _run_direct(tmp_path / "m.onnx", {"raw": raw_in, "mask": mask})
    np.testing.assert_array_equal(out["prod"], direct[0])
    np.testing.assert_array_equal(out["sum"], direct[1])
    np.testing.assert_allclose(out["sum"], expected["sum"], rtol=1e-6, atol=1e-6)


def test_output_smaller_than_input(tmp_path: Path) -> None:
    onnx.save_model(pool_model(), tmp_path / "pool.onnx")
    x = RNG.standard_normal((3, 1, 8, 6)).astype(np.float32)
    expected = x.reshape(3, 1, 4, 2, 3, 2).max(axis=(3, 5))
    raw = describe(
        tmp_path, {"raw": x}, {"pooled": expected}, {"onnx": onnx_entry(tmp_path, "pool.onnx")}
    )

    with create_adapter(make_request(tmp_path, raw)) as adapter:
        out = adapter.forward({"raw": x})

    assert out["pooled"].shape == (3, 1, 4, 3)
    np.testing.assert_array_equal(out["pooled"], expected)


def test_uint8_input_with_cast(tmp_path: Path) -> None:
    onnx.save_model(uint8_scale_model(0.5), tmp_path / "u8.onnx")
    x = RNG.integers(0, 256, size=(2, 1, 5, 5), dtype=np.uint8)
    raw = describe(
        tmp_path,
        {"raw": x},
        {"scaled": x.astype(np.float32) * 0.5},
        {"onnx": onnx_entry(tmp_path, "u8.onnx")},
    )

    with create_adapter(make_request(tmp_path, raw)) as adapter:
        out = adapter.forward({"raw": x})
        assert out["scaled"].dtype == np.float32
        np.testing.assert_array_equal(out["scaled"], x.astype(np.float32) * 0.5)
        with pytest.raises(InputError, match="dtype float32"):
            adapter.forward({"raw": x.astype(np.float32)})  # float -> uint8 would lose data


def test_safe_dtype_and_layout_are_converted(tmp_path: Path) -> None:
    weight, bias = _conv_weights()
    onnx.save_model(conv_model(weight, bias), tmp_path / "conv.onnx")
    x = RNG.standard_normal((1, 1, 6, 4))
    raw = describe(
        tmp_path,
        {"raw": x.astype(np.float32)},
        {"features": np.zeros((1, 2, 6, 4), np.float32)},
        {"onnx": onnx_entry(tmp_path, "conv.onnx")},
    )
    with create_adapter(make_request(tmp_path, raw)) as adapter:
        from_f64 = adapter.forward({"raw": x})["features"]
        non_contiguous = np.asfortranarray(x.astype(np.float32))
        from_fortran = adapter.forward({"raw": non_contiguous})["features"]
        with pytest.raises(InputError, match="3 dimensions"):
            adapter.forward({"raw": x[0].astype(np.float32)})
        with pytest.raises(InputError, match="needs input 'raw'"):
            adapter.forward({})
        with pytest.raises(KeyError, match="unknown input"):
            adapter.forward({"raw": x, "other": x})
    np.testing.assert_allclose(
        from_f64, conv_numpy(x.astype(np.float32), weight, bias), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_array_equal(from_fortran, from_f64)


def _save_with_external_data(model: onnx.ModelProto, folder: Path, name: str) -> None:
    onnx.save_model(
        model,
        folder / name,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=f"{name}.data",
        size_threshold=0,
    )


def test_external_data_next_to_model(tmp_path: Path) -> None:
    weight, bias = _conv_weights()
    _save_with_external_data(conv_model(weight, bias), tmp_path, "conv.onnx")
    assert (tmp_path / "conv.onnx.data").stat().st_size >= weight.nbytes
    x = RNG.standard_normal((1, 1, 5, 5)).astype(np.float32)
    entry = onnx_entry(tmp_path, "conv.onnx", "conv.onnx.data")
    raw, expected = _described_conv(tmp_path, x, weight, bias, entry)

    with create_adapter(make_request(tmp_path, raw)) as adapter:
        out = adapter.forward({"raw": x})

    np.testing.assert_allclose(out["features"], expected, rtol=1e-5, atol=1e-5)
    assert not (tmp_path / "cache").exists()  # used in place, nothing copied


def test_external_data_fetched_elsewhere_is_placed_next_to_model(tmp_path: Path) -> None:
    weight, bias = _conv_weights()
    pkg = tmp_path / "package"
    pkg.mkdir()
    _save_with_external_data(conv_model(weight, bias), pkg, "conv.onnx")
    x = RNG.standard_normal((2, 1, 4, 4)).astype(np.float32)
    raw, _ = _described_conv(pkg, x, weight, bias, onnx_entry(pkg, "conv.onnx", "conv.onnx.data"))
    # an opener that, like a download cache, keeps each file in its own folder
    fetched = tmp_path / "downloads"
    request = make_request(pkg, raw)
    inner = request.open_file

    def open_file(reference: str, sha256: str | None) -> Path:
        src = inner(reference, sha256)
        dst = fetched / str(sha256) / ("blob" if reference == "conv.onnx.data" else src.name)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        return dst

    from attrs import evolve

    request = evolve(request, open_file=open_file)
    with create_adapter(request) as adapter:
        out = adapter.forward({"raw": x})
    np.testing.assert_allclose(out["features"], conv_numpy(x, weight, bias), rtol=1e-5, atol=1e-5)
    placed = list((pkg / "cache" / "onnx-external-data").glob("*/conv.onnx.data"))
    assert len(placed) == 1
    # a second adapter reuses the placed files
    with create_adapter(request) as adapter:
        np.testing.assert_array_equal(adapter.forward({"raw": x})["features"], out["features"])


def test_unload_frees_the_session(tmp_path: Path) -> None:
    raw = _pool_description(tmp_path)
    x = np.zeros((1, 1, 4, 4), np.float32)
    adapter = OnnxModelAdapter(make_request(tmp_path, raw))
    session_ref = weakref.ref(adapter._session)
    with adapter:
        adapter.forward({"raw": x})
    assert session_ref() is None
    adapter.unload()  # idempotent
    with pytest.raises(PluginError, match="unloaded"):
        adapter.forward({"raw": x})


def test_graph_and_description_disagree_on_number_of_tensors(tmp_path: Path) -> None:
    onnx.save_model(two_in_two_out_model(["a", "b"], ["s", "p"]), tmp_path / "m.onnx")
    x = np.zeros((1, 1, 2, 2), np.float32)
    raw = describe(
        tmp_path, {"raw": x}, {"sum": x, "prod": x}, {"onnx": onnx_entry(tmp_path, "m.onnx")}
    )
    with pytest.raises(PluginError, match=r"has 2 inputs \['a', 'b'\].*declares 1"):
        create_adapter(make_request(tmp_path, raw))


def _pool_description(root: Path) -> dict[str, Any]:
    """A 0.5 description of :func:`pool_model` (4 x 4 zeros in, 2 x 2 out) written to ``root``."""
    onnx.save_model(pool_model(), root / "pool.onnx")
    x = np.zeros((1, 1, 4, 4), np.float32)
    return describe(
        root, {"raw": x}, {"pooled": x[..., :2, :2]}, {"onnx": onnx_entry(root, "pool.onnx")}
    )


def test_cuda_without_cuda_provider_is_a_clear_error(tmp_path: Path) -> None:
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA; the error case cannot happen here")
    raw = _pool_description(tmp_path)
    with pytest.raises(PluginError, match="onnxruntime-gpu"):
        create_adapter(make_request(tmp_path, raw, devices=["cuda:0"]))
    with create_adapter(make_request(tmp_path, raw, devices=None)) as adapter:
        assert adapter.providers == ("CPUExecutionProvider",)


def test_broken_model_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken.onnx").write_bytes(b"not an onnx model")
    x = np.zeros((1, 1, 2, 2), np.float32)
    raw = describe(tmp_path, {"raw": x}, {"out": x}, {"onnx": onnx_entry(tmp_path, "broken.onnx")})
    with pytest.raises(PluginError, match=r"broken\.onnx"):
        create_adapter(make_request(tmp_path, raw))


def test_session_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _pool_description(tmp_path)
    monkeypatch.setenv("BIOIMAGEIO_ONNX_INTRA_OP_THREADS", "1")
    monkeypatch.delenv(SPINNING_ENV, raising=False)
    with OnnxModelAdapter(make_request(tmp_path, raw)) as adapter:
        options = adapter._session.get_session_options()
        assert options.intra_op_num_threads == 1
        assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        with pytest.raises(RuntimeError, match="does not have configuration"):
            options.get_session_config_entry(SPINNING_CONFIG_KEY)  # unset: onnxruntime's default
        x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
        expected = adapter.forward({"raw": x})["pooled"]
    for value in ("0", "1"):
        monkeypatch.setenv(SPINNING_ENV, value)
        with OnnxModelAdapter(make_request(tmp_path, raw)) as adapter:
            options = adapter._session.get_session_options()
            assert options.get_session_config_entry(SPINNING_CONFIG_KEY) == value
            np.testing.assert_array_equal(adapter.forward({"raw": x})["pooled"], expected)


def test_onnxruntime_failure_during_run_is_a_plugin_error(tmp_path: Path) -> None:
    onnx.save_model(two_in_two_out_model(["a", "b"], ["s", "p"]), tmp_path / "m.onnx")
    x = np.zeros((1, 1, 4, 5), np.float32)
    raw = describe(
        tmp_path,
        {"raw": x, "mask": x},
        {"sum": x, "prod": x},
        {"onnx": onnx_entry(tmp_path, "m.onnx")},
    )
    with create_adapter(make_request(tmp_path, raw)) as adapter:
        # shapes the graph cannot add elementwise: onnxruntime fails inside its Add node
        with pytest.raises(PluginError) as info:
            adapter.forward({"raw": x, "mask": np.zeros((1, 1, 3, 3), np.float32)})
        text = str(info.value)
        assert "onnxruntime failed to run" in text and "m.onnx" in text
        assert "raw (1, 1, 4, 5) float32" in text and "mask (1, 1, 3, 3) float32" in text
        assert info.value.hint is not None
        np.testing.assert_array_equal(adapter.forward({"raw": x, "mask": x})["sum"], x)
