"""The test kit shipped for plugin authors (``bioimageio_core.plugin.testing``): the test-model
DSL, requests, plugin checks."""

from __future__ import annotations

import hashlib
import importlib.metadata
import sys
import textwrap
import types
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bioimageio_core.plugin as door
import bioimageio_core.plugin.testing as pt
from bioimageio_core.plugin import (
    AdapterRequest,
    FolderRoot,
    HashMismatchError,
    ModelAdapter,
    ModelDescr,
    OnnxWeightsDescr,
    Settings,
    SourceError,
    UrlRoot,
    WeightFormatRegister,
    WeightFormatSpec,
    ZipRoot,
    hookimpl,
)
from bioimageio_core.sources import as_root

FRAMEWORKS = ("torch", "onnxruntime", "onnx", "tensorflow", "keras", "jax")


# ---- a toy backend written with the helpers ------------------------------------------------------


class ScaleAdapter(ModelAdapter):
    """Multiplies the single input by the number stored in the weights file (a .npy scalar)."""

    def __init__(self, request: AdapterRequest[Any]) -> None:
        super().__init__(request)
        path = request.open_file(request.weights.source, request.weights.sha256)
        self.factor = float(np.load(path))

    def forward(
        self, inputs: Mapping[str, np.ndarray[Any, Any]]
    ) -> dict[str, np.ndarray[Any, Any]]:
        (x,) = self.ordered_inputs(inputs)
        assert x is not None
        return self.outputs_by_id([x * self.factor])

    def unload(self) -> None:
        pass


def _write_scale_model(root: Path, factor: float) -> dict[str, Any]:
    np.save(root / "factor.npy", np.array(factor))
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4)
    model = pt.ModelDef(
        "scale",
        (pt.TensorDef("raw", "bcyx", x),),
        (pt.TensorDef("out", "bcyx", x * np.float32(factor)),),
        (pt.WeightsDef("onnx", "factor.npy", {"opset_version": 17}),),
    )
    return pt.model_description(root, model)


def test_round_trip_through_a_toy_backend(tmp_path: Path) -> None:
    raw = _write_scale_model(tmp_path, 2.5)
    model = pt.build_model(raw, tmp_path)
    assert isinstance(model, ModelDescr) and model.root == tmp_path
    request = pt.make_request(model, "onnx", devices=["cpu"])
    assert request.devices == ("cpu",)
    assert isinstance(request.weights, OnnxWeightsDescr) and request.weights.opset_version == 17
    x = np.load(tmp_path / "in_raw.npy")
    with ScaleAdapter(request) as adapter:
        out = adapter.forward({"raw": x})
    np.testing.assert_array_equal(out["out"], np.load(tmp_path / "out_out.npy"))
    np.testing.assert_array_equal(out["out"], x * 2.5)


def test_description_fields_and_files(tmp_path: Path) -> None:
    raw = _write_scale_model(tmp_path, 1.0)
    assert raw["format_version"] == pt.FORMAT_VERSION and raw["type"] == "model"
    (inp,) = raw["inputs"]
    assert inp["data"] == {"type": "float32"}
    digest = hashlib.sha256((tmp_path / "in_raw.npy").read_bytes()).hexdigest()
    assert inp["test_tensor"] == {"source": "in_raw.npy", "sha256": digest}
    assert raw["weights"]["onnx"]["sha256"] == pt.sha256_of(tmp_path / "factor.npy")
    assert (
        pt.sha256_of(tmp_path / "factor.npy")
        == hashlib.sha256((tmp_path / "factor.npy").read_bytes()).hexdigest()
    )
    extra = pt.model_description(
        tmp_path,
        pt.ModelDef(
            "renamed",
            (pt.TensorDef("a", "bx", shape=(None, 8), dtype="uint8"),),
            (pt.TensorDef("b", "bx", shape=(None, 8)),),
            (pt.WeightsDef("onnx", "factor.npy", {"opset_version": 17}),),
            {"config": {"answer": 42}},
        ),
    )
    assert extra["name"] == "renamed" and extra["documentation"] == "README.md"
    assert extra["config"] == {"answer": 42}
    assert (
        extra["inputs"][0]["data"] == {"type": "uint8"} and "test_tensor" not in extra["inputs"][0]
    )
    assert extra["outputs"][0]["data"] == {"type": "float32"}
    model = pt.build_model(extra, tmp_path)
    assert model.name == "renamed" and model.inputs[0].dtype == "uint8"


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from("ciyxz"), min_size=1, max_size=4, unique=True),
    st.lists(st.integers(min_value=1, max_value=9), min_size=4, max_size=4),
    st.none() | st.integers(min_value=1, max_value=4),
)
def test_axes_by_letter(letters: list[str], sizes: list[int], batch: int | None) -> None:
    text = "b" + "".join(letters)
    shape = [123, *sizes[: len(letters)]]
    result = pt.axes(text, shape, batch_size=batch)
    assert result[0] == ({"type": "batch"} if batch is None else {"type": "batch", "size": batch})
    for letter, size, axis in zip(letters, shape[1:], result[1:], strict=True):
        if letter == "c":
            assert axis == {"type": "channel", "channel_names": [f"c{i}" for i in range(size)]}
        elif letter == "i":
            assert axis == {"type": "index", "size": size}
        else:
            assert axis == {"type": "space", "id": letter, "size": size}


