"""Fields of model format 0.5.8 … 0.5.14: padding, model chaining, keras_v3, strict loading, the
new postprocessing ops, config.stardist and the reproducibility tolerance classes."""

from __future__ import annotations

from typing import Any

import pytest
from spec_examples import Mutation, minimal_model, post, pre

from bioimageio_core.spec import (
    ANY_CONTINUOUS_OUTPUT,
    ANY_DISCRETE_OUTPUT,
    DEFAULT_REPRODUCIBILITY_TOLERANCE,
    BuildResult,
    CellposeFlowDynamicsKwargs,
    ConstantPadding,
    ContinuousReproducibilityTolerance,
    CustomKwargs,
    DiscreteReproducibilityTolerance,
    EdgePadding,
    KerasV3WeightsDescr,
    ModelDescr,
    PytorchStateDictWeightsDescr,
    ReflectPadding,
    ReproducibilityTolerance,
    StardistPostprocessingKwargs2D,
    StardistPostprocessingKwargs3D,
    SymmetricPadding,
    build_description,
    dump_description,
    numpy_pad_kwargs,
    select_tolerance,
)


def _build(mutate: Mutation) -> BuildResult:
    raw = minimal_model()
    mutate(raw)
    return build_description(raw)


def _valid(mutate: Mutation) -> ModelDescr:
    result = _build(mutate)
    assert isinstance(result.descr, ModelDescr), [str(i) for i in result.errors]
    return result.descr


def _error_at(mutate: Mutation, loc: tuple[Any, ...], text: str) -> None:
    result = _build(mutate)
    assert result.descr is None
    found = [i for i in result.errors if i.loc == loc and text in i.msg]
    assert found, [str(i) for i in result.errors]


def _round_trip(model: ModelDescr) -> dict[str, Any]:
    dumped = dump_description(model)
    again = build_description(dumped)
    assert again.descr == model, [str(i) for i in again.errors]
    return dumped


# --- inputs[i].pad ------------------------------------------------------------------------------


def _pad(value: Any) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        raw["inputs"][0]["pad"] = value

    return mutate


@pytest.mark.parametrize(
    ("raw", "expected", "numpy_kwargs"),
    [
        (
            {"mode": "constant", "value": 1.5},
            ConstantPadding(value=1.5),
            {"mode": "constant", "constant_values": 1.5},
        ),
        ({"mode": "edge"}, EdgePadding(), {"mode": "edge"}),
        ({"mode": "reflect"}, ReflectPadding(), {"mode": "reflect"}),
        ({"mode": "symmetric"}, SymmetricPadding(), {"mode": "symmetric"}),
        ({}, ConstantPadding(value=0), {"mode": "constant", "constant_values": 0}),
        ({"value": 2}, ConstantPadding(value=2), {"mode": "constant", "constant_values": 2}),
    ],
)
def test_pad_variants(raw: dict[str, Any], expected: Any, numpy_kwargs: dict[str, Any]) -> None:
    model = _valid(_pad(raw))
    pad = model.inputs[0].pad
    assert pad == expected
    assert pad is not None and numpy_pad_kwargs(pad) == numpy_kwargs
    dumped = _round_trip(model)
    # the mode is always written, so `{}` does not become an ambiguous empty mapping
    assert dumped["inputs"][0]["pad"]["mode"] == expected.mode


def test_pad_integer_value_stays_an_integer() -> None:
    pad = _valid(_pad({"value": 3})).inputs[0].pad
    assert isinstance(pad, ConstantPadding) and type(pad.value) is int


def test_pad_absent_is_none() -> None:
    model = _valid(lambda raw: None)
    assert model.inputs[0].pad is None
    assert "pad" not in dump_description(model)["inputs"][0]


