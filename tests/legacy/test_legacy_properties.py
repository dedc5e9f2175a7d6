"""Property tests: no exception on mutated real descriptions; converted sizes keep 0.4's meaning."""

from __future__ import annotations

import copy
import math
import pickle
from typing import Any

import yaml
from _legacy_data import CORPUS, MODEL_V0_4
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import key_paths, parent_at

from bioimageio_core.spec.issues import Issue
from bioimageio_core.spec.legacy import convert_model_to_v0_5, normalize_raw
from bioimageio_core.spec.legacy._common import IssueLog
from bioimageio_core.spec.legacy.model import convert
from bioimageio_core.spec.legacy.normalize import normalize_raw as normalize_unguarded

# a few real 0.3/0.4 files with different features (fixed/parameterized/implicit shapes, halo,
# TF and torch weights, fixed normalization, 0.3 root-level fields)
_REAL = [
    "bioimage-io__spec-bioimage-io/example_descriptions__models__unet2d_nuclei_broad__v0_4_9.bioimageio.yaml",
    "bioimage-io__spec-bioimage-io/example_descriptions__models__stardist_example_model__v0_4.bioimageio.yaml",
    "bioimage-io__spec-bioimage-io/example_specs__models__unet2d_nuclei_broad__rdf_v0_3_0.yaml",
    "bioimage-io__collection-bioimage-io/fiji__N2VSEMDemo__latest.yaml",
    "bioimage-io__collection-bioimage-io/zenodo.7274275__8123818__joyful-deer.yaml",
    "deepimagej__models/2du-net_zerocostdl4mic__model.yaml",
]


def _load_seeds() -> list[dict[str, Any]]:
    seeds = [copy.deepcopy(MODEL_V0_4)]
    for name in _REAL:
        path = CORPUS / name
        if path.exists():
            seeds.append(yaml.safe_load(path.read_text(encoding="utf-8")))
    return seeds


SEEDS = _load_seeds()

_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 600),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["-inf", "inf", "bcyx", "b", "per_dataset", "fixed", "a.b:C", "x.npy", "1e-6"]),
)
_value = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    data = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        paths = key_paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = parent_at(data, path)
        key = path[-1]
        op = draw(st.sampled_from(["delete", "replace", "wrap", "stringify"]))
        if op == "delete":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(_value)
        elif op == "wrap":
            parent[key] = [parent[key]]
        else:
            parent[key] = str(parent[key])
    return data


def _check_issues(issues: list[Issue]) -> None:
    for issue in issues:
        assert isinstance(issue, Issue)
        assert issue.severity in ("error", "warning")
        assert all(isinstance(part, str | int) for part in issue.loc)
        assert issue.msg


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutations_never_raise(raw: dict[str, Any]) -> None:
    frozen = pickle.dumps(raw)
    data, issues = normalize_unguarded(raw)  # the unguarded functions: a bug would raise here
    assert isinstance(data, dict)
    _check_issues(issues)
    log = IssueLog()
    converted = convert(data, log)
    assert isinstance(converted, dict)
    _check_issues(log.issues)
    assert pickle.dumps(raw) == frozen  # the input is never modified
    # the public functions agree with the unguarded ones
    assert convert_model_to_v0_5(data)[1] == log.issues
    assert normalize_raw(raw)[1] == issues


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _value, max_size=5), _value)
def test_arbitrary_data_never_raises(raw: dict[str, Any], tensors: Any) -> None:
    for candidate in (raw, {**raw, "format_version": "0.4.0", "inputs": tensors}):
        data, issues = normalize_unguarded(candidate)
        _check_issues(issues)
        log = IssueLog()
        convert(data, log)
        _check_issues(log.issues)


def _size_v0_5(axis: dict[str, Any], ref_size: int) -> int:
    """0.5 meaning of a SizeReference: int(ref_size * ref_scale / scale + offset), ref_scale 1."""
    size = axis["size"]
    if isinstance(size, int):
        return size
    return int(ref_size * 1.0 / axis.get("scale", 1.0) + size.get("offset", 0))


@settings(max_examples=120, deadline=None)
@given(
    st.integers(1, 64),
    st.integers(0, 32),
    st.sampled_from([0.25, 0.5, 1.0, 2.0, 3.0, 4.0]),
    st.integers(-8, 8),
    st.integers(0, 4),
)
def test_implicit_sizes_keep_their_meaning(
    minimum: int, step: int, scale: float, twice_offset: int, halo: int
) -> None:
    raw = copy.deepcopy(MODEL_V0_4)
    raw["inputs"][0]["shape"] = {"min": [1, 1, minimum, 64], "step": [0, 0, step, 16]}
    raw["inputs"][0]["preprocessing"] = []
    raw["outputs"][0]["halo"] = [0, 0, halo, 0]
    raw["outputs"][0]["shape"] = {
        "reference_tensor": "raw",
        "scale": [1.0, 0.0, scale, 1.0],
        "offset": [0.0, 0.5, twice_offset / 2, 0.0],
    }
    data, issues = convert_model_to_v0_5(raw)
    errors = [i for i in issues if i.severity == "error"]

    def size_v0_4(n: int) -> float:
        return (minimum + n * step) * scale + twice_offset

    whole = all(size_v0_4(n) == int(size_v0_4(n)) for n in range(4))
    valid = whole and size_v0_4(0) - 2 * halo >= 1 and float(halo / scale).is_integer()
    assert (errors == []) == valid, errors
    if not valid:
        assert all(e.loc[:2] == ("outputs", 0) for e in errors)
        return
    y = data["outputs"][0]["axes"][2]
    assert y.get("halo", 0) == halo
    for n in range(4):
        assert _size_v0_5(y, minimum + n * step) == size_v0_4(n)


_BOUND_TEXT = {"inf": math.inf, "-inf": -math.inf, ".inf": math.inf, "-.inf": -math.inf}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.sampled_from(["inf", "-inf", ".inf", "-.inf", "1.5", "0", None, 2, -1.0]),
        min_size=2,
        max_size=2,
    )
)
def test_data_range_bounds(bounds: list[Any]) -> None:
    """Bounds as written -> 0.5 range: text parsed, null/infinite mean unbounded (None)."""
    expected: list[float | None] = []
    for k, bound in enumerate(bounds):
        value = (
            (-math.inf, math.inf)[k]
            if bound is None
            else _BOUND_TEXT.get(bound, None)
            if isinstance(bound, str) and bound in _BOUND_TEXT
            else float(bound)
        )
        expected.append(value if math.isfinite(value) else None)
    lo = -math.inf if expected[0] is None else expected[0]
    hi = math.inf if expected[1] is None else expected[1]
    raw = copy.deepcopy(MODEL_V0_4)
    raw["inputs"][0]["data_range"] = bounds
    data, _ = normalize_raw(raw)
    converted, issues = convert_model_to_v0_5(data)
    errors = [i.loc for i in issues if i.severity == "error"]
    if lo > hi:
        assert errors == [("inputs", 0, "data_range")]
    else:
        assert errors == []
        assert converted["inputs"][0]["data"]["range"] == expected
