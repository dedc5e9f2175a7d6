"""The 0.4 and 0.5 versions of the same example models convert to equivalent descriptions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from bioimageio_core.spec.legacy import convert_model_to_v0_5, normalize_raw

PREFIX = "bioimage-io__spec-bioimage-io/example_descriptions__models__"
PAIRS = [
    ("unet2d_nuclei_broad__v0_4_9.bioimageio.yaml", "unet2d_nuclei_broad__bioimageio.yaml"),
    ("unet2d_nuclei_broad__v0_4_0.bioimageio.yaml", "unet2d_nuclei_broad__bioimageio.yaml"),
    (
        "unet2d_nuclei_broad__expand_output_shape_v0_4.bioimageio.yaml",
        "unet2d_nuclei_broad__expand_output_shape.bioimageio.yaml",
    ),
    ("unet2d_diff_output_shape__v0_4.bioimageio.yaml", "unet2d_diff_output_shape__bioimageio.yaml"),
    ("unet2d_multi_tensor__v0_4.bioimageio.yaml", "unet2d_multi_tensor__bioimageio.yaml"),
]
_DEFAULT_AXIS_IDS = {"batch": "batch", "channel": "channel", "index": "index", "time": "time"}


def _axis(axis: dict[str, Any]) -> tuple[Any, ...]:
    """What an axis means for sizes: kind, id, size (channel: count), halo, scale.

    The batch size is left out: 0.4 required batch 1 in inputs by convention only, so the
    conversion leaves the batch free (as the format's reference conversion does).
    """
    kind = axis["type"]
    size = axis.get("size")
    if kind == "channel":
        size = len(axis["channel_names"])
    elif kind == "batch":
        size = None
    elif isinstance(size, dict) and "tensor_id" in size:
        size = {"offset": 0, **size}
    return (
        kind,
        axis.get("id", _DEFAULT_AXIS_IDS.get(kind, "x")),
        json.dumps(size, sort_keys=True),
        axis.get("halo", 0),
        float(axis.get("scale", 1.0)),
    )


def _steps(steps: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    out = []
    for step in steps:
        kwargs = dict(step.get("kwargs") or {})
        if step["id"] in ("zero_mean_unit_variance", "scale_range", "scale_mean_variance"):
            kwargs.setdefault("eps", 1e-6)  # the format's default
        axes = kwargs.pop("axes", None)
        out.append((step["id"], None if axes is None else sorted(axes), sorted(kwargs.items())))
    return out


def signature(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    sig = []
    for kind, default_id, proc in (
        ("inputs", "input", "preprocessing"),
        ("outputs", "output", "postprocessing"),
    ):
        for tensor in data[kind]:
            sig.append(
                (
                    kind,
                    tensor.get("id", default_id),
                    [_axis(a) for a in tensor["axes"]],
                    _steps(tensor.get(proc, [])),
                    (tensor.get("test_tensor") or {}).get("source"),
                )
            )
    return sig


@pytest.mark.parametrize(("v0_4", "v0_5"), PAIRS)
def test_example_pairs_are_equivalent(
    load_corpus_file: Callable[[str], dict[str, Any]], v0_4: str, v0_5: str
) -> None:
    old, _ = normalize_raw(load_corpus_file(PREFIX + v0_4))
    new, _ = normalize_raw(load_corpus_file(PREFIX + v0_5))
    converted, issues = convert_model_to_v0_5(old)
    assert [str(i) for i in issues if i.severity == "error"] == []
    assert signature(converted) == signature(new)


def test_nuclei_broad_weights(load_corpus_file: Callable[[str], dict[str, Any]]) -> None:
    old, _ = normalize_raw(load_corpus_file(PREFIX + PAIRS[0][0]))
    new = load_corpus_file(PREFIX + PAIRS[0][1])
    converted, _ = convert_model_to_v0_5(old)
    weights, expected = converted["weights"], new["weights"]
    assert set(weights) == set(expected)
    for fmt, entry in expected.items():
        assert weights[fmt]["source"] == entry["source"]
        assert weights[fmt]["sha256"] == entry["sha256"]
        assert weights[fmt].get("parent") == entry.get("parent")
    arch, expected_arch = (
        weights["pytorch_state_dict"]["architecture"],
        expected["pytorch_state_dict"]["architecture"],
    )
    assert arch == expected_arch
    deps = weights["pytorch_state_dict"]["dependencies"]
    assert deps["source"] == expected["pytorch_state_dict"]["dependencies"]["source"]
    assert weights["onnx"]["opset_version"] == expected["onnx"]["opset_version"]