def test_axes_free_sizes_and_errors() -> None:
    assert pt.axes("ty", (None, None)) == [
        {"type": "time", "id": "t", "size": {"min": 1, "step": 1}},
        {"type": "space", "id": "y", "size": {"min": 1, "step": 1}},
    ]
    with pytest.raises(ValueError, match="do not fit shape"):
        pt.axes("byx", (1, 2))
    with pytest.raises(ValueError, match="unknown axis letter 'q'"):
        pt.axes("q", (1,))
    with pytest.raises(ValueError, match="channel axis needs a size"):
        pt.axes("c", (None,))


def test_invalid_description_raises_with_the_issues(tmp_path: Path) -> None:
    raw = _write_scale_model(tmp_path, 1.0)
    del raw["inputs"][0]["axes"]
    with pytest.raises(pt.InvalidTestDescription) as info:
        pt.build_model(raw, tmp_path)
    assert info.value.issues and any("inputs" in issue for issue in info.value.issues)
    assert isinstance(info.value, AssertionError)


def test_warnings_fail_only_when_asked(tmp_path: Path) -> None:
    raw = _write_scale_model(tmp_path, 1.0)
    raw["outputs"][0]["id"] = "raw"  # an output sharing an input's id is a warning
    assert pt.build_model(raw, tmp_path).outputs[0].id == "raw"
    with pytest.raises(pt.InvalidTestDescription, match="raw"):
        pt.build_model(raw, tmp_path, allow_warnings=False)


def test_request_opens_files_through_the_sources(tmp_path: Path) -> None:
    raw = _write_scale_model(tmp_path, 1.0)
    request = pt.make_request(pt.build_model(raw, tmp_path), "onnx")
    assert request.devices is None
    assert request.open_file("factor.npy", None) == tmp_path / "factor.npy"
    with pytest.raises(HashMismatchError):
        request.open_file("factor.npy", "0" * 64)
    with pytest.raises(SourceError, match="file not found: missing.npy"):
        request.open_file("missing.npy", None)
    settings = Settings(cache_path=tmp_path / "cache")
    assert pt.make_request(request.model, "onnx", settings=settings).settings is settings
    with pytest.raises(KeyError, match="no 'torchscript' weights"):
        pt.make_request(request.model, "torchscript")