@pytest.mark.parametrize(
    ("raw", "loc", "text"),
    [
        ("reflect", (), "must be a padding description"),
        ({"mode": "wrap"}, ("mode",), "must be one of 'constant', 'edge', 'reflect', 'symmetric'"),
        ({"mode": "edge", "value": 3}, ("value",), "unknown field 'value'"),
        ({"mode": "constant", "value": "zero"}, ("value",), "must be a number"),
        ({"mode": "constant", "width": 2}, ("width",), "unknown field 'width'"),
    ],
)
def test_pad_errors(raw: Any, loc: tuple[Any, ...], text: str) -> None:
    _error_at(_pad(raw), ("inputs", 0, "pad", *loc), text)


# --- inputs[i].output_of (static part; the upstream check is in tests/sources) ------------------


@pytest.mark.parametrize(
    "reference",
    ["affable-shark", "affable-shark/1.2", "x/draft", "10.5281/zenodo.123", "../up/rdf.yaml"],
)
def test_output_of_accepts_resource_ids(reference: str) -> None:
    model = _valid(lambda raw: raw["inputs"][0].__setitem__("output_of", reference))
    assert model.inputs[0].output_of == reference
    assert _round_trip(model)["inputs"][0]["output_of"] == reference


@pytest.mark.parametrize(
    "reference",
    ["Affable-Shark", "https://example.com/rdf.yaml", "/abs/path", "shark/", "a//b", "", 3],
)
def test_output_of_rejects_what_is_no_resource_id(reference: Any) -> None:
    result = _build(lambda raw: raw["inputs"][0].__setitem__("output_of", reference))
    assert result.descr is None
    assert [i.loc for i in result.errors] == [("inputs", 0, "output_of")], result.errors


# --- weights.keras_v3 ----------------------------------------------------------------------------

KERAS_V3 = {
    "source": "model.keras",
    "keras_version": "3.3.0",
    "backend": ["torch", "2.3.0"],
    "parent": "torchscript",
}


def _keras(**changes: Any) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        entry = {**KERAS_V3, **changes}
        raw["weights"]["keras_v3"] = {k: v for k, v in entry.items() if v is not None}

    return mutate


def test_keras_v3_valid_example() -> None:
    model = _valid(_keras())
    entry = model.weights.keras_v3
    assert isinstance(entry, KerasV3WeightsDescr)
    assert (entry.keras_version, entry.backend) == ("3.3.0", ("torch", "2.3.0"))
    assert _round_trip(model)["weights"]["keras_v3"] == KERAS_V3


def test_keras_v3_version_as_integer_is_valid() -> None:
    result = _build(_keras(keras_version=3))
    assert isinstance(result.descr, ModelDescr)
    assert result.descr.weights.keras_v3 is not None
    assert result.descr.weights.keras_v3.keras_version == "3"
    assert any(i.loc == ("weights", "keras_v3", "keras_version") for i in result.warnings)


@pytest.mark.parametrize(
    ("changes", "loc", "text"),
    [
        ({"keras_version": "2.15"}, ("keras_version",), "a version >= 3"),
        ({"keras_version": "three"}, ("keras_version",), "a version such as"),
        ({"source": "model.h5"}, ("source",), "'.keras' file"),
        ({"source": "model.KERAS"}, ("source",), "'.keras' file"),
        ({"backend": ["mxnet", "1.9"]}, ("backend", 0), "must be one of"),
        ({"backend": ["torch"]}, ("backend",), "[name, version]"),
        ({"backend": "torch"}, ("backend",), "[name, version]"),
        ({"backend": ["torch", "2.x"]}, ("backend", 1), "version"),
        ({"backend": None}, ("backend",), "'backend' is required"),
        ({"keras_version": None}, ("keras_version",), "'keras_version' is required"),
        ({"parent": "keras_v3"}, ("parent",), "own parent"),
    ],
)
def test_keras_v3_errors(changes: dict[str, Any], loc: tuple[Any, ...], text: str) -> None:
    _error_at(_keras(**changes), ("weights", "keras_v3", *loc), text)


def test_keras_v3_may_be_a_parent() -> None:
    def mutate(raw: dict[str, Any]) -> None:
        _keras(parent=None)(raw)
        raw["weights"]["torchscript"]["parent"] = "keras_v3"

    model = _valid(mutate)
    assert model.weights.torchscript is not None
    assert model.weights.torchscript.parent == "keras_v3"


