"""convert_model_to_v0_5: every 0.4 feature, checked against the 0.4 meaning of the fields."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from bioimageio_core.spec.issues import Issue
from bioimageio_core.spec.legacy import TARGET_FORMAT_VERSION, convert_model_to_v0_5

Factory = Callable[..., dict[str, Any]]


def convert_ok(raw: dict[str, Any]) -> tuple[dict[str, Any], list[Issue]]:
    data, issues = convert_model_to_v0_5(raw)
    errors = [str(i) for i in issues if i.severity == "error"]
    assert errors == []
    return data, issues


def errors_of(raw: dict[str, Any]) -> list[Issue]:
    _, issues = convert_model_to_v0_5(raw)
    return [i for i in issues if i.severity == "error"]


def pre_steps(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Preprocessing steps without the ensure_dtype steps the conversion adds around them."""
    steps: list[dict[str, Any]] = data["inputs"][0]["preprocessing"]
    assert steps[0] == {"id": "ensure_dtype", "kwargs": {"dtype": "float32"}}
    assert steps[-1] == {"id": "ensure_dtype", "kwargs": {"dtype": "float32"}}
    return steps[1:-1]


def with_pre(make: Factory, *steps: dict[str, Any], axes: str = "bcyx") -> dict[str, Any]:
    raw = make()
    raw["inputs"][0]["preprocessing"] = list(steps)
    raw["inputs"][0]["axes"] = axes
    return raw


# --- top level ------------------------------------------------------------------------------------


def test_basic_model(model_v0_4: Factory) -> None:
    raw = model_v0_4()
    before = copy.deepcopy(raw)
    data, issues = convert_ok(raw)
    assert raw == before
    assert data["format_version"] == TARGET_FORMAT_VERSION == "0.5.14"
    assert data["type"] == "model"
    for key in ("name", "description", "authors", "cite", "license", "timestamp"):
        assert data[key] == raw[key]
    # format 0.5.11+: the documentation file is a file description
    assert data["documentation"] == {"source": raw["documentation"]}
    for key in ("test_inputs", "test_outputs", "sample_inputs", "sample_outputs"):
        assert key not in data
    assert data["inputs"][0]["test_tensor"] == {"source": "test_input.npy"}
    assert data["outputs"][0]["test_tensor"] == {"source": "test_output.npy"}
    assert data["inputs"][0]["sample_tensor"] == {"source": "sample_input.tif"}
    assert data["outputs"][0]["sample_tensor"] == {"source": "sample_output.tif"}
    assert issues == []


@pytest.mark.parametrize(
    ("icon", "expected"),
    [("🦈", "🦈"), ("ab", "ab"), ("icon.png", {"source": "icon.png"})],
)
def test_covers_documentation_and_file_icon_become_file_descriptions(
    model_v0_4: Factory, icon: str, expected: Any
) -> None:
    # the reference turns every 0.4 icon into a file (an emoji then names a file); an icon of
    # 1-2 characters is an emoji and stays one
    data, _ = convert_ok(model_v0_4(covers=["c.png", "https://x.org/d.jpg"], icon=icon))
    assert data["covers"] == [{"source": "c.png"}, {"source": "https://x.org/d.jpg"}]
    assert data["icon"] == expected


def test_v0_5_is_returned_unchanged() -> None:
    raw = {"format_version": "0.5.4", "type": "model", "inputs": [{"id": "x"}]}
    data, issues = convert_model_to_v0_5(raw)
    assert data == raw and data is not raw and issues == []


@pytest.mark.parametrize("fv", ["0.2.2", "0.1.0", "latest", None, 0.4])
def test_unsupported_format_versions(model_v0_4: Factory, fv: Any) -> None:
    errors = errors_of(model_v0_4(format_version=fv))
    assert [e.loc for e in errors] == [("format_version",)]


def test_name_characters(model_v0_4: Factory) -> None:
    data, issues = convert_ok(model_v0_4(name="StarDist H&E Nuclei. Segmentation"))
    assert data["name"] == "StarDist H E Nuclei Segmentation"
    assert [i.loc for i in issues] == [("name",)]


