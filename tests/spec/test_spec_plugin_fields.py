"""Field helpers for plugin-defined descriptor classes: ``version_field``."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from spec_examples import minimal_model

from bioimageio_core.spec import (
    SpecExtensions,
    TorchscriptWeightsDescr,
    WeightsEntryDescrBase,
    build_description,
    dump_description,
    version_field,
)
from bioimageio_core.spec.json_schema import json_schema


@attrs.frozen(kw_only=True)
class MyWeightsDescr(WeightsEntryDescrBase):
    my_framework_version: str = version_field(min_major=2)
    exporter_version: str | None = version_field(default=None)


EXT = SpecExtensions(weight_formats={"my_format": MyWeightsDescr})


def _with_entry(**entry: object) -> dict[str, object]:
    raw = minimal_model()
    raw["weights"]["my_format"] = {"source": "w.bin", **entry}  # type: ignore[index]
    return raw


def test_a_version_parses_like_the_builtin_version_fields() -> None:
    result = build_description(_with_entry(my_framework_version="2.1.0"), extensions=EXT)
    assert result.descr is not None, result.issues
    entry = result.descr.weights["my_format"]  # type: ignore[union-attr]
    assert entry == MyWeightsDescr(source="w.bin", my_framework_version="2.1.0")
    assert dump_description(result.descr)["weights"]["my_format"] == {
        "source": "w.bin",
        "my_framework_version": "2.1.0",
    }


def test_a_number_is_read_as_text_with_a_warning_at_the_field() -> None:
    result = build_description(
        _with_entry(my_framework_version=2.10, exporter_version=1), extensions=EXT
    )
    assert result.descr is not None, result.issues
    entry = result.descr.weights["my_format"]  # type: ignore[union-attr]
    assert (entry.my_framework_version, entry.exporter_version) == ("2.1", "1")
    warned = {i.loc for i in result.warnings if "quote it" in i.msg}
    assert warned == {
        ("weights", "my_format", "my_framework_version"),
        ("weights", "my_format", "exporter_version"),
    }


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({}, "'my_framework_version' is required"),
        ({"my_framework_version": "1.9"}, "a version >= 2"),
        ({"my_framework_version": "two"}, "a version such as"),
        ({"my_framework_version": ["2"]}, "must be"),
    ],
)
def test_errors_name_the_field(entry: dict[str, object], message: str) -> None:
    result = build_description(_with_entry(**entry), extensions=EXT)
    assert result.descr is None
    assert any(message in i.msg and i.loc[:2] == ("weights", "my_format") for i in result.errors), (
        result.errors
    )


@given(st.integers(2, 99), st.integers(0, 99), st.integers(0, 99))
def test_any_release_from_the_minimum_major_version_is_accepted(
    major: int, minor: int, patch: int
) -> None:
    version = f"{major}.{minor}.{patch}"
    result = build_description(_with_entry(my_framework_version=version), extensions=EXT)
    assert result.descr is not None, result.issues


def test_json_schema_is_that_of_the_builtin_version_fields() -> None:
    mine = json_schema(MyWeightsDescr)["properties"]["my_framework_version"]
    builtin = json_schema(TorchscriptWeightsDescr)["properties"]["pytorch_version"]
    assert mine == builtin and {"type": "string"} in mine["anyOf"]