# --- weights.pytorch_state_dict.strict -----------------------------------------------------------


def _state_dict(**extra: Any) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        raw["weights"]["pytorch_state_dict"] = {
            "source": "w.pt",
            "architecture": {"import_from": "pkg", "callable": "Net"},
            "pytorch_version": "2.13.0",
            **extra,
        }
        raw["weights"]["torchscript"]["parent"] = "pytorch_state_dict"

    return mutate


def test_strict_defaults_to_true_and_is_not_written() -> None:
    model = _valid(_state_dict())
    entry = model.weights.pytorch_state_dict
    assert isinstance(entry, PytorchStateDictWeightsDescr) and entry.strict is True
    assert "strict" not in _round_trip(model)["weights"]["pytorch_state_dict"]


def test_strict_false_round_trips() -> None:
    model = _valid(_state_dict(strict=False))
    assert model.weights.pytorch_state_dict is not None
    assert model.weights.pytorch_state_dict.strict is False
    assert _round_trip(model)["weights"]["pytorch_state_dict"]["strict"] is False


def test_strict_must_be_a_boolean() -> None:
    _error_at(
        _state_dict(strict="no"), ("weights", "pytorch_state_dict", "strict"), "true or false"
    )


# --- new postprocessing ops -----------------------------------------------------------------------


CUSTOM = {"id": "custom", "source": "post.py", "callable": "my-post", "kwargs": {"t": 0.5}}
CELLPOSE = {
    "id": "cellpose_flow_dynamics",
    "kwargs": {"cellprob_threshold": 0.0, "flow_threshold": 0.4, "do_3D": False},
}
STARDIST_2D = {
    "id": "stardist_postprocessing",
    "kwargs": {"prob_threshold": 0.5, "nms_threshold": 0.4, "n_rays": 32, "grid": [2, 2], "b": 2},
}
STARDIST_3D = {
    "id": "stardist_postprocessing",
    "kwargs": {
        "prob_threshold": 0.5,
        "nms_threshold": 0.3,
        "n_rays": 96,
        "grid": [1, 2, 2],
        "b": [[1, 1], [2, 2], [2, 2]],
        "anisotropy": [2.0, 1.0, 1.0],
    },
}


def test_custom_step_fields_sit_on_the_step() -> None:
    model = _valid(post(CUSTOM))
    steps = model.outputs[0].postprocessing
    assert steps[0].kwargs == CustomKwargs(source="post.py", callable="my-post", kwargs={"t": 0.5})
    # the callable is any string; an ensure_dtype to data.type is appended after the custom step
    assert [s.id for s in steps] == ["custom", "ensure_dtype"]
    assert steps[1].kwargs.dtype == "float32"
    dumped = _round_trip(model)
    assert dumped["outputs"][0]["postprocessing"][0] == CUSTOM


@pytest.mark.parametrize("step", [CUSTOM, CELLPOSE, STARDIST_2D])
def test_new_ops_are_postprocessing_only(step: dict[str, Any]) -> None:
    _error_at(pre(step), ("inputs", 0, "preprocessing", 0, "id"), "only allowed in postprocessing")


@pytest.mark.parametrize(
    ("step", "loc", "text"),
    [
        ({**CUSTOM, "source": "rdf.yaml"}, ("source",), "not a description file name"),
        ({**CUSTOM, "source": "x.bioimageio.yaml"}, ("source",), "not a description file name"),
        ({k: v for k, v in CUSTOM.items() if k != "callable"}, ("callable",), "is required"),
        ({k: v for k, v in CUSTOM.items() if k != "source"}, ("source",), "is required"),
        ({**CUSTOM, "sha256": "abc"}, ("sha256",), "SHA-256"),
        ({**CUSTOM, "kwargs": [1]}, ("kwargs",), "must be a mapping"),
        ({**CUSTOM, "extra": 1}, ("extra",), "unknown field"),
    ],
)
def test_custom_step_errors(step: dict[str, Any], loc: tuple[Any, ...], text: str) -> None:
    _error_at(post(step), ("outputs", 0, "postprocessing", 0, *loc), text)