def test_linked_resources_and_dropped_fields(model_v0_4: Factory) -> None:
    raw = model_v0_4(
        parent={"id": "org/parent", "version_number": 2},
        training_data={"id": "ilastik/covid_if_training_data"},
        download_url="https://example.com/x.zip",
        rdf_source="https://example.com/rdf.yaml",
        config={"deepimagej": {"a": 1}},
        attachments={"files": ["macro.ijm"]},
    )
    data, _ = convert_ok(raw)
    assert data["parent"] == {"id": "org/parent/2"}
    assert data["training_data"] == {"id": "ilastik/covid_if_training_data"}
    assert "download_url" not in data and "rdf_source" not in data
    assert data["config"] == {"deepimagej": {"a": 1}}
    assert data["attachments"] == [{"source": "macro.ijm"}]


# --- data -----------------------------------------------------------------------------------------


def test_data_range_is_kept(model_v0_4: Factory) -> None:
    raw = model_v0_4()
    raw["inputs"][0]["data_type"] = "uint8"
    raw["inputs"][0]["data_range"] = [0, 255]
    raw["outputs"][0]["data_range"] = [0.0, float("inf")]
    data, _ = convert_ok(raw)
    assert data["inputs"][0]["data"] == {"type": "uint8", "range": [0.0, 255.0]}
    assert data["outputs"][0]["data"] == {"type": "float32", "range": [0.0, None]}
    steps = data["inputs"][0]["preprocessing"]
    assert steps[0] == {"id": "ensure_dtype", "kwargs": {"dtype": "uint8"}}
    assert steps[-1] == {"id": "ensure_dtype", "kwargs": {"dtype": "float32"}}


def test_bool_output(model_v0_4: Factory) -> None:
    raw = model_v0_4()
    raw["outputs"][0]["data_type"] = "bool"
    raw["outputs"][0]["postprocessing"] = [{"name": "binarize", "kwargs": {"threshold": 0.5}}]
    data, _ = convert_ok(raw)
    assert data["outputs"][0]["data"] == {"type": "bool", "values": [False, True]}
    # binarize already gives the output type: no cast appended
    assert data["outputs"][0]["postprocessing"] == [
        {"id": "binarize", "kwargs": {"threshold": 0.5}}
    ]


def test_output_cast_to_declared_type(model_v0_4: Factory) -> None:
    raw = model_v0_4()
    raw["outputs"][0]["data_type"] = "uint16"
    data, _ = convert_ok(raw)
    assert data["outputs"][0]["postprocessing"] == [
        {"id": "sigmoid"},
        {"id": "ensure_dtype", "kwargs": {"dtype": "uint16"}},
    ]


def test_bad_data_type(model_v0_4: Factory) -> None:
    raw = model_v0_4()
    raw["inputs"][0]["data_type"] = "complex64"
    assert [e.loc for e in errors_of(raw)] == [("inputs", 0, "data_type")]


# --- shapes ---------------------------------------------------------------------------------------


def test_parameterized_input(model_v0_4: Factory) -> None:
    data, _ = convert_ok(model_v0_4())
    assert data["inputs"][0]["axes"] == [
        {"type": "batch"},
        {"type": "channel", "channel_names": ["channel0"]},
        {"type": "space", "id": "y", "size": {"min": 64, "step": 16}},
        {"type": "space", "id": "x", "size": {"min": 64, "step": 16}},
    ]


def test_fixed_input_and_all_axis_kinds(model_v0_4: Factory) -> None:
    raw = model_v0_4()
    raw["inputs"][0].update(axes="btczyxi", shape=[1, 5, 3, 8, 16, 16, 2], preprocessing=[])
    raw["outputs"][0].update(
        axes="btczyxi",
        halo=None,
        shape={"reference_tensor": "raw", "scale": [1, 1, 1, 1, 1, 1, 1], "offset": [0] * 7},
    )
    data, _ = convert_ok(raw)
    assert data["inputs"][0]["axes"] == [
        {"type": "batch"},
        {"type": "time", "id": "time", "size": 5},
        {"type": "channel", "channel_names": ["channel0", "channel1", "channel2"]},
        {"type": "space", "id": "z", "size": 8},
        {"type": "space", "id": "y", "size": 16},
        {"type": "space", "id": "x", "size": 16},
        {"type": "index", "id": "index", "size": 2},
    ]
    out = data["outputs"][0]["axes"]
    assert out[2] == {"type": "channel", "channel_names": ["channel0", "channel1", "channel2"]}
    assert out[1]["size"] == {"tensor_id": "raw", "axis_id": "time", "offset": 0}
    assert out[6] == {"type": "index", "id": "index", "size": 2}


