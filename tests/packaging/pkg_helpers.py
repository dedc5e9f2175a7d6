"""Helpers and fixtures for packaging and weight conversion tests: copies of the example model, a tiny affine model
with a fake weights plugin (numpy only), and a way to run with that plugin's registry."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from descriptions import described

from bioimageio_core import plugins
from bioimageio_core.adapters import AdapterRequest, ModelAdapter
from bioimageio_core.hookspecs import (
    ConverterRegister,
    ConverterSpec,
    WeightFormatRegister,
    WeightFormatSpec,
    hookimpl,
)
from bioimageio_core.sources import open_file
from bioimageio_core.spec import ModelDescr
from bioimageio_core.spec.weights import BUILTIN_WEIGHT_FORMATS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny-nuclei-unet"
AFFINE = (2.0, 1.0)
"""scale, offset of the affine test model: y = 2 x + 1."""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder`` (to show that nothing changed)."""
    return {str(p.relative_to(folder)): sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def example_copy(tmp_path: Path) -> Path:
    """A private copy of the bundled example model folder."""
    target = tmp_path / "example"
    shutil.copytree(EXAMPLE, target)
    return target


def write_yaml(path: Path, data: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(dict(data), sort_keys=False))
    return path


def read_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def affine_model_data(weights: Mapping[str, Any]) -> dict[str, Any]:
    axes_in: list[dict[str, Any]] = [
        {"type": "batch"},
        {"type": "channel", "channel_names": ["c"]},
        {"type": "space", "id": "y", "size": 8},
        {"type": "space", "id": "x", "size": 8},
    ]
    return {
        **described("0.5.4", "affine test model", description="y = 2 x + 1"),
        "inputs": [
            {
                "id": "raw",
                "axes": axes_in,
                "test_tensor": {"source": "input.npy"},
                "data": {"type": "float32"},
            }
        ],
        "outputs": [
            {
                "id": "out",
                "axes": axes_in,
                "test_tensor": {"source": "output.npy"},
                "data": {"type": "float32"},
            }
        ],
        "weights": dict(weights),
        "config": {
            "bioimageio": {
                "reproducibility_tolerance": [
                    {"relative_tolerance": 1e-4, "absolute_tolerance": 1e-4}
                ]
            }
        },
    }


@pytest.fixture
def affine_model(tmp_path: Path) -> Path:
    """A folder with rdf.yaml of a model y = 2 x + 1 whose only weights are 'keras_hdf5' (an
    ``.npy`` holding [scale, offset], run by the fake plugin below)."""
    folder = tmp_path / "affine"
    folder.mkdir()
    x = np.random.default_rng(0).normal(size=(1, 1, 8, 8)).astype("float32")
    np.save(folder / "input.npy", x)
    np.save(folder / "output.npy", (AFFINE[0] * x + AFFINE[1]).astype("float32"))
    np.save(folder / "affine.npy", np.array(AFFINE, dtype="float64"))
    weights = {"keras_hdf5": {"source": "affine.npy", "tensorflow_version": "2.15"}}
    write_yaml(folder / "rdf.yaml", affine_model_data(weights))
    return folder / "rdf.yaml"


# ---------------------------------------------------------------------------------------------
# a fake plugin: every format holds [scale, offset] in an .npy file


def read_affine(model: ModelDescr, weight_format: str) -> np.ndarray[Any, Any]:
    assert model.root is not None
    entry = model.weights[weight_format]
    params: np.ndarray[Any, Any] = np.load(open_file(model.root, entry.source, entry.sha256))
    return params


class AffineAdapter(ModelAdapter):
    def __init__(self, request: AdapterRequest) -> None:
        super().__init__(request)
        path = request.open_file(request.weights.source, request.weights.sha256)
        self.params = np.load(path)

    def forward(
        self, inputs: Mapping[str, np.ndarray[Any, Any]]
    ) -> dict[str, np.ndarray[Any, Any]]:
        (x,) = self.ordered_inputs(inputs)
        assert x is not None
        return self.outputs_by_id([(self.params[0] * x + self.params[1]).astype("float32")])

    def unload(self) -> None:
        pass


Convert = Callable[[ModelDescr, str, Path, Mapping[str, Any]], Any]


def affine_converter(target: str, *, scale_error: float = 0.0, fail: str | None = None) -> Convert:
    """A converter to ``target`` that copies [scale, offset] (plus ``scale_error``), or raises."""

    def convert(
        model: ModelDescr, source: str, output_path: Path, options: Mapping[str, Any]
    ) -> Any:
        if fail is not None:
            output_path.write_bytes(b"half-written")
            raise RuntimeError(fail)
        params = read_affine(model, source).copy()
        params[0] += scale_error
        np.save(output_path, params)
        # np.save appends .npy to a name without it; keep the name we were given
        written = output_path.with_name(output_path.name + ".npy")
        if not output_path.exists() and written.exists():
            written.rename(output_path)
        cls = BUILTIN_WEIGHT_FORMATS[target]
        version_field = {
            "onnx": {"opset_version": 17},
            "torchscript": {"pytorch_version": "2.13.0"},
            "pytorch_state_dict": {},
        }.get(target, {"tensorflow_version": "2.15"})
        return cls(source=output_path.name, **version_field)

    return convert


class AffinePlugin:
    """Weight formats (all read [scale, offset] from .npy) and the given converters."""

    def __init__(
        self, converters: Sequence[ConverterSpec], formats: Sequence[str] | None = None
    ) -> None:
        self.converters = list(converters)
        self.formats = list(formats or ("keras_hdf5", "onnx", "torchscript", "tensorflow_js"))

    @hookimpl
    def bioimageio_weight_formats(self, register: WeightFormatRegister) -> None:
        for name in self.formats:
            register.add(
                WeightFormatSpec(name, BUILTIN_WEIGHT_FORMATS[name], AffineAdapter, lambda: None)
            )

    @hookimpl
    def bioimageio_weight_converters(self, register: ConverterRegister) -> None:
        for spec in self.converters:
            register.add(spec)


UseConverters = Callable[..., plugins.PluginRegistry]


@pytest.fixture
def use_converters(monkeypatch: pytest.MonkeyPatch) -> Iterator[UseConverters]:
    """``use_converters(*specs)``: the plugin registry holds only the fake plugin with these
    converters (no installed plugin is loaded)."""

    def use(*specs: ConverterSpec) -> plugins.PluginRegistry:
        registry = plugins.create_manager(
            extra_plugins={"affine-plugin": AffinePlugin(specs)}, entry_points=[]
        )
        monkeypatch.setattr(plugins, "get_registry", lambda settings=None: registry)
        return registry

    yield use
    plugins.reset()


def affine_verifier(model: ModelDescr, weight_format: str) -> str | None:
    """Independent check: test input through [scale, offset] of the format vs the test output,
    at the description's first reproducibility tolerance."""
    assert model.root is not None
    x = np.load(open_file(model.root, model.inputs[0].test_tensor.source))
    expected = np.load(open_file(model.root, model.outputs[0].test_tensor.source))
    params = read_affine(model, weight_format)
    actual = params[0] * x + params[1]
    tol = model.config.bioimageio.reproducibility_tolerance[0]
    if np.allclose(actual, expected, rtol=tol.relative_tolerance, atol=tol.absolute_tolerance):
        return None
    return f"max absolute difference {np.abs(actual - expected).max():.3g}"