def test_cellpose_flow_dynamics() -> None:
    kwargs = _valid(post(CELLPOSE)).outputs[0].postprocessing[0].kwargs
    assert kwargs == CellposeFlowDynamicsKwargs(
        cellprob_threshold=0.0, flow_threshold=0.4, do_3D=False, min_size=15, output_dtype="uint16"
    )
    with_all = {
        **CELLPOSE,
        "kwargs": {**CELLPOSE["kwargs"], "min_size": 0, "output_dtype": "uint32"},
    }
    kwargs = _valid(post(with_all)).outputs[0].postprocessing[0].kwargs
    assert (kwargs.min_size, kwargs.output_dtype) == (0, "uint32")


@pytest.mark.parametrize(
    ("kwargs", "loc", "text"),
    [
        ({"cellprob_threshold": 0.0, "flow_threshold": 0.4}, ("do_3D",), "is required"),
        ({**CELLPOSE["kwargs"], "output_dtype": "int32"}, ("output_dtype",), "must be one of"),
        ({**CELLPOSE["kwargs"], "do_3D": "yes"}, ("do_3D",), "true or false"),
    ],
)
def test_cellpose_errors(kwargs: dict[str, Any], loc: tuple[Any, ...], text: str) -> None:
    step = {"id": "cellpose_flow_dynamics", "kwargs": kwargs}
    _error_at(post(step), ("outputs", 0, "postprocessing", 0, "kwargs", *loc), text)


def test_stardist_2d_with_int_and_pair_border() -> None:
    kwargs = _valid(post(STARDIST_2D)).outputs[0].postprocessing[0].kwargs
    assert isinstance(kwargs, StardistPostprocessingKwargs2D) and kwargs.b == 2
    pairs = {**STARDIST_2D, "kwargs": {**STARDIST_2D["kwargs"], "b": [[1, 2], [3, 4]]}}
    model = _valid(post(pairs))
    kwargs = model.outputs[0].postprocessing[0].kwargs
    assert isinstance(kwargs, StardistPostprocessingKwargs2D) and kwargs.b == ((1, 2), (3, 4))
    assert _round_trip(model)["outputs"][0]["postprocessing"][0] == pairs


def test_stardist_3d() -> None:
    model = _valid(post(STARDIST_3D))
    kwargs = model.outputs[0].postprocessing[0].kwargs
    assert isinstance(kwargs, StardistPostprocessingKwargs3D)
    assert (kwargs.anisotropy, kwargs.overlap_label) == ((2.0, 1.0, 1.0), None)
    assert _round_trip(model)["outputs"][0]["postprocessing"][0] == STARDIST_3D