@pytest.mark.parametrize(
    ("shape", "loc"),
    [
        ([1, 1, 0, 64], ("inputs", 0, "shape", 2)),
        ([2, 1, 64, 64], ("inputs", 0, "shape", 0)),
        ([1, 1, 64], ("inputs", 0, "shape")),
        ({"min": [1, 1, 64, 64], "step": [0, 1, 16, 16]}, ("inputs", 0, "shape", "step", 1)),
        ({"min": [1, 1, 64, 64], "step": [0, 0, -16, 16]}, ("inputs", 0, "shape", "step", 2)),
        ("64x64", ("inputs", 0, "shape")),
    ],
)
def test_bad_input_shapes(model_v0_4: Factory, shape: Any, loc: tuple[Any, ...]) -> None:
    raw = model_v0_4()
    raw["inputs"][0]["shape"] = shape
    assert loc in [e.loc for e in errors_of(raw)]


@pytest.mark.parametrize("axes", ["bcyxq", "bcyy", "", 5])
def test_bad_axes(model_v0_4: Factory, axes: Any) -> None:
    raw = model_v0_4()
    raw["inputs"][0]["axes"] = axes
    assert ("inputs", 0, "axes") in [e.loc for e in errors_of(raw)]


def test_implicit_output_shape(model_v0_4: Factory) -> None:
    raw = model_v0_4()
    raw["outputs"][0]["halo"] = None
    raw["outputs"][0]["shape"] = {
        "reference_tensor": "raw",
        "scale": [1, 0, 0.5, 2.0],
        "offset": [0, 1.5, 2, -1],
    }
    data, _ = convert_ok(raw)
    assert data["outputs"][0]["axes"] == [
        {"type": "batch"},
        {"type": "channel", "channel_names": ["channel0", "channel1", "channel2"]},
        {
            "type": "space",
            "id": "y",
            "size": {"tensor_id": "raw", "axis_id": "y", "offset": 4},
            "scale": 2.0,
        },
        {
            "type": "space",
            "id": "x",
            "size": {"tensor_id": "raw", "axis_id": "x", "offset": -2},
            "scale": 0.5,
        },
    ]


def test_new_axis_with_scale_null(model_v0_4: Factory) -> None:
    raw = model_v0_4()
    raw["outputs"][0].update(
        axes="bczyx",
        halo=[0, 0, 0, 8, 8],
        shape={
            "reference_tensor": "raw",
            "scale": [1, 0, None, 1, 1],
            "offset": [0, 0.5, 0.5, 0, 0],
        },
    )
    data, _ = convert_ok(raw)
    axes = data["outputs"][0]["axes"]
    assert axes[2] == {"type": "space", "id": "z", "size": 1}
    assert axes[3]["size"] == {"tensor_id": "raw", "axis_id": "y", "offset": 0}
    assert axes[3]["halo"] == 8


def test_axes_pair_by_position(model_v0_4: Factory) -> None:
    raw = model_v0_4()
    raw["outputs"][0].update(
        axes="bcxy",
        halo=None,
        shape={"reference_tensor": "raw", "scale": [1, 1, 1, 1], "offset": [0] * 4},
    )
    data, issues = convert_ok(raw)
    assert data["outputs"][0]["axes"][2]["size"]["axis_id"] == "y"
    assert [i.loc for i in issues] == [
        ("outputs", 0, "shape", "scale", 2),
        ("outputs", 0, "shape", "scale", 3),
    ]


@pytest.mark.parametrize(
    ("shape", "loc"),
    [
        ({"reference_tensor": "nope", "scale": [1] * 4, "offset": [0] * 4}, "reference_tensor"),
        ({"reference_tensor": "raw", "scale": [1] * 3, "offset": [0] * 4}, "scale"),
        ({"reference_tensor": "raw", "scale": [1] * 4, "offset": [0, 0, 0.25, 0]}, ("offset", 2)),
        (
            {"reference_tensor": "raw", "scale": [1, 1, None, 1], "offset": [0] * 4},
            "reference_tensor",
        ),
        ({"reference_tensor": "raw", "scale": [1, 1, 0.3, 1], "offset": [0] * 4}, ("scale", 2)),
    ],
)
def test_bad_implicit_shapes(model_v0_4: Factory, shape: dict[str, Any], loc: Any) -> None:
    raw = model_v0_4()
    raw["outputs"][0]["shape"] = shape
    raw["outputs"][0]["halo"] = None
    loc = loc if isinstance(loc, tuple) else (loc,)
    assert ("outputs", 0, "shape", *loc) in [e.loc for e in errors_of(raw)]


