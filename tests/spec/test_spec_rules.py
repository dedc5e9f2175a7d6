"""Each validation rule: a broken description gives an error (or warning) at the right field path."""

from __future__ import annotations

from typing import Any

import pytest
from spec_examples import Mutation, minimal_model, post, pre, rich_model

from bioimageio_core.spec import build_description


def _in_axes(raw: dict[str, Any]) -> list[dict[str, Any]]:
    axes: list[dict[str, Any]] = raw["inputs"][0]["axes"]
    return axes


def _out_axes(raw: dict[str, Any]) -> list[dict[str, Any]]:
    axes: list[dict[str, Any]] = raw["outputs"][0]["axes"]
    return axes


def _set(path: tuple[Any, ...], value: Any) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        target: Any = raw
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _delete(path: tuple[Any, ...]) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        target: Any = raw
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


def _both(*mutations: Mutation) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        for m in mutations:
            m(raw)

    return mutate


def _ref(tensor_id: str, axis_id: str, offset: int = 0) -> dict[str, Any]:
    return {"tensor_id": tensor_id, "axis_id": axis_id, "offset": offset}


ERROR_CASES: list[tuple[str, Mutation, tuple[Any, ...], str]] = [
    ("unknown license", _set(("license",), "My-License"), ("license",), "must be an SPDX license"),
    (
        "duplicate input ids",
        lambda r: r["inputs"].append(dict(r["inputs"][0])),
        ("inputs", 1, "id"),
        "not unique",
    ),
    (
        "duplicate axis ids",
        lambda r: _in_axes(r).append({"type": "space", "id": "x", "size": 3}),
        ("inputs", 0, "axes", 2, "id"),
        "not unique",
    ),
    (
        "two batch axes",
        lambda r: _in_axes(r).extend([{"type": "batch"}, {"type": "batch", "id": "b"}]),
        ("inputs", 0, "axes", 3),
        "more than one batch axis",
    ),
    (
        "batch id on space axis",
        lambda r: _in_axes(r).append({"type": "space", "id": "batch", "size": 2}),
        ("inputs", 0, "axes", 2, "id"),
        "only a batch axis",
    ),
    (
        "bad axis id",
        lambda r: _in_axes(r)[1].__setitem__("id", "1x"),
        ("inputs", 0, "axes", 1, "id"),
        "identifier",
    ),
    (
        "unknown axis type",
        lambda r: _in_axes(r).append({"type": "depth", "size": 2}),
        ("inputs", 0, "axes", 2),
        "'type' must be one of",
    ),
    (
        "negative size",
        _set(("inputs", 0, "axes", 1, "size"), -4),
        ("inputs", 0, "axes", 1, "size"),
        "must be an integer > 0",
    ),
    (
        "size of wrong kind",
        _set(("inputs", 0, "axes", 1, "size"), "big"),
        ("inputs", 0, "axes", 1, "size"),
        "must be an integer > 0",
    ),
    (
        "parameterized step 0",
        _set(("inputs", 0, "axes", 1, "size"), {"min": 4, "step": 0}),
        ("inputs", 0, "axes", 1, "size", "step"),
        "must be > 0",
    ),
    (
        "parameterized output",
        _set(("outputs", 0, "axes", 1, "size"), {"min": 4, "step": 2}),
        ("outputs", 0, "axes", 1, "size"),
        "size reference",
    ),
    (
        "data dependent input",
        _set(("inputs", 0, "axes", 1, "size"), {"min": 1, "max": 4}),
        ("inputs", 0, "axes", 1, "size", "step"),
        "required",
    ),
    (
        "data dependent min >= max",
        lambda r: _out_axes(r).append({"type": "index", "size": {"min": 5, "max": 3}}),
        ("outputs", 0, "axes", 2, "size", "max"),
        "must be > 'min'",
    ),
    (
        "ref unknown tensor",
        _set(("outputs", 0, "axes", 1, "size"), _ref("nope", "x")),
        ("outputs", 0, "axes", 1, "size", "tensor_id"),
        "unknown tensor",
    ),
    (
        "ref unknown axis",
        _set(("outputs", 0, "axes", 1, "size"), _ref("raw", "z")),
        ("outputs", 0, "axes", 1, "size", "axis_id"),
        "unknown axis",
    ),
    (
        "input refs output",
        _set(("inputs", 0, "axes", 1, "size"), _ref("out", "x")),
        ("inputs", 0, "axes", 1, "size", "tensor_id"),
        "only reference input",
    ),
    (
        "self reference",
        _set(("inputs", 0, "axes", 1, "size"), _ref("raw", "x")),
        ("inputs", 0, "axes", 1, "size"),
        "itself",
    ),
    (
        "ref batch axis",
        _both(
            lambda r: _in_axes(r).append({"type": "batch"}),
            _set(("outputs", 0, "axes", 1, "size"), _ref("raw", "batch")),
        ),
        ("outputs", 0, "axes", 1, "size"),
        "batch axis",
    ),
    (
        "ref chain",
        _both(
            lambda r: _out_axes(r).append({"type": "space", "id": "y", "size": _ref("raw", "x")}),
            _set(("outputs", 0, "axes", 1, "size"), _ref("out", "y")),
        ),
        ("outputs", 0, "axes", 1, "size"),
        "another size reference",
    ),
    (
        "ref data dependent",
        _both(
            lambda r: _out_axes(r).append({"type": "index", "size": {"min": 1}}),
            lambda r: _out_axes(r).append(
                {"type": "index", "id": "i2", "size": _ref("out", "index")}
            ),
        ),
        ("outputs", 0, "axes", 3, "size"),
        "data dependent",
    ),
    (
        "units differ",
        _both(
            _set(("inputs", 0, "axes", 1, "unit"), "micrometer"),
            _set(("outputs", 0, "axes", 1, "size"), _ref("raw", "x")),
        ),
        ("outputs", 0, "axes", 1, "size"),
        "does not match unit",
    ),
    (
        "channel refs space",
        _set(("outputs", 0, "axes", 0), {"type": "channel", "channel_names": ["a"]}),
        None,
        "",
    ),  # valid control (no ref)
    (
        "halo too large",
        _set(
            ("outputs", 0, "axes", 1),
            {"type": "space", "id": "x", "size": _ref("raw", "x"), "halo": 8},
        ),
        ("outputs", 0, "axes", 1, "halo"),
        "leaves no valid output",
    ),
    (
        "halo not integral",
        _both(
            _set(("inputs", 0, "axes", 1, "scale"), 2.0),
            _set(
                ("outputs", 0, "axes", 1),
                {"type": "space", "id": "x", "size": _ref("raw", "x"), "halo": 1},
            ),
        ),
        ("outputs", 0, "axes", 1, "halo"),
        "not an integer",
    ),
    (
        "halo with int size",
        _set(("outputs", 0, "axes", 1), {"type": "space", "id": "x", "size": 16, "halo": 2}),
        ("outputs", 0, "axes", 1, "size"),
        "must be a mapping",
    ),
    (
        "halo 0",
        _set(
            ("outputs", 0, "axes", 1),
            {"type": "space", "id": "x", "size": _ref("raw", "x"), "halo": 0},
        ),
        ("outputs", 0, "axes", 1, "halo"),
        "must be >= 1",
    ),
    (
        "kwargs axis missing",
        pre({"id": "zero_mean_unit_variance", "kwargs": {"axes": ["x", "y"]}}),
        ("inputs", 0, "preprocessing", 0, "kwargs", "axes", 1),
        "axis 'y' is not an axis",
    ),
    (
        "kwargs along-axis missing",
        pre({"id": "scale_linear", "kwargs": {"axis": "time", "gain": [2.0]}}),
        ("inputs", 0, "preprocessing", 0, "kwargs", "axis"),
        "axis 'time'",
    ),
    (
        "pre ref to output",
        pre({"id": "scale_range", "kwargs": {"reference_tensor": "out"}}),
        ("inputs", 0, "preprocessing", 0, "kwargs", "reference_tensor"),
        "input tensor",
    ),
    (
        "post ref unknown",
        post({"id": "scale_mean_variance", "kwargs": {"reference_tensor": "nope"}}),
        ("outputs", 0, "postprocessing", 0, "kwargs", "reference_tensor"),
        "must name an input tensor (raw) (got 'nope')",
    ),
    (
        "post ref to an output",
        post({"id": "scale_range", "kwargs": {"reference_tensor": "out"}}),
        ("outputs", 0, "postprocessing", 0, "kwargs", "reference_tensor"),
        "an output cannot be a reference",
    ),
    (
        "post ref to itself",
        post({"id": "scale_mean_variance", "kwargs": {"reference_tensor": "out"}}),
        ("outputs", 0, "postprocessing", 0, "kwargs", "reference_tensor"),
        "an output cannot be a reference",
    ),
    (
        "smv in preprocessing",
        pre({"id": "scale_mean_variance", "kwargs": {"reference_tensor": "raw"}}),
        ("inputs", 0, "preprocessing", 0, "id"),
        "only allowed in postprocessing",
    ),
    (
        "unknown op",
        pre({"id": "frobnicate"}),
        ("inputs", 0, "preprocessing", 0, "id"),
        "unknown processing step",
    ),
    (
        "eps zero",
        pre({"id": "zero_mean_unit_variance", "kwargs": {"eps": 0}}),
        ("inputs", 0, "preprocessing", 0, "kwargs", "eps"),
        "'eps' must be > 0",
    ),
    (
        "eps too big",
        pre({"id": "scale_range", "kwargs": {"eps": 0.5}}),
        ("inputs", 0, "preprocessing", 0, "kwargs", "eps"),
        "'eps' must be <= 0.1",
    ),
    (
        "percentile range",
        pre({"id": "scale_range", "kwargs": {"max_percentile": 101}}),
        ("inputs", 0, "preprocessing", 0, "kwargs", "max_percentile"),
        "<= 100",
    ),
    (
        "percentile order",
        pre({"id": "scale_range", "kwargs": {"min_percentile": 50, "max_percentile": 40}}),
        ("inputs", 0, "preprocessing", 0, "kwargs", "max_percentile"),
        "must be > 'min_percentile'",
    ),
    (
        "clip both min forms",
        pre({"id": "clip", "kwargs": {"min": 0, "min_percentile": 1}}),
        ("inputs", 0, "preprocessing", 0, "kwargs", "min_percentile"),
        "not both",
    ),
    (
        "clip nothing",
        pre({"id": "clip", "kwargs": {}}),
        ("inputs", 0, "preprocessing", 0, "kwargs"),
        "at least one",
    ),
    (
        "kwargs unknown key",
        pre({"id": "sigmoid", "kwargs": {"axes": ["x"]}}),
        ("inputs", 0, "preprocessing", 0, "kwargs", "axes"),
        "unknown field",
    ),
    (
        "std too small",
        pre({"id": "fixed_zero_mean_unit_variance", "kwargs": {"mean": 0, "std": 0}}),
        ("inputs", 0, "preprocessing", 0, "kwargs", "std"),
        ">= 1e-06",
    ),
    (
        "along-axis lengths",
        pre(
            {
                "id": "fixed_zero_mean_unit_variance",
                "kwargs": {"mean": [0, 1], "std": [1], "axis": "channel"},
            }
        ),
        ("inputs", 0, "preprocessing", 0, "kwargs", "std"),
        "same length",
    ),
    (
        "redundant scale_linear",
        pre({"id": "scale_linear", "kwargs": {}}),
        ("inputs", 0, "preprocessing", 0, "kwargs"),
        "redundant",
    ),
    (
        "bad dtype",
        pre({"id": "ensure_dtype", "kwargs": {"dtype": "float16"}}),
        ("inputs", 0, "preprocessing", 0, "kwargs", "dtype"),
        "must be one of",
    ),
    ("no weights", _set(("weights",), {}), ("weights",), "at least one weights entry"),
    (
        "parent missing",
        _set(("weights", "torchscript", "parent"), "onnx"),
        ("weights", "torchscript", "parent"),
        "not a weights entry",
    ),
    (
        "own parent",
        _set(("weights", "torchscript", "parent"), "torchscript"),
        ("weights", "torchscript", "parent"),
        "own parent",
    ),
    (
        "opset too old",
        _set(("weights", "onnx"), {"source": "w.onnx", "opset_version": 6}),
        ("weights", "onnx", "opset_version"),
        ">= 7",
    ),
    (
        "missing pytorch_version",
        _delete(("weights", "torchscript", "pytorch_version")),
        ("weights", "torchscript", "pytorch_version"),
        "required",
    ),
    (
        "bad sha256",
        _set(("weights", "torchscript", "sha256"), "abc"),
        ("weights", "torchscript", "sha256"),
        "SHA-256",
    ),
    ("name too short", _set(("name",), "abc"), ("name",), "at least 5"),
    ("name bad characters", _set(("name",), "model/v1!"), ("name",), "may only use"),
    ("missing inputs", _delete(("inputs",)), ("inputs",), "required"),
    ("empty outputs", _set(("outputs",), []), ("outputs",), "at least 1"),
    ("inputs not a list", _set(("inputs",), {"id": "x"}), ("inputs",), "must be a list"),
    (
        "tensor unknown key",
        _set(("inputs", 0, "shape"), [1, 2]),
        ("inputs", 0, "shape"),
        "unknown field",
    ),
    (
        "data range order",
        _set(("inputs", 0, "data"), {"range": [1, 0]}),
        ("inputs", 0, "data", "range"),
        "min <= max",
    ),
    (
        "nominal values too big",
        _set(("inputs", 0, "data"), {"values": [0, 300], "type": "uint8"}),
        ("inputs", 0, "data", "values", 1),
        "does not fit",
    ),
    (
        "nominal strings need uint",
        _set(("inputs", 0, "data"), {"values": ["a", "b"], "type": "int8"}),
        ("inputs", 0, "data", "type"),
        "unsigned",
    ),
    (
        "nominal mixed kinds",
        _set(("inputs", 0, "data"), {"values": ["a", 1]}),
        ("inputs", 0, "data", "values"),
        "one kind",
    ),
    (
        "per-channel count",
        _set(("inputs", 0, "data"), [{"type": "uint8"}, {"type": "uint8"}]),
        ("inputs", 0, "data"),
        "one entry per channel",
    ),
    (
        "per-channel types",
        _both(
            _set(("inputs", 0, "axes", 0, "channel_names"), ["a", "b"]),
            _set(("inputs", 0, "data"), [{"type": "uint8"}, {"type": "int8"}]),
        ),
        ("inputs", 0, "data"),
        "share one 'type'",
    ),
    (
        "interval bool dtype",
        _set(("inputs", 0, "data"), {"type": "bool"}),
        ("inputs", 0, "data", "type"),
        "must be one of",
    ),
    (
        "tolerance too large",
        _set(
            ("config",),
            {"bioimageio": {"reproducibility_tolerance": [{"relative_tolerance": 0.5}]}},
        ),
        ("config", "bioimageio", "reproducibility_tolerance", 0, "relative_tolerance"),
        "<= 0.01",
    ),
    ("citation without doi/url", _set(("cite",), [{"text": "x"}]), ("cite", 0), "doi"),
    ("timestamp", _set(("timestamp",), "yesterday"), ("timestamp",), "ISO 8601"),
    ("format version", _set(("format_version",), "0.6.0"), ("format_version",), "unsupported"),
    ("missing type", _delete(("type",)), ("type",), "required"),
    (
        "format version not a string",
        _set(("format_version",), [0, 5]),
        ("format_version",),
        "version string",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "loc", "fragment"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
def test_rule_error_at_path(mutate: Mutation, loc: tuple[Any, ...] | None, fragment: str) -> None:
    raw = minimal_model()
    mutate(raw)
    result = build_description(raw)
    if loc is None:
        assert result.descr is not None, [str(i) for i in result.errors]
        return
    assert result.descr is None
    matching = [i for i in result.errors if i.loc == loc and fragment in i.msg]
    assert matching, (
        f"no error at {loc} containing {fragment!r}; got {[str(i) for i in result.errors]}"
    )


def test_all_errors_are_collected() -> None:
    raw = minimal_model()
    raw["name"] = 5
    raw["inputs"][0]["axes"][1]["size"] = -1
    raw["weights"]["torchscript"]["sha256"] = "zz"
    raw["outputs"][0]["axes"][0]["channel_names"] = []
    result = build_description(raw)
    locs = {i.loc for i in result.errors}
    assert locs == {
        ("name",),
        ("inputs", 0, "axes", 1, "size"),
        ("weights", "torchscript", "sha256"),
        ("outputs", 0, "axes", 0, "channel_names"),
    }
    assert any(i.msg == "'name' must be a string (got 5)" for i in result.errors)


WARNING_CASES: list[tuple[str, Mutation, tuple[Any, ...], str]] = [
    (
        "axis id alias",
        _set(("inputs", 0, "axes", 0, "id"), "c"),
        ("inputs", 0, "axes", 0, "id"),
        "read as 'channel'",
    ),
    ("long name", _set(("name",), "n" * 70), ("name",), "longer than 64"),
    (
        "two parentless weights",
        _set(("weights", "onnx"), {"source": "w.onnx", "opset_version": 15}),
        ("weights",),
        "exactly one weights entry",
    ),
    (
        "unknown format",
        _set(("weights", "keras_v4"), {"source": "a.keras", "parent": "torchscript"}),
        ("weights", "keras_v4"),
        "unknown weight format",
    ),
    ("unknown top-level field", _set(("shoe_size",), 42), ("shoe_size",), "unknown field"),
    ("version as number", _set(("version",), 1.1), ("version",), "number"),
    (
        "infinite range",
        _set(("inputs", 0, "data"), {"range": [float("-inf"), 1.0]}),
        ("inputs", 0, "data", "range", 0),
        "unbounded",
    ),
    (
        "output id equals input id",
        _set(("outputs", 0, "id"), "raw"),
        ("outputs", 0, "id"),
        "also an input id",
    ),
    ("run mode", _set(("run_mode",), {"name": "deepimagej"}), ("run_mode",), "limited support"),
]


@pytest.mark.parametrize(
    ("mutate", "loc", "fragment"), [c[1:] for c in WARNING_CASES], ids=[c[0] for c in WARNING_CASES]
)
def test_rule_warning_at_path(mutate: Mutation, loc: tuple[Any, ...], fragment: str) -> None:
    raw = minimal_model()
    mutate(raw)
    result = build_description(raw)
    assert result.descr is not None, [str(i) for i in result.errors]
    assert any(
        i.loc == loc and fragment in i.msg and i.severity == "warning" for i in result.issues
    ), [str(i) for i in result.issues]


def test_axis_alias_normalised_everywhere() -> None:
    raw = minimal_model()
    raw["inputs"][0]["axes"].insert(0, {"type": "batch", "id": "b"})
    raw["inputs"][0]["preprocessing"] = [{"id": "softmax", "kwargs": {"axis": "c"}}]
    raw["outputs"][0]["axes"][0] = {"type": "channel", "id": "c", "channel_names": ["p"]}
    result = build_description(raw)
    assert result.descr is not None, result.issues
    model = result.descr
    assert model.inputs[0].axes[0].id == "batch"  # type: ignore[union-attr]
    assert model.inputs[0].preprocessing[1].kwargs.axis == "channel"  # type: ignore[union-attr]


def test_rich_model_rule_positions() -> None:
    raw = rich_model()
    raw["outputs"][0]["axes"][3]["halo"] = 40  # min size 64 - 2*40 < 1
    result = build_description(raw)
    assert [i.loc for i in result.errors] == [("outputs", 0, "axes", 3, "halo")]


FILE_CASES: list[tuple[str, Mutation, tuple[Any, ...], str]] = [
    (
        "test tensor not npy",
        _set(("inputs", 0, "test_tensor"), {"source": "in.tif"}),
        ("inputs", 0, "test_tensor", "source"),
        ".npy",
    ),
    (
        "dependencies not yaml",
        _set(
            ("weights", "pytorch_state_dict"),
            {
                "source": "w.pth",
                "pytorch_version": "2.0",
                "parent": "torchscript",
                "architecture": {"import_from": "m", "callable": "N"},
                "dependencies": {"source": "req.txt"},
            },
        ),
        ("weights", "pytorch_state_dict", "dependencies", "source"),
        "conda environment",
    ),
    (
        "external data suffix",
        _set(
            ("weights", "onnx"),
            {
                "source": "w.onnx",
                "opset_version": 15,
                "parent": "torchscript",
                "external_data": {"source": "w.bin"},
            },
        ),
        ("weights", "onnx", "external_data", "source"),
        ".data",
    ),
    (
        "external data same name",
        _set(
            ("weights", "onnx"),
            {
                "source": "w.data",
                "opset_version": 15,
                "parent": "torchscript",
                "external_data": {"source": "sub/w.data"},
            },
        ),
        ("weights", "onnx", "external_data", "source"),
        "different",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "loc", "fragment"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES]
)
def test_file_kind_rules(mutate: Mutation, loc: tuple[Any, ...], fragment: str) -> None:
    test_rule_error_at_path(mutate, loc, fragment)


def test_zenodo_content_urls_keep_their_suffix() -> None:
    raw = minimal_model()
    raw["inputs"][0]["test_tensor"] = {
        "source": "https://zenodo.org/api/records/1/files/in.npy/content"
    }
    raw["documentation"] = "https://zenodo.org/api/records/1/files/README.md/content"
    result = build_description(raw)
    assert result.descr is not None
    assert not [i for i in result.issues if i.loc[-1:] in (("source",), ("documentation",))]
