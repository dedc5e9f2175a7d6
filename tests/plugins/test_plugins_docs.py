"""Meta-tests: every hook is documented in docs/plugins.md with its signature, and the core uses
what a plugin registers through each hook.

One installed distribution (a real entry point) implements every hook with small numpy stand-ins
that record each call; for every hook a proof runs the public API a user calls and checks both
the result and that the plugin's function was called. A hook without a proof fails the suite.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import bioimageio_core
from bioimageio_core import hookspecs, plugins
from bioimageio_core.plugin.testing import ModelDef, TensorDef, WeightsDef, write_model
from bioimageio_core.tensor import Tensor

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
MakeDist = Callable[[str, str], str]

EVERY_HOOK = '''
import os
from pathlib import Path

import attrs
import numpy as np

from bioimageio_core.plugin import (
    ConverterRegister, ConverterSpec, ImageIORegister, ImageIOSpec, ModelAdapter, OpRegister,
    OpSpec, RawArray, ResolvedSource, SourceResolverRegister, SourceResolverSpec,
    WeightFormatRegister, WeightFormatSpec, WeightsEntryDescrBase, hookimpl,
)

CALLS = []
"""(what, detail) of every call the core made into this plugin."""


@attrs.frozen(kw_only=True)
class ProofWeights(WeightsEntryDescrBase):
    factor: float = 1.0


class ProofAdapter(ModelAdapter):
    def __init__(self, request):
        super().__init__(request)
        CALLS.append(("create_adapter", request.weights_format))
        self.factor = request.weights.factor

    def forward(self, inputs):
        CALLS.append(("forward", tuple(inputs)))
        ordered = self.ordered_inputs(inputs)
        return self.outputs_by_id([x * self.factor for x in ordered if x is not None])

    def unload(self):
        CALLS.append(("unload", self.weights_format))


@attrs.frozen
class AddKwargs:
    value: float


def add(kwargs, target, members, stat):
    CALLS.append(("op", target.member_id))
    x = members[target.member_id]
    return x.with_data(x.data + kwargs.value)


def convert(model, source_format, output_path, options):
    CALLS.append(("convert", source_format))
    factor = model.weights[source_format].factor
    output_path.write_bytes(b"proof weights")
    return ProofWeights(source=output_path.name, factor=factor)


def resolve(source, settings):
    CALLS.append(("resolve", source))
    return ResolvedSource(url=os.environ["PROOF_MODEL"])


def read(location, mmap):
    CALLS.append(("read", location.path.name))
    return RawArray(np.loadtxt(location.path, ndmin=2), dims=("y", "x"))


def write(location, tensor):
    CALLS.append(("write", location.path.name))
    np.savetxt(location.path, tensor.data)


def available():
    return None


@hookimpl
def bioimageio_weight_formats(register: WeightFormatRegister) -> None:
    for name in ("proof_scale", "proof_scale_copy"):
        register.add(WeightFormatSpec(name, ProofWeights, ProofAdapter, available, priority=90))


@hookimpl
def bioimageio_processing_ops(register: OpRegister) -> None:
    register.add(OpSpec("proof_add", (AddKwargs,), add, pointwise=True))


@hookimpl
def bioimageio_weight_converters(register: ConverterRegister) -> None:
    register.add(ConverterSpec("proof_scale", "proof_scale_copy", convert))


@hookimpl
def bioimageio_source_resolvers(register: SourceResolverRegister) -> None:
    register.add(SourceResolverSpec("proof", lambda s: s.startswith("proof:"), resolve))


@hookimpl
def bioimageio_image_io(register: ImageIORegister) -> None:
    register.add(ImageIOSpec("proof_text", (".prooftxt",), read, write))
'''


def hook_names() -> list[str]:
    return [
        name
        for name, fn in vars(hookspecs).items()
        if name.startswith("bioimageio_") and callable(fn)
        and hasattr(fn, f"{hookspecs.PROJECT_NAME}_spec")
    ]


@pytest.fixture
def proof_plugin(make_dist: MakeDist) -> ModuleType:
    """The installed plugin implementing every hook (its ``CALLS`` record the core's calls)."""
    name = make_dist("bioimageio-proof", EVERY_HOOK)
    (info,) = [i for i in plugins.plugin_infos() if i.name == name]
    assert info.status == "loaded", info.error
    return importlib.import_module(info.module)


def _model(folder: Path, preprocessing: list[dict[str, Any]] | None = None) -> tuple[Path, Any]:
    """A model of the plugin's format multiplying by 2 (and its preprocessing)."""
    x = np.arange(16, dtype="float32").reshape(1, 1, 4, 4)
    expected = 2 * (x + 1) if preprocessing else 2 * x
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "w.bin").write_bytes(b"proof weights")
    model = ModelDef(
        "proof model",
        (TensorDef("raw", "bcyx", x),),
        (TensorDef("out", "bcyx", expected),),
        (WeightsDef("proof_scale", "w.bin", {"factor": 2.0}),),
    )
    path = write_model(folder, model)
    if preprocessing:
        import yaml

        raw = yaml.safe_load(path.read_text())
        raw["inputs"][0]["preprocessing"] = preprocessing
        path.write_text(yaml.safe_dump(raw))
    return path, x