def test_output_referencing_a_fixed_output(model_v0_4: Factory) -> None:
    raw = model_v0_4()
    second = {
        "name": "fixed",
        "axes": "bcyx",
        "data_type": "float32",
        "shape": [1, 2, 32, 32],
    }
    raw["outputs"][0]["halo"] = None
    raw["outputs"][0]["shape"] = {"reference_tensor": "fixed", "scale": [1] * 4, "offset": [0] * 4}
    raw["outputs"].append(second)
    raw["test_outputs"].append("t2.npy")
    data, _ = convert_ok(raw)
    assert [t["id"] for t in data["outputs"]] == ["prob", "fixed"]
    assert data["outputs"][0]["axes"][1] == {
        "type": "channel",
        "channel_names": ["channel0", "channel1"],
    }
    assert data["outputs"][0]["axes"][2]["size"] == {
        "tensor_id": "fixed",
        "axis_id": "y",
        "offset": 0,
    }


# --- halo -----------------------------------------------------------------------------------------


def test_halo_on_space_axes(model_v0_4: Factory) -> None:
    data, _ = convert_ok(model_v0_4())
    axes = data["outputs"][0]["axes"]
    assert axes[2] == {
        "type": "space",
        "id": "y",
        "size": {"tensor_id": "raw", "axis_id": "y", "offset": 0},
        "halo": 8,
    }
    assert "halo" not in axes[0] and "halo" not in axes[1]


def test_time_axis_with_zero_halo_is_plain(model_v0_4: Factory) -> None:
    raw = model_v0_4()
    raw["inputs"][0].update(axes="btyx", shape=[1, 4, 64, 64], preprocessing=[])
    raw["outputs"][0].update(
        axes="btyx",
        halo=[0, 0, 8, 8],
        shape={"reference_tensor": "raw", "scale": [1] * 4, "offset": [0] * 4},
    )
    data, _ = convert_ok(raw)
    time = data["outputs"][0]["axes"][1]
    assert time == {
        "type": "time",
        "id": "time",
        "size": {"tensor_id": "raw", "axis_id": "time", "offset": 0},
    }


def test_fixed_output_with_halo_references_same_size_input(model_v0_4: Factory) -> None:
    raw = model_v0_4()
    raw["inputs"][0]["shape"] = [1, 1, 256, 256]
    raw["outputs"][0]["shape"] = [1, 1, 256, 256]
    data, issues = convert_ok(raw)
    axes = data["outputs"][0]["axes"]
    assert axes[2] == {
        "type": "space",
        "id": "y",
        "size": {"tensor_id": "raw", "axis_id": "y"},
        "halo": 8,
    }
    assert axes[3]["halo"] == 8
    assert [i.loc for i in issues] == [("outputs", 0, "shape", 2), ("outputs", 0, "shape", 3)]


def test_fixed_output_with_halo_matching_minimal_input_size(model_v0_4: Factory) -> None:
    raw = model_v0_4()
    raw["outputs"][0]["shape"] = [1, 1, 64, 64]
    data, issues = convert_ok(raw)
    assert data["outputs"][0]["axes"][2]["size"] == {"tensor_id": "raw", "axis_id": "y"}
    assert all("minimal size" in i.msg for i in issues)


def test_fixed_output_with_halo_and_no_matching_input(model_v0_4: Factory) -> None:
    raw = model_v0_4()
    raw["outputs"][0]["shape"] = [1, 1, 100, 64]
    assert [e.loc for e in errors_of(raw)] == [("outputs", 0, "halo", 2)]


