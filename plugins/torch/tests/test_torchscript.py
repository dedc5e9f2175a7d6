"""torchscript adapter: scripted and traced exports reproduce the eager torch module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from bioimageio_run_torch.plugin import create_torchscript_adapter
from bioimageio_run_torch.torchscript import TorchscriptAdapter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch_helpers import (
    Ref,
    TensorDef,
    make_request,
    model_rdf,
    run_eager,
    scripted_model_rdf,
    seeded,
    torchscript_weights,
)

from bioimageio_core.plugin import ModelAdapter, PluginError


def _open(
    model_dir: Path, exported: Any, inputs: list[TensorDef], outputs: list[TensorDef]
) -> ModelAdapter:
    """The torchscript adapter of a model of ``exported`` (a scripted or traced module)."""
    weights = {"torchscript": torchscript_weights(model_dir, exported)}
    rdf = model_rdf(model_dir, inputs, outputs, weights)
    return create_torchscript_adapter(make_request(model_dir, rdf, "torchscript"))


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize("export", ["script", "trace"])
def test_tiny_conv_batch_of_three(export: str, nets: ModuleType, model_dir: Path) -> None:
    module = seeded(nets.TinyConv, in_channels=2, out_channels=3)
    x = _rng().standard_normal((3, 2, 16, 16)).astype(np.float32)
    exported = (
        torch.jit.script(module)
        if export == "script"
        else torch.jit.trace(module, torch.from_numpy(x))
    )
    expected = run_eager(module, x).numpy()
    with _open(
        model_dir,
        exported,
        [TensorDef("raw", "bcyx", x)],
        [TensorDef("out", "bcyx", expected, Ref("raw"))],
    ) as adapter:
        assert isinstance(adapter, TorchscriptAdapter)
        result = adapter.forward({"raw": x})
    assert set(result) == {"out"}
    assert result["out"].shape == (3, 3, 16, 16)
    assert result["out"].dtype == np.float32
    np.testing.assert_allclose(result["out"], expected, rtol=1e-5, atol=1e-6)


def test_multi_input_multi_output_matched_by_id(nets: ModuleType, model_dir: Path) -> None:
    module = seeded(nets.MultiInOut)
    raw = _rng(1).standard_normal((2, 2, 8, 8)).astype(np.float32)
    mask = _rng(2).random((2, 1, 8, 8)).astype(np.float32)
    features, score = (t.numpy() for t in run_eager(module, raw, mask))
    with _open(
        model_dir,
        torch.jit.script(module),
        [TensorDef("raw", "bcyx", raw), TensorDef("mask", "bcyx", mask)],
        [
            TensorDef("features", "bcyx", features, Ref("raw")),
            TensorDef("score", "bc", score),
        ],
    ) as adapter:
        # dict order of the inputs is the reverse of the description's order
        result = adapter.forward({"mask": mask, "raw": raw})
    assert list(result) == ["features", "score"]
    np.testing.assert_allclose(result["features"], features, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result["score"], score, rtol=1e-5, atol=1e-6)
    assert result["score"].shape == (2, 3)


def test_dict_outputs_are_matched_by_output_id(nets: ModuleType, model_dir: Path) -> None:
    module = seeded(nets.DictOutput)
    x = _rng(3).standard_normal((1, 1, 8, 8)).astype(np.float32)
    reference = run_eager(module, x)
    with _open(
        model_dir,
        torch.jit.script(module),
        [TensorDef("x", "bcyx", x)],
        [  # the description lists the outputs in another order than the model's dict
            TensorDef("features", "bcyx", reference["features"].numpy(), Ref("x")),
            TensorDef("score", "bc", reference["score"].numpy()),
        ],
    ) as adapter:
        result = adapter.forward({"x": x})
    assert result["features"].shape == (1, 2, 8, 8)
    assert result["score"].shape == (1, 2)
    np.testing.assert_allclose(
        result["features"], reference["features"].numpy(), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(result["score"], reference["score"].numpy(), rtol=1e-5, atol=1e-6)


def test_dict_output_without_the_output_ids_is_an_error(nets: ModuleType, model_dir: Path) -> None:
    module = seeded(nets.DictOutput)
    x = np.zeros((1, 1, 8, 8), np.float32)
    with _open(
        model_dir,
        torch.jit.script(module),
        [TensorDef("x", "bcyx", x)],
        [TensorDef("prediction", "bcyx", np.zeros((1, 2, 8, 8), np.float32), Ref("x"))],
    ) as adapter:
        with pytest.raises(PluginError, match=r"lacks the output ids \['prediction'\]"):
            adapter.forward({"x": x})


def test_output_half_the_input_size(nets: ModuleType, model_dir: Path) -> None:
    module = seeded(nets.Downsample2)
    x = _rng(4).standard_normal((2, 1, 16, 16)).astype(np.float32)
    expected = run_eager(module, x).numpy()
    assert expected.shape == (2, 2, 8, 8)
    rdf = model_rdf(
        model_dir,
        [TensorDef("raw", "bcyx", x)],
        [TensorDef("down", "bcyx", expected, Ref("raw", 0.5))],
        {
            "torchscript": torchscript_weights(
                model_dir, torch.jit.trace(module, torch.from_numpy(x))
            )
        },
    )
    with create_torchscript_adapter(make_request(model_dir, rdf, "torchscript")) as adapter:
        result = adapter.forward({"raw": x})
    assert result["down"].shape == (2, 2, 8, 8)
    np.testing.assert_allclose(result["down"], expected, rtol=1e-5, atol=1e-6)


def test_uint8_input_is_passed_as_uint8(nets: ModuleType, model_dir: Path) -> None:
    module = seeded(nets.Uint8Input)
    x = _rng(5).integers(0, 256, (2, 1, 8, 8), dtype=np.uint8)
    # independent formulation: the float image the model sees
    conv = module.get_submodule("conv")
    expected = run_eager(conv, x.astype(np.float32) / np.float32(255)).numpy()
    with _open(
        model_dir,
        torch.jit.script(module),
        [TensorDef("raw", "bcyx", x)],
        [TensorDef("out", "bcyx", expected, Ref("raw"))],
    ) as adapter:
        result = adapter.forward({"raw": x})
        # the model refuses anything but uint8, so the adapter must not have cast the input
        with pytest.raises(PluginError, match="takes uint8 images"):
            adapter.forward({"raw": x.astype(np.float32)})
    np.testing.assert_allclose(result["out"], expected, rtol=1e-5, atol=1e-5)


def test_missing_optional_input_is_passed_as_none(nets: ModuleType, model_dir: Path) -> None:
    module = seeded(nets.OptionalMask)
    x = _rng(8).standard_normal((1, 1, 8, 8)).astype(np.float32)
    mask = (_rng(9).random((1, 1, 8, 8)) > 0.5).astype(np.float32)
    with_mask = run_eager(module, x, mask).numpy()
    without_mask = run_eager(module, x).numpy()
    rdf = model_rdf(
        model_dir,
        [TensorDef("x", "bcyx", x), TensorDef("mask", "bcyx", mask)],
        [TensorDef("out", "bcyx", with_mask, Ref("x"))],
        {"torchscript": torchscript_weights(model_dir, torch.jit.script(module))},
    )
    rdf["inputs"][1]["optional"] = True
    with create_torchscript_adapter(make_request(model_dir, rdf, "torchscript")) as adapter:
        np.testing.assert_allclose(
            adapter.forward({"x": x, "mask": mask})["out"], with_mask, rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(
            adapter.forward({"x": x})["out"], without_mask, rtol=1e-5, atol=1e-6
        )
    assert not np.allclose(with_mask, without_mask)


def test_read_only_fortran_and_big_endian_inputs(nets: ModuleType, model_dir: Path) -> None:
    module = seeded(nets.TinyConv)
    x = _rng(6).standard_normal((1, 1, 8, 8)).astype(np.float32)
    expected = run_eager(module, x).numpy()
    rdf = scripted_model_rdf(model_dir, module, x)
    read_only = x.copy()
    read_only.flags.writeable = False
    variants = [read_only, np.asfortranarray(x), x.astype(">f4")]
    with create_torchscript_adapter(make_request(model_dir, rdf, "torchscript")) as adapter:
        for variant in variants:
            np.testing.assert_allclose(
                adapter.forward({"raw": variant})["out"], expected, rtol=1e-5, atol=1e-6
            )


@pytest.fixture(scope="module")
def scripted_tiny_conv(
    nets: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[torch.nn.Module, ModelAdapter]]:
    """A scripted TinyConv behind an adapter, shared by the examples of one property test."""
    folder = tmp_path_factory.mktemp("scripted_tiny_conv")
    module = seeded(nets.TinyConv, seed=3)
    x = np.zeros((1, 1, 4, 4), np.float32)
    rdf = scripted_model_rdf(folder, module, x)
    with create_torchscript_adapter(make_request(folder, rdf, "torchscript")) as adapter:
        yield module, adapter


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batch=st.integers(1, 3),
    height=st.integers(1, 12),
    width=st.integers(1, 12),
    seed=st.integers(0, 2**16),
)
def test_any_batch_and_size(
    batch: int,
    height: int,
    width: int,
    seed: int,
    scripted_tiny_conv: tuple[torch.nn.Module, ModelAdapter],
) -> None:
    module, adapter = scripted_tiny_conv
    x = _rng(seed).standard_normal((batch, 1, height, width)).astype(np.float32)
    expected = run_eager(module, x).numpy()
    result = adapter.forward({"raw": x})
    assert result["out"].shape == (batch, 2, height, width)
    np.testing.assert_allclose(result["out"], expected, rtol=1e-5, atol=1e-6)


def test_not_a_torchscript_file(model_dir: Path) -> None:
    (model_dir / "weights.pt").write_bytes(b"not a zip archive")
    x = np.zeros((1, 1, 4, 4), np.float32)
    rdf = model_rdf(
        model_dir,
        [TensorDef("raw", "bcyx", x)],
        [TensorDef("out", "bcyx", x, Ref("raw"))],
        {"torchscript": {"source": "weights.pt", "pytorch_version": "2.13.0"}},
    )
    with pytest.raises(PluginError) as info:
        create_torchscript_adapter(make_request(model_dir, rdf, "torchscript"))
    text = str(info.value)
    assert "torchscript weights 'weights.pt'" in text
    assert "bioimageio-run-torch" in text
    assert "$.weights.torchscript.source" in text


def test_wrong_input_shape_names_format_and_shapes(nets: ModuleType, model_dir: Path) -> None:
    x = np.zeros((1, 1, 4, 4), np.float32)
    rdf = scripted_model_rdf(model_dir, seeded(nets.TinyConv), x)
    with create_torchscript_adapter(make_request(model_dir, rdf, "torchscript")) as adapter:
        with pytest.raises(PluginError, match=r"torchscript weights 'weights.pt'.*\(1, 3, 4, 4\)"):
            adapter.forward({"raw": np.zeros((1, 3, 4, 4), np.float32)})
        with pytest.raises(KeyError, match="unknown input tensor ids"):
            adapter.forward({"raw": x, "other": x})