def prove_weight_formats(plugin: ModuleType, tmp_path: Path) -> None:
    path, x = _model(tmp_path)
    out = bioimageio_core.predict(model=str(path), inputs=x)
    np.testing.assert_array_equal(out.members["out"].data, 2 * x)
    calls = [c[0] for c in plugin.CALLS]
    assert calls[:2] == ["create_adapter", "forward"] and "unload" in calls


def prove_processing_ops(plugin: ModuleType, tmp_path: Path) -> None:
    path, x = _model(tmp_path, [{"id": "proof_add", "kwargs": {"value": 1}}])
    out = bioimageio_core.predict(model=str(path), inputs=x)
    np.testing.assert_array_equal(out.members["out"].data, 2 * (x + 1))
    assert ("op", "raw") in plugin.CALLS


def prove_weight_converters(plugin: ModuleType, tmp_path: Path) -> None:
    path, _ = _model(tmp_path / "model")
    report = bioimageio_core.add_weights(str(path), tmp_path / "package", target_format="proof_scale_copy")
    assert [(r.source_format, r.target_format, r.status) for r in report.results] == [
        ("proof_scale", "proof_scale_copy", "added")
    ], report
    assert ("convert", "proof_scale") in plugin.CALLS
    # the new entry passed its model test: the core ran the converted weights
    assert ("create_adapter", "proof_scale_copy") in plugin.CALLS


def prove_source_resolvers(plugin: ModuleType, tmp_path: Path) -> None:
    path, _ = _model(tmp_path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROOF_MODEL", str(path))
        descr = bioimageio_core.load_description("proof:a model", perform_io_checks=False)
    assert descr.name == "proof model"
    assert ("resolve", "proof:a model") in plugin.CALLS


def prove_image_io(plugin: ModuleType, tmp_path: Path) -> None:
    data = np.array([[1.0, 2.0], [3.0, 4.0]])
    bioimageio_core.save_tensor(tmp_path / "a.prooftxt", Tensor(data, ("y", "x")))
    loaded = bioimageio_core.load_tensor(tmp_path / "a.prooftxt")
    np.testing.assert_array_equal(loaded.data, data)
    (written, read) = [c for c in plugin.CALLS if c[0] in ("write", "read")]
    # written under a temporary name and renamed into place (complete or absent)
    assert written[0] == "write" and written[1].endswith("a.prooftxt")
    assert read == ("read", "a.prooftxt")


PROOFS: dict[str, Callable[[ModuleType, Path], None]] = {
    "bioimageio_weight_formats": prove_weight_formats,
    "bioimageio_processing_ops": prove_processing_ops,
    "bioimageio_weight_converters": prove_weight_converters,
    "bioimageio_source_resolvers": prove_source_resolvers,
    "bioimageio_image_io": prove_image_io,
}


def test_there_are_hooks() -> None:
    assert {"bioimageio_weight_formats", "bioimageio_processing_ops",
            "bioimageio_weight_converters"} <= set(hook_names())


def test_every_hook_is_documented_with_signature() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for name in hook_names():
        fn = getattr(hookspecs, name)
        params = ", ".join(
            f"{p.name}: {p.annotation}" for p in inspect.signature(fn).parameters.values()
        )
        heading = f"### `{name}({params}) -> None`"
        assert heading in text, f"docs/plugins.md lacks a section {heading!r}"
        assert fn.__doc__ and len(fn.__doc__.strip()) > 40, f"{name} needs a docstring"


def test_every_hook_has_a_proof_of_use() -> None:
    assert set(PROOFS) == set(hook_names())


@pytest.mark.parametrize("hook", sorted(PROOFS))
def test_the_core_uses_what_the_hook_registers(
    hook: str, proof_plugin: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIOIMAGEIO_CACHE_PATH", str(tmp_path / "cache"))
    proof_plugin.CALLS.clear()
    PROOFS[hook](proof_plugin, tmp_path)
