"""YAML of descriptions: nesting depth is bounded, duplicate keys are errors with their path."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bioimageio_core import validate_format
from bioimageio_core.errors import SourceError
from bioimageio_core.sources import read_description
from bioimageio_core.sources.yamlio import MAX_YAML_DEPTH, parse_yaml_mapping

LIMIT = 1024**2


def parse(text: str) -> dict[str, object]:
    return parse_yaml_mapping(text.encode(), "rdf.yaml", LIMIT)


@pytest.mark.parametrize("depth", [500, 5000])
@pytest.mark.parametrize(("open_", "close"), [("[", "]"), ("{a: ", "}")])
def test_deep_nesting_is_a_clear_error(depth: int, open_: str, close: str) -> None:
    text = "name: deep\nconfig: " + open_ * depth + "1" + close * depth + "\n"
    with pytest.raises(SourceError, match=f"nested more than {MAX_YAML_DEPTH} levels") as info:
        parse(text)
    assert "rdf.yaml" in str(info.value) and "line 2" in str(info.value)


def test_deep_block_nesting_through_validate(tmp_path: Path) -> None:
    lines = ["name: deep", "config:"]
    lines += [" " * (2 * i + 2) + f"k{i}:" for i in range(600)]
    (tmp_path / "rdf.yaml").write_text("\n".join(lines) + " 1\n")
    summary = validate_format(tmp_path / "rdf.yaml")
    assert summary.status == "failed"
    assert f"nested more than {MAX_YAML_DEPTH} levels" in summary.first_error_text()
    assert "internal error" not in summary.format_text()


def test_nesting_within_the_limit_is_read() -> None:
    depth = MAX_YAML_DEPTH - 2  # the top-level mapping and 'config' count as levels
    data = parse("config: " + "[" * depth + "1" + "]" * depth + "\n")
    value = data["config"]
    for _ in range(depth):
        assert isinstance(value, list)
        value = value[0]
    assert value == 1


@pytest.mark.parametrize(
    ("text", "path", "line"),
    [
        ("name: a\nname: b\n", "$.name", 2),
        ("inputs:\n- id: raw\n  axes: []\n  id: other\n", "$.inputs[0].id", 4),
        ("config:\n  x: {k: 1, k: 2}\n", "$.config.x.k", 2),
        ("weights:\n  onnx: {source: a}\n  onnx: {source: b}\n", "$.weights.onnx", 3),
        ("a: 1\n1: x\n'a': 2\n", "$.a", 3),  # quoted or not, the same key
    ],
)
def test_duplicate_key_is_an_error_with_its_path(text: str, path: str, line: int) -> None:
    with pytest.raises(SourceError, match="duplicate key") as info:
        parse(text)
    message = str(info.value)
    assert path in message and f"line {line}" in message and "rdf.yaml" in message


def test_duplicate_key_fails_validate(tmp_path: Path) -> None:
    (tmp_path / "rdf.yaml").write_text("name: first\ntype: model\nname: second\n")
    summary = validate_format(tmp_path / "rdf.yaml")
    assert summary.status == "failed"
    assert "duplicate key" in summary.first_error_text()
    assert "$.name" in summary.first_error_text()


def test_merge_keys_and_distinct_keys_are_fine() -> None:
    data = parse("base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\nlist: [{x: 1}, {x: 1}]\n")
    assert data["derived"] == {"x": 1, "y": 3}  # a merged key may be overridden
    assert data["list"] == [{"x": 1}, {"x": 1}]


def test_yaml_file_through_read_description(tmp_path: Path) -> None:
    path = tmp_path / "rdf.yaml"
    path.write_text("name: x\ntags: [a]\ntags: [b]\n")
    with pytest.raises(SourceError, match=r"duplicate key 'tags' at \$\.tags"):
        read_description(path)


_KEYS = st.sampled_from(["a", "b", "c"])
_TREE = st.recursive(
    st.integers(0, 9),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=80, deadline=None)
@given(_TREE)
def test_mappings_without_duplicates_round_trip(value: object) -> None:
    import yaml

    text = yaml.safe_dump({"v": value})
    assert parse(text) == {"v": value}