@pytest.mark.parametrize(
    ("halo", "loc"),
    [
        ([0, 0, 32, 8], ("outputs", 0, "halo", 2)),  # 64 - 2*32 < 1
        ([0, 1, 8, 8], ("outputs", 0, "halo", 1)),  # no halo on channels
        ([0, 0, 8], ("outputs", 0, "halo")),
        ([0, 0, -1, 8], ("outputs", 0, "halo")),
    ],
)
def test_bad_halo(model_v0_4: Factory, halo: list[int], loc: tuple[Any, ...]) -> None:
    raw = model_v0_4()
    raw["outputs"][0]["halo"] = halo
    assert loc in [e.loc for e in errors_of(raw)]


def test_halo_must_map_to_whole_input_pixels(model_v0_4: Factory) -> None:
    raw = model_v0_4()
    raw["outputs"][0]["shape"]["scale"] = [1, 0, 2.0, 1]
    raw["outputs"][0]["halo"] = [0, 0, 3, 8]
    assert ("outputs", 0, "halo", 2) in [e.loc for e in errors_of(raw)]


# --- processing -----------------------------------------------------------------------------------


def test_per_sample_and_per_dataset(model_v0_4: Factory) -> None:
    raw = with_pre(
        model_v0_4,
        {
            "name": "zero_mean_unit_variance",
            "kwargs": {"mode": "per_sample", "axes": "cyx", "eps": 1e-5},
        },
        {"name": "zero_mean_unit_variance", "kwargs": {"mode": "per_dataset", "axes": "yx"}},
        {
            "name": "scale_range",
            "kwargs": {
                "mode": "per_dataset",
                "axes": "yx",
                "min_percentile": 1,
                "max_percentile": 99.8,
                "reference_tensor": "raw",
            },
        },
        {"name": "scale_range", "kwargs": {"mode": "per_sample", "axes": "xy"}},
    )
    data, _ = convert_ok(raw)
    assert pre_steps(data) == [
        {"id": "zero_mean_unit_variance", "kwargs": {"axes": ["channel", "y", "x"], "eps": 1e-5}},
        {"id": "zero_mean_unit_variance", "kwargs": {"axes": ["batch", "y", "x"]}},
        {
            "id": "scale_range",
            "kwargs": {
                "axes": ["batch", "y", "x"],
                "min_percentile": 1,
                "max_percentile": 99.8,
                "reference_tensor": "raw",
            },
        },
        {"id": "scale_range", "kwargs": {"axes": ["x", "y"]}},
    ]


def test_fixed_zero_mean_unit_variance(model_v0_4: Factory) -> None:
    raw = with_pre(
        model_v0_4,
        {
            "name": "zero_mean_unit_variance",
            "kwargs": {"mode": "fixed", "axes": "yx", "mean": 3, "std": 2},
        },
        {
            "name": "zero_mean_unit_variance",
            "kwargs": {"axes": "yx", "mean": [1, 2], "std": [3, 4]},
        },
        {"name": "zero_mean_unit_variance", "kwargs": {"axes": "yx", "mean": [1, 2], "std": 5}},
        {"name": "zero_mean_unit_variance", "kwargs": {"axes": "cyx", "mean": [7], "std": [8]}},
    )
    data, _ = convert_ok(raw)
    assert pre_steps(data) == [
        {"id": "fixed_zero_mean_unit_variance", "kwargs": {"mean": 3.0, "std": 2.0}},
        {
            "id": "fixed_zero_mean_unit_variance",
            "kwargs": {"axis": "channel", "mean": [1, 2], "std": [3, 4]},
        },
        {
            "id": "fixed_zero_mean_unit_variance",
            "kwargs": {"axis": "channel", "mean": [1, 2], "std": [5, 5]},
        },
        {"id": "fixed_zero_mean_unit_variance", "kwargs": {"mean": 7.0, "std": 8.0}},
    ]


def test_scale_linear(model_v0_4: Factory) -> None:
    raw = with_pre(
        model_v0_4,
        {"name": "scale_linear", "kwargs": {"gain": 2, "offset": 1}},
        {"name": "scale_linear", "kwargs": {"axes": "xy", "gain": 0.5, "offset": -1}},
        {"name": "scale_linear", "kwargs": {"axes": "yx", "gain": [1, 2, 3], "offset": 0}},
        axes="byxc",
    )
    raw["inputs"][0]["shape"] = [1, 64, 64, 3]
    raw["outputs"][0].update(axes="byxc", halo=None)
    data, _ = convert_ok(raw)
    assert pre_steps(data) == [
        {"id": "scale_linear", "kwargs": {"gain": 2.0, "offset": 1.0}},
        # a scalar gain with axes is the same operation without them
        {"id": "scale_linear", "kwargs": {"gain": 0.5, "offset": -1.0}},
        {"id": "scale_linear", "kwargs": {"axis": "channel", "gain": [1, 2, 3], "offset": 0.0}},
    ]