def _stardist(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    kwargs = {**base["kwargs"], **changes}
    return {"id": base["id"], "kwargs": {k: v for k, v in kwargs.items() if v is not None}}


@pytest.mark.parametrize(
    ("step", "loc", "text"),
    [
        (_stardist(STARDIST_3D, anisotropy=None), ("anisotropy",), "'anisotropy' is required"),
        (_stardist(STARDIST_2D, grid=[1, 2, 2]), ("anisotropy",), "'anisotropy' is required"),
        (_stardist(STARDIST_2D, grid=[2]), ("grid",), "must be 2 (2D: y, x) or 3"),
        (_stardist(STARDIST_2D, n_rays=None), ("n_rays",), "'n_rays' is required"),
        (_stardist(STARDIST_2D, b=None), ("b",), "'b' is required"),
        (_stardist(STARDIST_2D, b=[[1, 1]]), ("b",), "one [before, after] pair per spatial axis"),
        (_stardist(STARDIST_2D, overlap_label=1), ("overlap_label",), "unknown field"),
    ],
)
def test_stardist_errors(step: dict[str, Any], loc: tuple[Any, ...], text: str) -> None:
    _error_at(post(step), ("outputs", 0, "postprocessing", 0, "kwargs", *loc), text)


# --- config.stardist -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [{"name": "2D_versatile_fluo", "n_rays": [32]}, 7, ["a"], "x"])
def test_config_stardist_is_kept_as_written(value: Any) -> None:
    model = _valid(lambda raw: raw.__setitem__("config", {"stardist": value}))
    assert model.config.stardist == value
    assert _round_trip(model)["config"]["stardist"] == value


# --- reproducibility tolerances (static rules; the io rule is in tests/sources) ------------------


def _tolerances(*entries: dict[str, Any], discrete: bool = False) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        raw["config"] = {"bioimageio": {"reproducibility_tolerance": list(entries)}}
        if discrete:
            raw["outputs"][0]["data"] = {"type": "uint16"}

    return mutate


def test_no_key_gives_the_default_pair() -> None:
    model = _valid(lambda raw: None)
    entries = model.config.bioimageio.reproducibility_tolerance
    assert entries == DEFAULT_REPRODUCIBILITY_TOLERANCE
    continuous, discrete = entries
    assert isinstance(continuous, ContinuousReproducibilityTolerance)
    assert (
        continuous.relative_tolerance,
        continuous.absolute_tolerance,
        continuous.mismatched_elements_per_million,
    ) == (1e-3, 1e-3, 100)
    assert isinstance(discrete, DiscreteReproducibilityTolerance)
    assert (
        discrete.relative_tolerance,
        discrete.absolute_tolerance,
        discrete.mismatched_elements_per_million,
    ) == (0, 0, 1000)


def test_empty_list_means_no_entries() -> None:
    model = _valid(_tolerances())
    assert model.config.bioimageio.reproducibility_tolerance == ()
    assert _round_trip(model)["config"]["bioimageio"]["reproducibility_tolerance"] == []


def test_writer_always_emits_output_ids() -> None:
    model = _valid(
        _tolerances(
            {"absolute_tolerance": 1e-4},
            {"output_ids": ANY_CONTINUOUS_OUTPUT},
            {"output_ids": ANY_DISCRETE_OUTPUT, "mismatched_elements_per_million": 10},
        )
    )
    written = _round_trip(model)["config"]["bioimageio"]["reproducibility_tolerance"]
    assert [e["output_ids"] for e in written] == [[], ANY_CONTINUOUS_OUTPUT, ANY_DISCRETE_OUTPUT]


def test_entries_without_output_ids_are_catch_alls_first_wins() -> None:
    model = _valid(
        _tolerances(
            {"relative_tolerance": 0.001, "absolute_tolerance": 0.001},
            {
                "relative_tolerance": 0,
                "absolute_tolerance": 0,
                "mismatched_elements_per_million": 1000,
            },
        )
    )
    first, second = model.config.bioimageio.reproducibility_tolerance
    assert isinstance(first, ReproducibilityTolerance) and first.output_ids == ()
    assert isinstance(second, ReproducibilityTolerance)  # not a discrete entry: no output_ids
    entries = model.config.bioimageio.reproducibility_tolerance
    assert select_tolerance(entries, "out", "uint8", "onnx") is first
    assert select_tolerance(entries, "out", "float32", "torchscript") is first


def test_selection_by_weights_format_output_id_and_dtype() -> None:
    entries = (
        ReproducibilityTolerance(weights_formats=("onnx",), absolute_tolerance=0.1),
        ReproducibilityTolerance(
            output_ids=("mask",), absolute_tolerance=0.0, relative_tolerance=0
        ),
        *DEFAULT_REPRODUCIBILITY_TOLERANCE,
    )
    assert select_tolerance(entries, "out", "float32", "onnx") is entries[0]
    assert select_tolerance(entries, "mask", "float32", "torchscript") is entries[1]
    assert select_tolerance(entries, "out", "float64", "torchscript") is entries[2]
    for dtype in ("uint8", "int32", "bool"):
        assert select_tolerance(entries, "labels", dtype, "torchscript") is entries[3]
    assert select_tolerance((), "out", "float32", "onnx") is None


BASE: tuple[Any, ...] = ("config", "bioimageio", "reproducibility_tolerance")


@pytest.mark.parametrize(
    ("entries", "discrete", "loc", "text"),
    [
        ([{"output_ids": ["nope"]}], False, (0, "output_ids", 0), "'nope' is not an output"),
        ([{"output_ids": ["out"]}], True, (0, "relative_tolerance"), "must be 0 for the discrete"),
        (
            [{"output_ids": ["out"], "relative_tolerance": 0}],
            True,
            (0, "absolute_tolerance"),
            "must be 0 for the discrete",
        ),
        (
            [{"output_ids": ANY_DISCRETE_OUTPUT, "relative_tolerance": 0.1}],
            True,
            (0, "relative_tolerance"),
            "must be 0",
        ),
        ([{"output_ids": "nope"}], False, (0, "output_ids"), "must be a list of output ids"),
        (
            [{"mismatched_elements_per_million": 30001}],
            False,
            (0, "mismatched_elements_per_million"),
            "<= 30000",
        ),
        ([{"relative_tolerance": 0.02}], False, (0, "relative_tolerance"), "<= 0.01"),
        ([{"absolute_tolerance": -1}], False, (0, "absolute_tolerance"), ">= 0"),
    ],
)
def test_tolerance_errors(
    entries: list[dict[str, Any]], discrete: bool, loc: tuple[Any, ...], text: str
) -> None:
    _error_at(_tolerances(*entries, discrete=discrete), (*BASE, *loc), text)


@pytest.mark.parametrize(
    "entries",
    [
        [{"output_ids": ["out"], "relative_tolerance": 0, "absolute_tolerance": 0}],
        [{"absolute_tolerance": 0.5}],  # a catch-all entry may have tolerances for discrete outputs
        [{"output_ids": ANY_DISCRETE_OUTPUT, "relative_tolerance": 0.0}],
        [{"mismatched_elements_per_million": 30000}],
    ],
)
def test_tolerances_valid_for_discrete_output(entries: list[dict[str, Any]]) -> None:
    _valid(_tolerances(*entries, discrete=True))


def test_later_entry_naming_a_discrete_output_is_a_warning() -> None:
    result = _build(
        _tolerances(
            {
                "output_ids": ["out"],
                "weights_formats": ["onnx"],
                "relative_tolerance": 0,
                "absolute_tolerance": 0,
            },
            {"output_ids": ["out"], "absolute_tolerance": 0.1, "relative_tolerance": 0},
            discrete=True,
        )
    )
    assert result.descr is not None
    assert [i.loc for i in result.warnings if "discrete" in i.msg] == [
        (*BASE, 1, "absolute_tolerance")
    ]


def test_tolerance_extra_keys_are_kept() -> None:
    model = _valid(_tolerances({"output_ids": ["out"], "note": "measured on CPU"}))
    written = _round_trip(model)["config"]["bioimageio"]["reproducibility_tolerance"]
    assert written == [{"output_ids": ["out"], "note": "measured on CPU"}]


# --- reference_tensor names an input (format 0.5.8+) -----------------------------------------------


@pytest.mark.parametrize("op", ["scale_range", "scale_mean_variance"])
def test_postprocessing_reference_tensor_may_name_an_input(op: str) -> None:
    model = _valid(post({"id": op, "kwargs": {"reference_tensor": "raw"}}))
    assert model.outputs[0].postprocessing[0].kwargs.reference_tensor == "raw"


@pytest.mark.parametrize("op", ["scale_range", "scale_mean_variance"])
def test_postprocessing_reference_tensor_may_not_name_an_output(op: str) -> None:
    _error_at(
        post({"id": op, "kwargs": {"reference_tensor": "out"}}),
        ("outputs", 0, "postprocessing", 0, "kwargs", "reference_tensor"),
        "must name an input tensor (raw) (got 'out')",
    )
