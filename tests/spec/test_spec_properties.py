"""Property tests: round trips of generated valid models, and robustness against mutations."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_strategies import JUNK, model
from strategies import key_paths, parent_at

from bioimageio_core.spec import (
    ModelDescr,
    SpecValidationError,
    build_description,
    dump_description,
    structure,
    unstructure,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _kept(original: Any, out: Any, path: tuple[Any, ...] = ()) -> None:
    """Everything ``out`` has equals ``original`` at the same place (defaults may be left out)."""
    if isinstance(out, dict):
        assert isinstance(original, dict), path
        assert set(out) <= set(original), (path, set(out) - set(original))
        for key, value in out.items():
            _kept(original[key], value, (*path, key))
    elif isinstance(out, list):
        assert isinstance(original, list | tuple) and len(original) == len(out), path
        for i, (a, b) in enumerate(zip(original, out, strict=True)):
            _kept(a, b, (*path, i))
    else:
        assert out == original and type(out) in (type(original), float), (path, original, out)


@SETTINGS
@given(model())
def test_structure_unstructure_keeps_the_dict(raw: dict[str, Any]) -> None:
    descr = structure(raw, ModelDescr)
    out = unstructure(descr)
    _kept(raw, out)
    # what was left out is exactly the defaults: structuring the output gives the same descriptor
    assert structure(out, ModelDescr) == descr
    assert out == raw  # the strategy writes no default values


@SETTINGS
@given(model())
def test_generated_models_are_valid_and_dumps_round_trip(raw: dict[str, Any]) -> None:
    result = build_description(raw)
    assert result.descr is not None, [str(i) for i in result.errors]
    dumped = dump_description(result.descr)
    again = build_description(dumped)
    assert again.descr == result.descr
    assert dump_description(again.descr) == dumped


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    raw = copy.deepcopy(draw(model()))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(key_paths(raw)))
        parent = parent_at(raw, path)
        action = draw(st.sampled_from(["delete", "replace", "insert"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = draw(JUNK)
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=6))] = draw(JUNK)
        else:
            parent.insert(path[-1], draw(JUNK))
    return raw


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutations_give_a_description_or_issues(raw: dict[str, Any]) -> None:
    result = build_description(raw)
    assert not [i for i in result.issues if "internal error" in i.msg], [
        str(i) for i in result.issues
    ]
    if result.descr is None:
        assert result.errors
        for issue in result.errors:
            assert issue.msg and all(isinstance(p, str | int) for p in issue.loc)
    else:
        assert not result.errors
        dump_description(result.descr)
    try:
        structure(raw, ModelDescr)
    except SpecValidationError as e:
        assert e.issues


@settings(max_examples=40, deadline=None)
@given(JUNK)
def test_junk_never_crashes(raw: Any) -> None:
    result = build_description(raw)
    assert result.descr is None and result.errors