def test_request_for_a_zipped_model(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    raw = _write_scale_model(folder, 3.0)
    package = tmp_path / "model.zip"
    with zipfile.ZipFile(package, "w") as z:
        for path in folder.iterdir():
            z.write(path, path.name)
    for root in (package, ZipRoot(package)):
        request = pt.make_request(pt.build_model(raw, root), "onnx")
        with ScaleAdapter(request) as adapter:
            assert adapter.factor == 3.0


def test_roots() -> None:
    assert as_root(Path("/m")) == FolderRoot(Path("/m"))
    assert as_root("https://example.com/m") == UrlRoot("https://example.com/m/")
    assert as_root(UrlRoot("https://example.com/")) == UrlRoot("https://example.com/")
    with pytest.raises(TypeError, match="model root of type NoneType"):
        as_root(None)


# ---- plugin checks -------------------------------------------------------------------------------


@attrs.frozen
class _Entry:
    source: str
    sha256: str | None = None


def _spec(**changes: Any) -> WeightFormatSpec[Any]:
    base = WeightFormatSpec(
        name="scale", entry_class=_Entry, create_adapter=ScaleAdapter, is_available=lambda: None
    )
    return attrs.evolve(base, **changes)


def _plugin_module() -> types.ModuleType:
    module = types.ModuleType("toy_scale_plugin")

    @hookimpl
    def bioimageio_weight_formats(register: WeightFormatRegister) -> None:
        register.add(_spec())
        register.add(_spec(name="scale2", priority=5))

    module.bioimageio_weight_formats = bioimageio_weight_formats  # type: ignore[attr-defined]
    return module


def test_registered_weight_formats() -> None:
    specs = pt.registered_weight_formats(_plugin_module())
    assert [(s.name, s.priority) for s in specs] == [("scale", 100), ("scale2", 5)]
    for spec in specs:
        pt.check_weight_format_spec(spec)


def test_misspelt_hook_is_reported() -> None:
    module = types.ModuleType("misspelt_plugin")

    @hookimpl
    def bioimageio_weight_format(register: WeightFormatRegister) -> None:
        raise AssertionError("never called")

    module.bioimageio_weight_format = bioimageio_weight_format  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="bioimageio_weight_format"):
        pt.registered_weight_formats(module)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": ""}, "name must be an identifier"),
        ({"name": "a b"}, "name must be an identifier"),
        ({"entry_class": dict}, "entry_class must be an attrs class"),
        ({"is_available": lambda: ""}, "must return None or a reason"),
        ({"is_available": lambda: 0}, "must return None or a reason"),
        ({"create_adapter": None}, "create_adapter must be callable"),
    ],
)
def test_malformed_specs(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        pt.check_weight_format_spec(_spec(**changes))


def test_unavailable_reason_is_fine() -> None:
    pt.check_weight_format_spec(_spec(is_available=lambda: "scalelib is not installed"))


@pytest.fixture
def fake_framework(tmp_path: Path) -> Iterator[Path]:
    """A folder with ``fake_framework_pt`` (a stand-in for a heavy framework) and two plugins."""
    (tmp_path / "fake_framework_pt").mkdir()
    (tmp_path / "fake_framework_pt" / "__init__.py").write_text("")
    (tmp_path / "fake_framework_pt" / "core.py").write_text("")
    (tmp_path / "light_plugin_pt.py").write_text(
        textwrap.dedent(
            """
            import importlib.util
            def unavailable():
                return None if importlib.util.find_spec("fake_framework_pt") else "missing"
            def heavy_check():
                import fake_framework_pt.core
            """
        )
    )
    (tmp_path / "heavy_plugin_pt.py").write_text("import fake_framework_pt.core\n")
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    ours = ("light_plugin_pt", "heavy_plugin_pt", "fake_framework_pt")
    for name in [m for m in sys.modules if m.split(".")[0] in ours]:
        del sys.modules[name]


def test_is_available_must_not_import_the_framework(fake_framework: Path) -> None:
    import light_plugin_pt  # type: ignore[import-not-found]

    pt.check_weight_format_spec(
        _spec(is_available=light_plugin_pt.unavailable), framework_modules=("fake_framework_pt",)
    )

    def importing() -> None:
        light_plugin_pt.heavy_check()

    with pytest.raises(
        AssertionError, match=r"imported \['fake_framework_pt', 'fake_framework_pt.core'\]"
    ):
        pt.check_weight_format_spec(
            _spec(is_available=importing), framework_modules=("fake_framework_pt",)
        )


def test_import_checks_in_a_subprocess(fake_framework: Path) -> None:
    pt.assert_import_is_light(
        "light_plugin_pt", ["fake_framework_pt"], call="unavailable", path=[fake_framework]
    )
    with pytest.raises(AssertionError, match="imported .*fake_framework_pt.core"):
        pt.assert_import_is_light("heavy_plugin_pt", ["fake_framework_pt"], path=[fake_framework])
    with pytest.raises(AssertionError, match="imported .*fake_framework_pt"):
        pt.assert_import_is_light(
            "light_plugin_pt", ["fake_framework_pt"], call="heavy_check", path=[fake_framework]
        )
    with pytest.raises(AssertionError, match="importing no_such_module_pt failed"):
        pt.assert_import_is_light("no_such_module_pt", ["fake_framework_pt"])


def test_the_door_imports_no_framework_and_no_test_tools() -> None:
    """Plugin modules import the door whenever the core loads plugins."""
    pt.assert_import_is_light(
        "bioimageio_core.plugin", [*FRAMEWORKS, "pytest", "_pytest", "click.testing"]
    )
    pt.assert_import_is_light("bioimageio_core.plugin.testing", FRAMEWORKS)
    pt.assert_import_is_light("bioimageio_core.backend_utils", FRAMEWORKS)


def test_a_model_from_arrays_matches_its_tensor_definitions(tmp_path: Path) -> None:
    x = np.zeros((1, 5, 6, 2), np.uint8)
    y = np.ones((1, 5, 6, 3), np.float32)
    weights = (pt.WeightsDef("onnx", "w.onnx", {"opset_version": 17}),)
    arrays = pt.ModelDef.from_arrays("n", {"a": x}, {"b": y}, weights, letters="byxc")
    by_arrays = pt.model_description(tmp_path, arrays)
    by_defs = pt.model_description(
        tmp_path,
        pt.ModelDef("n", (pt.TensorDef("a", "byxc", x),), (pt.TensorDef("b", "byxc", y),), weights),
    )
    assert by_arrays == by_defs
    assert by_arrays["inputs"][0]["axes"][1:] == [
        {"type": "space", "id": "y", "size": 5},
        {"type": "space", "id": "x", "size": 6},
        {"type": "channel", "channel_names": ["c0", "c1"]},
    ]
    assert by_arrays["inputs"][0]["data"] == {"type": "uint8"}


def test_checked_weight_formats_by_name() -> None:
    specs = pt.checked_weight_formats(_plugin_module())
    assert list(specs) == ["scale", "scale2"] and specs["scale2"].priority == 5

    module = types.ModuleType("bad_plugin")

    @hookimpl
    def bioimageio_weight_formats(register: WeightFormatRegister) -> None:
        register.add(_spec(entry_class=dict))

    module.bioimageio_weight_formats = bioimageio_weight_formats  # type: ignore[attr-defined]
    with pytest.raises(AssertionError, match="entry_class must be an attrs class"):
        pt.checked_weight_formats(module)


def test_entry_point_check_skips_without_the_distribution() -> None:
    with pytest.raises(pytest.skip.Exception, match="no-such-bioimageio-plugin is not installed"):
        pt.check_entry_point("no-such-bioimageio-plugin", "x", "x.plugin")


def test_entry_point_check_of_an_installed_distribution(make_dist: Any) -> None:
    entry = make_dist("bioimageio-entry-point-check", "VALUE = 42\n")
    (point,) = [
        ep
        for ep in importlib.metadata.distribution("bioimageio-entry-point-check").entry_points
        if ep.group == "bioimageio_core"
    ]
    assert point.name == entry
    loaded = pt.check_entry_point("bioimageio-entry-point-check", entry, point.value)
    assert getattr(loaded, "VALUE", None) == 42
    with pytest.raises(AssertionError, match="expected"):
        pt.check_entry_point("bioimageio-entry-point-check", "other", point.value)


def test_every_name_of_the_door_and_the_test_kit_is_in_the_plugin_guide() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text("utf-8")
    assert "## Testing your plugin" in guide
    missing = [name for name in (*door.__all__, *pt.__all__) if f"`{name}" not in guide]
    assert not missing, f"docs/plugins.md does not mention {missing}"


@pytest.mark.parametrize("letters", ["bczyx", "btyxc", "bi", "ci"])
def test_axes_build_valid_models(tmp_path: Path, letters: str) -> None:
    shape = tuple(range(2, 2 + len(letters)))
    free = tuple(None if c in "tyx" else s for c, s in zip(letters, shape, strict=True))
    raw = pt.model_description(
        tmp_path,
        pt.ModelDef(
            "letters",
            (pt.TensorDef("a", letters, shape=free),),  # inputs may have free sizes
            (pt.TensorDef("b", letters, shape=shape),),  # outputs need fixed ones (or references)
            (pt.WeightsDef("onnx", "w.onnx", {"opset_version": 17}),),
        ),
    )
    model = pt.build_model(raw, tmp_path)
    expected = [
        {"b": "batch", "c": "channel", "i": "index", "t": "time"}.get(c, "space") for c in letters
    ]
    assert [a.type for a in model.inputs[0].axes] == expected
    assert [a.type for a in model.outputs[0].axes] == expected
    assert model.outputs[0].shape[1:] == shape[1:]
