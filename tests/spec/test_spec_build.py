"""build_description / dump_description / iter_file_refs on valid descriptions."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from spec_examples import SHA, library_architecture, minimal_model, rich_model

from bioimageio_core.spec import (
    ArchitectureFromLibraryDescr,
    BatchAxis,
    BinarizeAlongAxisKwargs,
    BinarizeKwargs,
    ChannelAxis,
    DataDependentSize,
    DatasetDescr,
    DatasetDescr02,
    EnsureDtypeKwargs,
    GenericDescr,
    IndexInputAxis,
    Issue,
    ModelDescr,
    NominalOrOrdinalDataDescr,
    NotebookDescr,
    OnnxWeightsDescr,
    ParameterizedSize,
    ScaleLinearAlongAxisKwargs,
    SizeReference,
    SpaceOutputAxisWithHalo,
    SpecExtensions,
    SpecValidationError,
    TimeInputAxis,
    UnknownWeightsDescr,
    build_description,
    converter,
    dump_description,
    iter_file_refs,
    legacy,
    structure,
    unstructure,
)


def _model(raw: dict[str, Any]) -> ModelDescr:
    result = build_description(raw)
    assert result.descr is not None, [str(i) for i in result.issues]
    assert isinstance(result.descr, ModelDescr)
    return result.descr


def test_minimal_model_builds_with_defaults() -> None:
    model = _model(minimal_model())
    assert model.inputs[0].dtype == "float32"
    assert model.weights.torchscript is not None
    assert model.weights.onnx is None
    assert model.weights.available_formats == ("torchscript",)


def test_rich_model_builds_every_kind() -> None:
    model = _model(rich_model())
    raw_in = model.inputs[0]
    assert [type(a) for a in raw_in.axes][:3] == [BatchAxis, ChannelAxis, TimeInputAxis]
    assert raw_in.axes[3].size == ParameterizedSize(min=64, step=16)
    assert raw_in.axes[4].size == SizeReference(tensor_id="raw", axis_id="y", offset=0)
    assert raw_in.dtype == "uint16"
    assert isinstance(model.inputs[1].axes[0], IndexInputAxis)
    assert isinstance(model.inputs[1].data, NominalOrOrdinalDataDescr)
    assert model.inputs[1].data.range == (0, 1)
    seg = model.outputs[0]
    assert isinstance(seg.axes[3], SpaceOutputAxisWithHalo) and seg.axes[3].halo == 8
    assert model.outputs[1].axes[0].size == DataDependentSize(min=1, max=100)
    kwargs = [s.kwargs for s in raw_in.preprocessing]
    assert isinstance(kwargs[1], BinarizeKwargs)
    assert isinstance(kwargs[2], BinarizeAlongAxisKwargs)
    assert isinstance(kwargs[8], ScaleLinearAlongAxisKwargs) and kwargs[8].gain == (1.0, 2.0)
    assert list(model.weights) == list(rich_model()["weights"])
    onnx = model.weights["onnx"]
    assert isinstance(onnx, OnnxWeightsDescr) and onnx.external_data is not None
    tol = model.config.bioimageio.reproducibility_tolerance[0]
    assert (tol.absolute_tolerance, tol.mismatched_elements_per_million) == (0.0001, 100)
    assert model.config.bioimageio.extra == {"architecture_type": "unet"}
    assert model.config.extra == {"deepimagej": {"x": 1}}


def test_library_architecture() -> None:
    raw = rich_model()
    raw["weights"]["pytorch_state_dict"]["architecture"] = library_architecture()
    model = _model(raw)
    assert model.weights.pytorch_state_dict is not None
    assert isinstance(model.weights.pytorch_state_dict.architecture, ArchitectureFromLibraryDescr)


def test_ensure_dtype_inserted_at_build() -> None:
    raw = minimal_model()
    raw["inputs"][0]["data"] = {"type": "uint8"}
    raw["inputs"][0]["preprocessing"] = [{"id": "scale_range", "kwargs": {"axes": ["x"]}}]
    raw["outputs"][0]["postprocessing"] = [{"id": "sigmoid"}]
    model = _model(raw)
    pre = model.inputs[0].preprocessing
    assert [s.id for s in pre] == ["ensure_dtype", "scale_range", "ensure_dtype"]
    assert pre[0].kwargs == EnsureDtypeKwargs(dtype="uint8")
    assert [s.id for s in model.outputs[0].postprocessing] == ["sigmoid", "ensure_dtype"]
    # empty preprocessing gets exactly one cast; binarize at the end gets none appended
    raw = minimal_model()
    raw["outputs"][0]["postprocessing"] = [{"id": "binarize", "kwargs": {"threshold": 0.5}}]
    model = _model(raw)
    assert [s.id for s in model.inputs[0].preprocessing] == ["ensure_dtype"]
    assert [s.id for s in model.outputs[0].postprocessing] == ["binarize"]


@pytest.mark.parametrize("factory", [minimal_model, rich_model])
def test_dump_round_trips(factory: Any) -> None:
    model = _model(factory())
    dumped = dump_description(model)
    again = _model(dumped)
    assert again == model
    assert dump_description(again) == dumped


def test_dump_keeps_unknown_top_level_fields_and_formats() -> None:
    raw = minimal_model()
    raw["my_field"] = {"a": 1}
    raw["weights"]["keras_v4"] = {"source": "m.keras", "parent": "torchscript", "x": 1}
    result = build_description(raw)
    assert result.descr is not None
    assert Issue(("my_field",), "unknown field 'my_field' (kept as is)", "warning") in result.issues
    assert any(i.loc == ("weights", "keras_v4") and i.severity == "warning" for i in result.issues)
    entry = result.descr.weights["keras_v4"]  # type: ignore[union-attr]
    assert isinstance(entry, UnknownWeightsDescr) and entry.parent == "torchscript"
    dumped = dump_description(result.descr)
    assert dumped["my_field"] == {"a": 1}
    assert dumped["weights"]["keras_v4"] == raw["weights"]["keras_v4"]


def test_extensions_parse_unknown_formats_and_ops() -> None:
    @attrs.frozen(kw_only=True)
    class KerasV4:
        source: str
        keras_version: str

    @attrs.frozen(kw_only=True)
    class MyOpKwargs:
        strength: float = 1.0

    raw = minimal_model()
    raw["weights"]["keras_v4"] = {"source": "m.keras", "keras_version": "4.1"}
    raw["inputs"][0]["preprocessing"] = [{"id": "my_op", "kwargs": {"strength": 2}}]
    assert build_description(raw).descr is None  # unknown op without extension
    ext = SpecExtensions(weight_formats={"keras_v4": KerasV4}, processing={"my_op": (MyOpKwargs,)})
    result = build_description(raw, extensions=ext)
    assert result.descr is not None, result.issues
    assert result.descr.weights["keras_v4"] == KerasV4(source="m.keras", keras_version="4.1")  # type: ignore[union-attr]
    assert result.descr.inputs[0].preprocessing[1].kwargs == MyOpKwargs(strength=2.0)  # type: ignore[union-attr]
    assert not [i for i in result.issues if "keras_v4" in i.loc]


def test_iter_file_refs_kinds() -> None:
    refs = {(loc, ref.source, ref.kind) for loc, ref in iter_file_refs(_model(rich_model()))}
    assert (("inputs", 0, "test_tensor"), "in.npy", "test_tensor") in refs
    assert (
        ("weights", "onnx", "external_data", "source"),
        "weights.onnx.data",
        "weights:onnx",
    ) in refs
    assert (
        ("weights", "pytorch_state_dict", "architecture", "source"),
        "model.py",
        "weights:pytorch_state_dict",
    ) in refs
    assert (
        ("weights", "pytorch_state_dict", "dependencies", "source"),
        "environment.yaml",
        "dependencies",
    ) in refs
    assert (("covers", 0), "cover.png", "cover") in refs
    assert (("attachments", 0), "notes.txt", "attachment") in refs
    assert not any(kind == "icon" for _, _, kind in refs)  # an emoji icon is no file
    shas = {ref.source: ref.sha256 for _, ref in iter_file_refs(_model(rich_model()))}
    assert shas["weights.pth"] == SHA and shas["weights.pt"] is None


def _generic(rtype: str, fv: str, **more: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "type": rtype,
        "format_version": fv,
        "name": "Some resource",
        "description": "d",
    }
    raw.update(more)
    return raw


@pytest.mark.parametrize(
    ("raw", "cls"),
    [
        (_generic("dataset", "0.3.0", license="MIT"), DatasetDescr),
        (
            _generic("dataset", "0.2.4", attachments={"files": ["a.txt"], "other": 1}),
            DatasetDescr02,
        ),
        (_generic("notebook", "0.3.0", source="nb.ipynb"), NotebookDescr),
        (
            _generic("workflow", "0.3.0", badges=[{"label": "b", "url": "https://x.org"}]),
            GenericDescr,
        ),
    ],
)
def test_other_types_build(raw: dict[str, Any], cls: type) -> None:
    result = build_description(raw)
    assert isinstance(result.descr, cls), result.issues
    assert build_description(dump_description(result.descr)).descr == result.descr


def test_notebook_needs_source() -> None:
    result = build_description(_generic("notebook", "0.3.0"))
    assert result.descr is None
    assert [i.loc for i in result.errors] == [("source",)]


def test_training_data_inline_dataset() -> None:
    raw = minimal_model()
    raw["training_data"] = _generic("dataset", "0.3.0")
    model = _model(raw)
    assert isinstance(model.training_data, DatasetDescr)


def test_format_version_requests() -> None:
    for requested in ("discover", "latest", "0.5", "0.5.14"):
        descr = build_description(minimal_model(), format_version=requested).descr
        assert descr is not None and descr.format_version == "0.5.14"
    # a model is no generic description
    result = build_description(minimal_model(), format_version="0.3.4")
    assert result.descr is None and result.errors[0].loc == ("type",)
    # versions we cannot produce are refused, not ignored
    for unsupported in ("0.4.10", "0.5.4", "0.2", "newest"):
        with pytest.raises(ValueError, match="is not supported"):
            build_description(minimal_model(), format_version=unsupported)


def test_v04_conversion_issues_are_merged(monkeypatch: pytest.MonkeyPatch) -> None:
    note = Issue(("inputs", 0, "data_range"), "kept data_range", "warning")
    monkeypatch.setattr(legacy, "convert_model_to_v0_5", lambda raw: (minimal_model(), [note]))
    result = build_description({"type": "model", "format_version": "0.4.10", "name": "old model"})
    assert isinstance(result.descr, ModelDescr)
    assert note in result.issues
    assert result.original_format_version == "0.4.10"


def test_internal_failure_becomes_an_issue(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(raw: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(legacy, "normalize_raw", broken)
    result = build_description(minimal_model())
    assert result.descr is None and "boom" in result.errors[0].msg


def test_iter_file_refs_of_other_types() -> None:
    dataset = build_description(
        _generic("dataset", "0.2.4", attachments={"files": ["a.zip"]}, covers=["c.png"])
    )
    refs = [(loc, ref.kind) for loc, ref in iter_file_refs(dataset.descr)]
    assert refs == [(("covers", 0), "cover"), (("attachments", "files", 0), "attachment")]
    notebook = build_description(
        _generic("notebook", "0.3.0", source="nb.ipynb", documentation="doc.md")
    )
    refs = [(loc, ref.source, ref.kind) for loc, ref in iter_file_refs(notebook.descr)]
    assert refs == [
        (("documentation",), "doc.md", "documentation"),
        (("source",), "nb.ipynb", "source"),
    ]


def test_structure_helpers_raise_spec_validation_error() -> None:
    with pytest.raises(SpecValidationError) as info:
        structure({"min": 0, "step": "2"}, ParameterizedSize)
    assert {i.loc for i in info.value.issues} == {("min",), ("step",)}
    # direct converter use (no structuring context) fails with the same error type
    with pytest.raises(SpecValidationError):
        converter.structure([1, "a"], tuple[int, ...])
    with pytest.raises(SpecValidationError):
        converter.structure({"type": "batch", "size": 2}, BatchAxis)
    assert converter.structure({"type": "batch"}, BatchAxis) == BatchAxis()
    assert unstructure(BatchAxis()) == {"type": "batch"}
