"""Weight converters of the torch plugin: numbers of the converted networks vs the eager network."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from bioimageio_run_torch import plugin
from bioimageio_run_torch.converters import (
    convert_to_onnx,
    convert_to_torchscript,
    dynamic_axes,
    example_inputs,
)

import bioimageio_core.plugin.testing as kit
from bioimageio_core import load_description
from bioimageio_core.plugin import PluginError

PYTORCH_VERSION = torch.__version__.split("+")[0]
PROJECT_ROOT = Path(__file__).resolve().parents[3]

NETS = textwrap.dedent(
    '''
    import torch
    from torch import nn


    class Scriptable(nn.Module):
        def __init__(self, channels: int = 2):
            super().__init__()
            self.conv = nn.Conv2d(1, channels, 3, padding=1)

        def forward(self, x):
            return torch.sigmoid(self.conv(x))


    class NeedsTracing(nn.Module):
        """forward uses a lambda, which torch.jit.script rejects."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x):
            double = lambda t: t * 2.0  # noqa: E731
            return double(self.conv(x))
    '''
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_nets(folder: Path) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"nets_{abs(hash(folder))}", folder / "nets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_model(folder: Path, net_name: str, *, fixed_size: bool = False) -> tuple[Path, Any]:
    """A 0.5 model with pytorch_state_dict weights of ``net_name`` (from nets.py), preprocessing
    ``scale_linear`` (0.5 x + 1), and test outputs computed with the eager network."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nets.py").write_text(NETS)
    torch.manual_seed(0)
    net = getattr(load_nets(folder), net_name)().eval()
    torch.save(net.state_dict(), folder / "weights.pt")
    x = np.random.default_rng(1).normal(size=(1, 1, 24, 24)).astype("float32")
    with torch.no_grad():
        y = net(torch.from_numpy(0.5 * x + 1.0)).numpy()
    np.save(folder / "input.npy", x)
    np.save(folder / "output.npy", y)
    size: Any = 24 if fixed_size else {"min": 16, "step": 8}
    channels = y.shape[1]
    rdf = {
        "format_version": "0.5.4",
        "type": "model",
        "name": f"{net_name} test model",
        "description": "built by the torch converter tests",
        "authors": [{"name": "test"}],
        "cite": [{"text": "test", "doi": "10.1000/xyz"}],
        "license": "MIT",
        "inputs": [
            {
                "id": "raw",
                "axes": [
                    {"type": "batch"},
                    {"type": "channel", "channel_names": ["c"]},
                    {"type": "space", "id": "y", "size": size},
                    {"type": "space", "id": "x", "size": size},
                ],
                "test_tensor": {"source": "input.npy", "sha256": sha256(folder / "input.npy")},
                "data": {"type": "float32"},
                "preprocessing": [{"id": "scale_linear", "kwargs": {"gain": 0.5, "offset": 1.0}}],
            }
        ],
        "outputs": [
            {
                "id": "out",
                "axes": [
                    {"type": "batch"},
                    {"type": "channel", "channel_names": [f"c{i}" for i in range(channels)]},
                    {"type": "space", "id": "y", "size": {"tensor_id": "raw", "axis_id": "y"}},
                    {"type": "space", "id": "x", "size": {"tensor_id": "raw", "axis_id": "x"}},
                ],
                "test_tensor": {"source": "output.npy", "sha256": sha256(folder / "output.npy")},
                "data": {"type": "float32"},
            }
        ],
        "weights": {
            "pytorch_state_dict": {
                "source": "weights.pt",
                "sha256": sha256(folder / "weights.pt"),
                "architecture": {
                    "source": "nets.py",
                    "sha256": sha256(folder / "nets.py"),
                    "callable": net_name,
                },
                "pytorch_version": PYTORCH_VERSION,
            }
        },
    }
    (folder / "rdf.yaml").write_text(yaml.safe_dump(rdf, sort_keys=False))
    return folder / "rdf.yaml", net


def eager(net: Any, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    with torch.no_grad():
        result: np.ndarray[Any, Any] = net(torch.from_numpy(x)).numpy()
    return result


def onnx_run(path: Path, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["raw"]
    assert [o.name for o in session.get_outputs()] == ["out"]
    result: np.ndarray[Any, Any] = session.run(None, {"raw": x})[0]
    return result


OTHER_INPUTS = [
    np.random.default_rng(2).normal(size=(2, 1, 32, 40)).astype("float32"),
    np.random.default_rng(3).normal(size=(1, 1, 16, 24)).astype("float32"),
]


def test_example_inputs_are_the_preprocessed_test_inputs(tmp_path: Path) -> None:
    rdf, _ = write_model(tmp_path / "m", "Scriptable")
    model = load_description(rdf)
    (x,) = example_inputs(model)
    expected = 0.5 * np.load(tmp_path / "m" / "input.npy") + 1.0
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-6)


def test_state_dict_to_torchscript_by_scripting(tmp_path: Path) -> None:
    rdf, net = write_model(tmp_path / "m", "Scriptable")
    model = load_description(rdf)
    out = tmp_path / "m" / "weights_torchscript.pt"
    entry = convert_to_torchscript(model, "pytorch_state_dict", out, {})
    assert entry.source == out.name and entry.parent == "pytorch_state_dict"
    assert entry.pytorch_version == PYTORCH_VERSION
    assert "torch.jit.script" in entry.comment
    scripted = torch.jit.load(str(out))
    assert isinstance(scripted, torch.jit.ScriptModule)
    for x in OTHER_INPUTS:
        np.testing.assert_allclose(eager(scripted, x), eager(net, x), rtol=1e-6, atol=1e-7)


def test_state_dict_to_torchscript_falls_back_to_tracing(tmp_path: Path) -> None:
    rdf, net = write_model(tmp_path / "m", "NeedsTracing")
    model = load_description(rdf)
    out = tmp_path / "m" / "weights_torchscript.pt"
    with pytest.raises(PluginError, match="torch.jit.script failed"):
        convert_to_torchscript(model, "pytorch_state_dict", out, {"allow_tracing": False})
    entry = convert_to_torchscript(model, "pytorch_state_dict", out, {"allow_tracing": True})
    assert "torch.jit.trace" in entry.comment
    traced = torch.jit.load(str(out))
    for x in OTHER_INPUTS:
        np.testing.assert_allclose(eager(traced, x), eager(net, x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("opset", [17, 18])
def test_state_dict_to_onnx_with_dynamic_axes(tmp_path: Path, opset: int) -> None:
    onnx = pytest.importorskip("onnx")
    rdf, net = write_model(tmp_path / "m", "Scriptable")
    model = load_description(rdf)
    out = tmp_path / "m" / "weights.onnx"
    options = {} if opset == 17 else {"opset_version": opset}
    entry = convert_to_onnx(model, "pytorch_state_dict", out, options)
    assert (entry.source, entry.parent, entry.opset_version) == (
        "weights.onnx",
        "pytorch_state_dict",
        opset,
    )
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) == opset
    for x in OTHER_INPUTS:  # other batch sizes and spatial sizes than the test input
        np.testing.assert_allclose(onnx_run(out, x), eager(net, x), rtol=1e-5, atol=1e-6)


def test_torchscript_to_onnx(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    rdf, net = write_model(tmp_path / "m", "Scriptable")
    model = load_description(rdf)
    ts = tmp_path / "m" / "weights_torchscript.pt"
    convert_to_torchscript(model, "pytorch_state_dict", ts, {})
    raw = yaml.safe_load(rdf.read_text())
    raw["weights"] = {
        "torchscript": {
            "source": ts.name,
            "sha256": sha256(ts),
            "pytorch_version": PYTORCH_VERSION,
        }
    }
    rdf.write_text(yaml.safe_dump(raw, sort_keys=False))
    model = load_description(rdf)
    out = tmp_path / "m" / "weights.onnx"
    entry = convert_to_onnx(model, "torchscript", out, {})
    assert entry.parent == "torchscript"
    for x in OTHER_INPUTS:
        np.testing.assert_allclose(onnx_run(out, x), eager(net, x), rtol=1e-5, atol=1e-6)


def test_dynamic_axes_follow_the_description(tmp_path: Path) -> None:
    model = load_description(write_model(tmp_path / "a", "Scriptable")[0])
    assert dynamic_axes(model) == {
        "raw": {0: "raw_batch", 2: "raw_y", 3: "raw_x"},
        "out": {0: "out_batch", 2: "out_y", 3: "out_x"},
    }
    fixed = load_description(write_model(tmp_path / "b", "Scriptable", fixed_size=True)[0])
    assert dynamic_axes(fixed) == {
        "raw": {0: "raw_batch"},
        "out": {0: "out_batch", 2: "out_y", 3: "out_x"},
    }


def test_a_converter_refuses_other_source_formats(tmp_path: Path) -> None:
    model = load_description(write_model(tmp_path / "m", "Scriptable")[0])
    with pytest.raises(PluginError, match="not onnx"):
        convert_to_torchscript(model, "onnx", tmp_path / "x.pt", {})


def test_plugin_registers_the_converters() -> None:
    converters = kit.registered_converters(plugin)
    assert set(converters) == {
        ("pytorch_state_dict", "torchscript"),
        ("pytorch_state_dict", "onnx"),
        ("torchscript", "onnx"),
    }
    assert all(s.is_available() is None for s in converters.values())


@pytest.fixture
def torch_and_onnx_registry() -> Iterator[None]:
    """Only the torch plugin and the onnx plugin (skips when the onnx plugin is absent)."""
    onnx_plugin = pytest.importorskip("bioimageio_run_onnx.plugin")
    with kit.only_plugins({"torch": plugin, "onnx": onnx_plugin}):
        yield


FRESH_PROCESS_TEST = """
import sys
from bioimageio_core.plugin import registry as plugins
from bioimageio_run_onnx import plugin as onnx_plugin
from bioimageio_run_torch import plugin as torch_plugin
registry = plugins.create_manager(
    extra_plugins={"torch": torch_plugin, "onnx": onnx_plugin}, entry_points=[]
)
plugins.get_registry = lambda settings=None: registry
from bioimageio_core import test_model
summary = test_model(sys.argv[1])
print(summary.format_text())
sys.exit(0 if summary.status == "passed" else 1)
"""


def test_add_weights_end_to_end_then_package_and_test_in_a_fresh_process(
    tmp_path: Path, torch_and_onnx_registry: None
) -> None:
    pytest.importorskip("onnx")
    from bioimageio_core import add_weights, save_bioimageio_package, test_model

    rdf, _ = write_model(tmp_path / "m", "Scriptable")
    report = add_weights(rdf, tmp_path / "converted")
    assert [(r.source_format, r.target_format, r.status) for r in report.results] == [
        ("pytorch_state_dict", "torchscript", "added"),
        ("pytorch_state_dict", "onnx", "added"),
    ], report.format_text()
    summary = test_model(tmp_path / "converted")
    assert summary.status == "passed", summary.format_text()

    package = save_bioimageio_package(tmp_path / "converted", tmp_path / "model.zip")
    env_path = ":".join(str(PROJECT_ROOT / p) for p in (".", "plugins/torch", "plugins/onnx"))
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS_TEST, str(package)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "torchscript" in result.stdout and "onnx" in result.stdout