def test_scale_mean_variance_and_simple_steps(model_v0_4: Factory) -> None:
    raw = model_v0_4()
    raw["outputs"][0]["postprocessing"] = [
        {
            "name": "scale_mean_variance",
            "kwargs": {"mode": "per_sample", "reference_tensor": "raw"},
        },
        {
            "name": "scale_mean_variance",
            "kwargs": {"mode": "per_dataset", "reference_tensor": "raw", "axes": "yx"},
        },
        {"name": "clip", "kwargs": {"min": 0, "max": 1}},
        {"name": "binarize", "kwargs": {"threshold": 0.5}},
    ]
    data, _ = convert_ok(raw)
    assert data["outputs"][0]["postprocessing"] == [
        {
            "id": "scale_mean_variance",
            "kwargs": {"reference_tensor": "raw", "axes": ["channel", "y", "x"]},
        },
        {
            "id": "scale_mean_variance",
            "kwargs": {"reference_tensor": "raw", "axes": ["batch", "y", "x"]},
        },
        {"id": "clip", "kwargs": {"min": 0, "max": 1}},
        {"id": "binarize", "kwargs": {"threshold": 0.5}},
    ]


@pytest.mark.parametrize(
    ("step", "loc"),
    [
        (
            {"name": "zero_mean_unit_variance", "kwargs": {"mode": "per_sample", "axes": "byx"}},
            "axes",
        ),
        (
            {"name": "zero_mean_unit_variance", "kwargs": {"mode": "per_sample", "axes": "zyx"}},
            "axes",
        ),
        ({"name": "zero_mean_unit_variance", "kwargs": {"mode": "per_sample"}}, "axes"),
        ({"name": "zero_mean_unit_variance", "kwargs": {"mode": "weird", "axes": "yx"}}, "mode"),
        ({"name": "scale_range", "kwargs": {"axes": "yx"}}, "mode"),
        ({"name": "scale_linear", "kwargs": {"axes": "x", "gain": [1, 2]}}, "axes"),
        (
            {"name": "zero_mean_unit_variance", "kwargs": {"axes": "yx", "mean": "a", "std": 1}},
            "mean",
        ),
    ],
)
def test_bad_steps(model_v0_4: Factory, step: dict[str, Any], loc: str) -> None:
    raw = with_pre(model_v0_4, step)
    assert ("inputs", 0, "preprocessing", 0, "kwargs", loc) in [e.loc for e in errors_of(raw)]


def test_step_without_name(model_v0_4: Factory) -> None:
    raw = with_pre(model_v0_4, {"kwargs": {}})
    assert [e.loc for e in errors_of(raw)] == [("inputs", 0, "preprocessing", 0, "name")]


def test_per_dataset_needs_batch_axis(model_v0_4: Factory) -> None:
    raw = with_pre(
        model_v0_4,
        {"name": "scale_range", "kwargs": {"mode": "per_dataset", "axes": "yx"}},
        axes="cyx",
    )
    raw["inputs"][0]["shape"] = [1, 64, 64]
    raw["outputs"][0].update(
        axes="cyx",
        halo=None,
        shape={"reference_tensor": "raw", "scale": [1, 1, 1], "offset": [0, 0, 0]},
    )
    assert ("inputs", 0, "preprocessing", 0, "kwargs", "mode") in [e.loc for e in errors_of(raw)]


# --- weights --------------------------------------------------------------------------------------


