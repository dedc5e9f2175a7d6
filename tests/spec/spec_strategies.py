"""Hypothesis strategies for valid raw model 0.5 descriptions (canonical: defaults left out)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

SHA = st.text("0123456789abcdef", min_size=64, max_size=64)
IDENT = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
NAME = st.from_regex(r"[A-Za-z][A-Za-z0-9_+\- ()]{3,30}[A-Za-z0-9]", fullmatch=True)
FILE = st.from_regex(r"[a-z]{1,8}\.(npy|png|md|pt|onnx)", fullmatch=True)
NPY = st.from_regex(r"[a-z]{1,8}\.npy", fullmatch=True)
IMAGE = st.from_regex(r"[a-z]{1,8}\.(png|PNG|jpg|svg|gif|jpeg)", fullmatch=True)
LICENSES = st.sampled_from(["MIT", "CC-BY-4.0", "BSD-3-Clause", "Apache-2.0"])
FLOAT = st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 3))


PADDING = st.sampled_from(
    [
        {"mode": "constant"},
        {"mode": "constant", "value": 1.5},
        {"mode": "constant", "value": -2},
        {"mode": "edge"},
        {"mode": "reflect"},
        {"mode": "symmetric"},
    ]
)
TOLERANCES = st.sampled_from(
    [
        [],
        [{"absolute_tolerance": 0.01, "output_ids": []}],
        [
            {"output_ids": "any_continuous_output", "mismatched_elements_per_million": 200},
            {"output_ids": "any_discrete_output"},
        ],
        [
            {"output_ids": [], "weights_formats": ["onnx"], "relative_tolerance": 0.0},
            {"output_ids": "any_discrete_output", "mismatched_elements_per_million": 30000},
        ],
    ]
)


@st.composite
def file_descr(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"source": draw(NPY)}
    if draw(st.booleans()):
        out["sha256"] = draw(SHA)
    return out


@st.composite
def space_input_axis(draw: st.DrawFn, axis_id: str, refs: list[tuple[str, str]]) -> dict[str, Any]:
    kind = draw(st.sampled_from(["int", "param", "ref"] if refs else ["int", "param"]))
    size: Any
    if kind == "int":
        size = draw(st.integers(1, 512))
    elif kind == "param":
        size = {"min": draw(st.integers(1, 64)), "step": draw(st.integers(1, 32))}
    else:
        tensor_id, ref_axis = draw(st.sampled_from(refs))
        size = {"tensor_id": tensor_id, "axis_id": ref_axis}
        offset = draw(st.integers(-2, 4))
        if offset:
            size["offset"] = offset
    axis: dict[str, Any] = {"type": "space", "id": axis_id, "size": size}
    if axis_id == "x":  # the default id is left out (canonical form)
        del axis["id"]
    if draw(st.booleans()):
        axis["concatenable"] = True
    if draw(st.booleans()):
        axis["description"] = draw(TEXT)
    return axis


def _min_size(axis: dict[str, Any], sizes: dict[tuple[str, str], int]) -> int:
    size = axis["size"]
    if isinstance(size, int):
        return size
    if "step" in size:
        return int(size["min"])
    return sizes[(size["tensor_id"], size["axis_id"])] + int(size.get("offset", 0))


STEP_TEMPLATES = [
    lambda axes: {"id": "sigmoid"},
    lambda axes: {"id": "binarize", "kwargs": {"threshold": 0.5}},
    lambda axes: {"id": "clip", "kwargs": {"min": -1.0, "max": 2.5}},
    lambda axes: {"id": "scale_linear", "kwargs": {"gain": 2.0, "offset": 1.5}},
    lambda axes: {"id": "zero_mean_unit_variance", "kwargs": {"axes": axes}},
    lambda axes: {
        "id": "scale_range",
        "kwargs": {"axes": axes, "min_percentile": 1.0, "max_percentile": 99.5},
    },
    lambda axes: {"id": "fixed_zero_mean_unit_variance", "kwargs": {"mean": 0.5, "std": 2.0}},
    lambda axes: {"id": "ensure_dtype", "kwargs": {"dtype": "float32"}},
    lambda axes: {"id": "softmax"},
]


@st.composite
def model(draw: st.DrawFn) -> dict[str, Any]:
    n_in = draw(st.integers(1, 2))
    n_out = draw(st.integers(1, 2))
    ids = draw(st.lists(IDENT, min_size=n_in + n_out, max_size=n_in + n_out, unique=True))
    in_ids, out_ids = ids[:n_in], ids[n_in:]
    refs: list[tuple[str, str]] = []
    sizes: dict[tuple[str, str], int] = {}
    inputs = []
    for tid in in_ids:
        axes: list[dict[str, Any]] = []
        if draw(st.booleans()):
            axes.append({"type": "batch"})
        axes.append(
            {
                "type": "channel",
                "channel_names": draw(st.lists(IDENT, min_size=1, max_size=3, unique=True)),
            }
        )
        space_ids = draw(st.sampled_from([["x"], ["y", "x"], ["z", "y", "x"]]))
        own_refs: list[tuple[str, str]] = []
        for aid in space_ids:
            axis = draw(space_input_axis(aid, refs + own_refs))
            axes.append(axis)
            sizes[(tid, aid)] = _min_size(axis, sizes)
            if not (isinstance(axis["size"], dict) and "tensor_id" in axis["size"]):
                own_refs.append((tid, aid))
        refs.extend(own_refs)
        tensor: dict[str, Any] = {"id": tid, "axes": axes}
        steps = draw(st.lists(st.sampled_from(STEP_TEMPLATES), max_size=3))
        if steps:
            tensor["preprocessing"] = [s(space_ids) for s in steps]
        if draw(st.booleans()):
            tensor["test_tensor"] = draw(file_descr())
        if draw(st.booleans()):
            tensor["data"] = {"type": draw(st.sampled_from(["uint8", "float64", "int16"]))}
        if draw(st.booleans()):
            tensor["pad"] = draw(PADDING)
        inputs.append(tensor)
    outputs = []
    for tid in out_ids:
        axes = [{"type": "channel", "channel_names": ["out"]}]
        for aid in ("y", "x"):
            tensor_id, ref_axis = draw(st.sampled_from(refs))
            axis: dict[str, Any] = {
                "type": "space",
                "id": aid,
                "size": {"tensor_id": tensor_id, "axis_id": ref_axis},
            }
            if aid == "x":
                del axis["id"]
            min_size = sizes[(tensor_id, ref_axis)]
            if min_size >= 3 and draw(st.booleans()):
                axis["halo"] = draw(st.integers(1, (min_size - 1) // 2))
            axes.append(axis)
        tensor = {"id": tid, "axes": axes}
        if draw(st.booleans()):
            tensor["postprocessing"] = [
                {"id": "scale_range", "kwargs": {"reference_tensor": draw(st.sampled_from(in_ids))}}
            ]
        if draw(st.booleans()):
            tensor["data"] = {"values": draw(st.lists(IDENT, min_size=1, max_size=4, unique=True))}
        outputs.append(tensor)
    weights: dict[str, Any] = {
        "onnx": {"source": draw(FILE), "opset_version": draw(st.integers(7, 20))}
    }
    if draw(st.booleans()):
        weights["torchscript"] = {
            "source": draw(FILE),
            "pytorch_version": "2.1.0",
            "parent": "onnx",
        }
    if draw(st.booleans()):
        weights["pytorch_state_dict"] = {
            "source": draw(FILE),
            "pytorch_version": "2.0.1",
            "architecture": draw(
                st.sampled_from(
                    [
                        {"source": "arch.py", "callable": "Net", "kwargs": {"depth": 2}},
                        {"import_from": "pkg.mod", "callable": "Net"},
                    ]
                )
            ),
            "parent": "onnx",
        }
        if draw(st.booleans()):
            weights["pytorch_state_dict"]["strict"] = False
    if draw(st.booleans()):
        weights["keras_v3"] = {
            "source": "model.keras",
            "parent": "onnx",
            "keras_version": draw(st.sampled_from(["3.0.0", "3.5.0", "3.10.1rc1"])),
            "backend": [draw(st.sampled_from(["tensorflow", "jax", "torch"])), "2.16.1"],
        }
    raw: dict[str, Any] = {
        "format_version": "0.5.14",
        "type": "model",
        "name": draw(NAME),
        "inputs": inputs,
        "outputs": outputs,
        "weights": weights,
    }
    optional: dict[str, Any] = {
        "description": TEXT,
        "license": LICENSES,
        "authors": st.lists(st.fixed_dictionaries({"name": TEXT}), min_size=1, max_size=2),
        "tags": st.lists(TEXT, min_size=1, max_size=3),
        "covers": st.lists(IMAGE.map(lambda f: {"source": f}), min_size=1, max_size=2),
        "version": st.sampled_from(["0.1.0", "1.10.2"]),
        "config": st.builds(
            lambda tolerances: {
                "bioimageio": {"reproducibility_tolerance": tolerances},
                "other": {"k": 1},
            },
            TOLERANCES,
        ),
        "timestamp": st.just("2024-05-06T07:08:09+00:00"),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            raw[key] = draw(strategy)
    return raw


JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=5,
)
