"""original_location: 0.5 paths of a converted model lead back to the 0.4 fields the user wrote."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bioimageio_core.spec.issues import Loc
from bioimageio_core.spec.legacy import convert_model_to_v0_5, original_location

Factory = Callable[..., dict[str, Any]]


@pytest.mark.parametrize(
    ("converted", "original"),
    [
        (("inputs", 0, "id"), ("inputs", 0, "name")),
        (("inputs", 0, "axes", 2, "size", "min"), ("inputs", 0, "shape", "min", 2)),
        (("inputs", 0, "axes", 1, "channel_names", 0), ("inputs", 0, "shape", "min", 1)),
        (("inputs", 0, "axes", 2, "id"), ("inputs", 0, "axes")),
        (("inputs", 0, "data", "range", 0), ("inputs", 0, "data_range")),
        (("inputs", 0, "data", "type"), ("inputs", 0, "data_type")),
        (("inputs", 0, "preprocessing", 0, "kwargs", "dtype"), ("inputs", 0, "data_type")),
        (
            ("inputs", 0, "preprocessing", 1, "kwargs", "axes", 0),
            ("inputs", 0, "preprocessing", 0, "kwargs", "axes"),
        ),
        (("inputs", 0, "preprocessing", 1, "id"), ("inputs", 0, "preprocessing", 0, "name")),
        (("inputs", 0, "preprocessing", 2), ("inputs", 0, "data_type")),
        (("inputs", 0, "test_tensor", "source"), ("test_inputs", 0)),
        (("outputs", 0, "sample_tensor"), ("sample_outputs", 0)),
        (("outputs", 0, "axes", 2, "halo"), ("outputs", 0, "halo", 2)),
        (("outputs", 0, "axes", 2, "size", "offset"), ("outputs", 0, "shape", "scale", 2)),
        (("outputs", 0, "postprocessing", 0, "id"), ("outputs", 0, "postprocessing", 0, "name")),
        (("outputs", 0, "postprocessing", 1, "kwargs"), ("outputs", 0, "data_type")),
        (
            ("weights", "pytorch_state_dict", "architecture", "callable"),
            ("weights", "pytorch_state_dict", "architecture"),
        ),
        (
            ("weights", "pytorch_state_dict", "architecture", "sha256"),
            ("weights", "pytorch_state_dict", "architecture_sha256"),
        ),
        (
            ("weights", "pytorch_state_dict", "architecture", "kwargs", "depth"),
            ("weights", "pytorch_state_dict", "kwargs", "depth"),
        ),
        (
            ("weights", "pytorch_state_dict", "dependencies", "source"),
            ("weights", "pytorch_state_dict", "dependencies"),
        ),
        (("weights", "torchscript", "sha256"), ("weights", "torchscript", "sha256")),
        (("attachments", 3, "source"), ("attachments",)),
        (("license",), ("license",)),
        (("inputs", "x"), ("inputs", "x")),
    ],
)
def test_known_locations(model_v0_4: Factory, converted: Loc, original: Loc) -> None:
    assert original_location(converted, model_v0_4()) == original


def _leaves(node: Any, prefix: Loc = ()) -> Iterator[Loc]:
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _leaves(value, (*prefix, key))
    elif isinstance(node, list) and node:
        for i, value in enumerate(node):
            yield from _leaves(value, (*prefix, i))
    else:
        yield prefix


def _exists(data: Any, loc: Loc) -> bool:
    for key in loc:
        if isinstance(data, dict) and key in data:
            data = data[key]
        elif isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data):
            data = data[key]
        else:
            return False
    return True


def test_every_converted_field_leads_to_a_written_field(model_v0_4: Factory) -> None:
    raw = model_v0_4()
    raw["outputs"][0]["shape"] = [1, 1, 64, 64]  # fixed output shape with a halo
    raw["outputs"][0]["postprocessing"].append({"name": "clip", "kwargs": {"min": 0, "max": 1}})
    converted, issues = convert_model_to_v0_5(raw)
    assert not [i for i in issues if i.severity == "error"]
    for leaf in _leaves({k: converted[k] for k in ("inputs", "outputs", "weights")}):
        assert _exists(raw, original_location(leaf, raw)), leaf