def test_pytorch_state_dict_keeps_sha256_and_architecture(model_v0_4: Factory) -> None:
    data, _ = convert_ok(model_v0_4())
    entry = data["weights"]["pytorch_state_dict"]
    assert entry == {
        "source": "weights.pt",
        "sha256": "a" * 64,
        "pytorch_version": "1.10",
        "architecture": {
            "source": "unet.py",
            "callable": "UNet2d",
            "sha256": "b" * 64,
            "kwargs": {"depth": 3},
        },
        "dependencies": {"source": "environment.yaml"},
    }
    assert data["weights"]["torchscript"] == {
        "source": "weights_ts.pt",
        "sha256": "c" * 64,
        "parent": "pytorch_state_dict",
        "pytorch_version": "1.13",
    }


@pytest.mark.parametrize(
    ("architecture", "expected"),
    [
        (
            "https://zenodo.org/api/records/5/files/unet.py/content:UNet2d",
            {
                "source": "https://zenodo.org/api/records/5/files/unet.py/content",
                "callable": "UNet2d",
            },
        ),
        ("models/unet.py:UNet_3D", {"source": "models/unet.py", "callable": "UNet_3D"}),
        (
            "torchvision.models.resnet18",
            {"import_from": "torchvision.models", "callable": "resnet18"},
        ),
    ],
)
def test_architecture_forms(
    model_v0_4: Factory, architecture: str, expected: dict[str, Any]
) -> None:
    raw = model_v0_4()
    entry = raw["weights"]["pytorch_state_dict"]
    entry["architecture"] = architecture
    if "import_from" in expected:
        del entry["architecture_sha256"]
    data, _ = convert_ok(raw)
    arch = data["weights"]["pytorch_state_dict"]["architecture"]
    assert {k: arch[k] for k in expected} == expected
    assert arch["kwargs"] == {"depth": 3}


@pytest.mark.parametrize(
    "architecture", ["https://zenodo.org/api/files/x/rdf.yaml", "unet.py:", "not valid", None, 3]
)
def test_bad_architecture(model_v0_4: Factory, architecture: Any) -> None:
    raw = model_v0_4()
    raw["weights"]["pytorch_state_dict"]["architecture"] = architecture
    assert [e.loc for e in errors_of(raw)] == [("weights", "pytorch_state_dict", "architecture")]


def test_library_architecture_with_sha256_warns(model_v0_4: Factory) -> None:
    raw = model_v0_4()
    raw["weights"]["pytorch_state_dict"]["architecture"] = "pkg.mod.Net"
    data, issues = convert_ok(raw)
    assert "sha256" not in data["weights"]["pytorch_state_dict"]["architecture"]
    assert [i.loc for i in issues] == [("weights", "pytorch_state_dict", "architecture_sha256")]


def test_other_weight_formats_and_default_versions(model_v0_4: Factory) -> None:
    weights = {
        "onnx": {"source": "m.onnx", "sha256": "d" * 64},
        "keras_hdf5": {"source": "m.h5", "tensorflow_version": "2.9"},
        "tensorflow_saved_model_bundle": {
            "source": "tf.zip",
            "parent": "keras_hdf5",
            "dependencies": "pip:requirements.txt",
            "attachments": {"files": ["vars.txt"]},
        },
        "tensorflow_js": {"source": "model.json"},
        "my_format": {"source": "x.bin", "extra": 1},
    }
    data, issues = convert_ok(model_v0_4(weights=weights))
    out = data["weights"]
    assert out["onnx"] == {"source": "m.onnx", "sha256": "d" * 64, "opset_version": 15}
    assert out["keras_hdf5"] == {"source": "m.h5", "tensorflow_version": "2.9"}
    assert out["tensorflow_saved_model_bundle"] == {
        "source": "tf.zip",
        "parent": "keras_hdf5",
        "tensorflow_version": "1.15",
    }
    assert out["tensorflow_js"]["tensorflow_version"] == "1.15"
    assert out["my_format"] == {"source": "x.bin", "extra": 1}
    assert data["attachments"] == [{"source": "vars.txt"}, {"source": "requirements.txt"}]
    assert {i.loc for i in issues} == {
        ("weights", "onnx", "opset_version"),
        ("weights", "tensorflow_saved_model_bundle", "tensorflow_version"),
        ("weights", "tensorflow_saved_model_bundle", "dependencies"),
        ("weights", "tensorflow_saved_model_bundle", "attachments"),
        ("weights", "tensorflow_js", "tensorflow_version"),
    }


def test_bad_dependencies(model_v0_4: Factory) -> None:
    raw = model_v0_4()
    raw["weights"]["pytorch_state_dict"]["dependencies"] = "conda:requirements.txt"
    assert [e.loc for e in errors_of(raw)] == [("weights", "pytorch_state_dict", "dependencies")]


# --- test and sample files ------------------------------------------------------------------------


def test_test_files_must_be_npy(model_v0_4: Factory) -> None:
    raw = model_v0_4(test_inputs=["https://zenodo.org/api/records/1/files/in.tif/content"])
    assert [e.loc for e in errors_of(raw)] == [("test_inputs", 0)]
    raw = model_v0_4(test_inputs=["https://zenodo.org/api/records/1/files/in.npy/content"])
    data, _ = convert_ok(raw)
    assert data["inputs"][0]["test_tensor"]["source"].endswith("in.npy/content")


def test_test_file_count(model_v0_4: Factory) -> None:
    assert [e.loc for e in errors_of(model_v0_4(test_outputs=["a.npy", "b.npy"]))] == [
        ("test_outputs",)
    ]
    data, issues = convert_ok(model_v0_4(test_outputs=[]))
    assert "test_tensor" not in data["outputs"][0]
    assert [i.loc for i in issues] == [("test_outputs",)]


def test_non_image_samples_become_attachments(model_v0_4: Factory) -> None:
    data, issues = convert_ok(
        model_v0_4(sample_inputs=["s.npy"], sample_outputs=["a.tif", "b.tif"])
    )
    assert "sample_tensor" not in data["inputs"][0]
    assert "sample_tensor" not in data["outputs"][0]
    assert data["attachments"] == [{"source": "s.npy"}, {"source": "a.tif"}, {"source": "b.tif"}]
    assert {i.loc for i in issues} == {("sample_inputs", 0), ("sample_outputs",)}


def test_duplicate_tensor_names(model_v0_4: Factory) -> None:
    raw = model_v0_4()
    raw["outputs"][0]["name"] = "raw"
    assert ("outputs", 0, "name") in [e.loc for e in errors_of(raw)]


# --- 0.3 ------------------------------------------------------------------------------------------


def test_v0_3_root_fields_move_into_weights(model_v0_4: Factory) -> None:
    raw = model_v0_4(
        format_version="0.3.2",
        source="unet.py:UNet2d",
        sha256="e" * 64,
        kwargs={"depth": 4},
        dependencies="conda:env.yaml",
        language="python",
        framework="pytorch",
    )
    entry = raw["weights"]["pytorch_state_dict"]
    for key in ("architecture", "architecture_sha256", "kwargs", "dependencies"):
        del entry[key]
    raw["weights"]["pytorch_script"] = raw["weights"].pop("torchscript")
    data, _ = convert_ok(raw)
    arch = data["weights"]["pytorch_state_dict"]["architecture"]
    assert arch == {
        "source": "unet.py",
        "callable": "UNet2d",
        "sha256": "e" * 64,
        "kwargs": {"depth": 4},
    }
    assert data["weights"]["pytorch_state_dict"]["dependencies"] == {"source": "env.yaml"}
    assert "torchscript" in data["weights"]
    for key in ("source", "sha256", "kwargs", "language", "framework", "dependencies"):
        assert key not in data


def test_v0_3_issue_points_at_root_field(model_v0_4: Factory) -> None:
    raw = model_v0_4(format_version="0.3.5", source="https://zenodo.org/api/files/x/rdf.yaml")
    for key in ("architecture", "architecture_sha256", "kwargs"):
        del raw["weights"]["pytorch_state_dict"][key]
    assert [e.loc for e in errors_of(raw)] == [("source",)]


def test_v0_4_early_moves(model_v0_4: Factory) -> None:
    raw = model_v0_4(
        format_version="0.4.4",
        parent={"uri": "https://doi.org/10.5281/zenodo.7274275", "sha256": "f" * 64},
        config={"bioimageio": {"nickname": "affable-shark", "nickname_icon": "🦈"}},
    )
    data, issues = convert_ok(raw)
    assert data["parent"] == {"id": "https://doi.org/10.5281/zenodo.7274275"}
    assert data["id"] == "affable-shark" and data["id_emoji"] == "🦈"
    assert data["config"] == {"bioimageio": {}}
    assert [i.loc for i in issues] == [("parent", "uri")]
