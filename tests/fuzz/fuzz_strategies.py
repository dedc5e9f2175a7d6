"""Mutations of valid descriptions: wrong types, missing and extra keys, nesting, huge numbers,
strings where numbers belong, unicode and file paths that point anywhere."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

Path_ = tuple[str | int, ...]

FIELD_NAMES = (
    "id", "type", "axes", "size", "min", "max", "step", "halo", "offset", "scale", "tensor_id",
    "axis_id", "channel_names", "data", "range", "unit", "values", "preprocessing",
    "postprocessing", "kwargs", "source", "sha256", "test_tensor", "sample_tensor", "weights",
    "parent", "architecture", "callable", "import_from", "format_version", "inputs", "outputs",
    "optional", "concatenable", "name", "description", "authors", "cite", "license",
    "documentation", "covers", "attachments", "config", "bioimageio", "reproducibility_tolerance",
    "mode", "axis", "threshold", "min_percentile", "max_percentile", "eps", "gain", "mean", "std",
    "reference_tensor", "shape", "data_type", "data_range", "test_inputs", "test_outputs",
    "run_mode", "dtype", "external_data", "opset_version", "pytorch_version", "batch",
    "tensorflow_version", "training_data", "icon", "git_repo", "version", "uploader",
)
"""Keys that descriptions use: extra keys drawn from these hit real code paths."""

PATHS = (
    "../../../../etc/passwd",
    "/etc/hostname",
    "C:\\Windows\\win.ini",
    "\\\\server\\share\\x.npy",
    "file:///etc/passwd",
    "http://127.0.0.1:9/x.npy",
    "https://127.0.0.1:9/rdf.yaml",
    "weights.npz",
    "test_input.npy",
    "README.md",
    "rdf.yaml",
    ".",
    "..",
    "~/x.npy",
    "dir/../../x.npy",
    "x.npz:arr_0",
    "missing.npy",
    "a" * 300 + ".npy",
    "",
)
"""File references that escape the folder, do not exist, name folders or are malformed."""

HUGE = (
    10**12,
    -(10**12),
    2**63,
    -(2**63) - 1,
    10**30,
    1e308,
    -1e308,
    math.inf,
    -math.inf,
    math.nan,
    -0.0,
    5e-324,
)

_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=20
)
_SMALL_INTS = st.integers(-3, 300)
"""Sizes a model could have; larger ones come from HUGE (so no example allocates gigabytes)."""

scalars = st.one_of(
    st.none(),
    st.booleans(),
    _SMALL_INTS,
    st.sampled_from(HUGE),
    st.floats(-1e3, 1e3, allow_nan=False),
    _TEXT,
    st.sampled_from(PATHS),
    st.sampled_from(FIELD_NAMES),
    st.sampled_from(["", " ", "0", "1e309", "-1", "nan", "null", "true", "{}", "[]", "0.5.4",
                     "0.4.10", "model", "float32", "uint8", "bool", "space", "channel"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(FIELD_NAMES) | _TEXT, inner, max_size=4),
    max_leaves=8,
)

PLAUSIBLE = (
    "x", "y", "z", "raw", "out", "batch", "channel", "time", "index", "space", "c0", "c1",
    "float32", "float64", "uint8", "int64", "bool", "per_sample", "per_dataset", "xy", "bcyx",
    0, 1, 2, 3, -1, 7, 16, 64, 0.0, 0.5, 1.0, 99.9, True, False, None,
    [], {}, ["y", "x"], ["x"], ["channel"], ["batch"], [0, 1], [1, 1, 16, 16],
    {"tensor_id": "raw", "axis_id": "y"}, {"tensor_id": "out", "axis_id": "x"},
    {"min": 1, "step": 0}, {"min": 0, "step": 1}, {"min": 16, "max": 8}, {"id": "sigmoid"},
)
"""Values of the right kind in the wrong place (ids of other tensors and axes, edge sizes):
mutations with these keep a description loadable more often, so predict runs on them."""

OPERATIONS = (
    ("plausible", 30),
    ("delete", 14),
    ("retype", 10),
    ("huge", 10),
    ("path", 8),
    ("add", 10),
    ("replace", 8),
    ("duplicate", 5),
    ("nest", 5),
)
"""Mutations and their weights."""
_WEIGHTED = tuple(name for name, weight in OPERATIONS for _ in range(weight))
KEEP_LOADABLE = ("number",) * 6 + ("plausible",) * 3 + ("huge", "retype", "delete")
"""Mutations that leave a description loadable more often (for prediction)."""

EDGE_NUMBERS = (
    0, 1, -1, 2, 3, 7, 8, 15, 17, 23, 24, 25, 64, 100, 0.0, 0.5, -0.5, 1.5, 99.99, 100.0,
    1e-30, -1e-30, 1e30, math.nan, math.inf, -math.inf, 10**12,
)
"""Numbers at and around the edges of what sizes, halos and processing parameters allow."""


def nodes(data: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every node of nested dicts/lists with its path (the root first)."""
    yield path, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from nodes(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from nodes(value, (*path, i))


def _set(root: Any, path: Path_, value: Any) -> Any:
    if not path:
        return value
    parent = root
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return root


def _delete(root: Any, path: Path_) -> Any:
    parent = root
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return root


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _retype(value: Any) -> Any:
    """The same information in another type (a number as text, a mapping as a list, …)."""
    if isinstance(value, bool):
        return "yes" if value else 0
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            return [value]
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return "None"


@st.composite
def mutated(
    draw: st.DrawFn,
    base: dict[str, Any],
    operations: tuple[str, ...] = _WEIGHTED,
    within: tuple[str, ...] = (),
) -> Any:
    """``base`` changed by one to three mutations at places picked uniformly (the top level
    itself rarely); ``within``: only below these top-level fields."""
    rnd = draw(st.randoms(use_true_random=True))
    data: Any = copy.deepcopy(base)
    for _ in range(rnd.choice((1, 1, 1, 2, 3))):
        candidates = list(nodes(data))
        if within and isinstance(data, dict):
            candidates = [c for c in candidates if c[0] and c[0][0] in within] or candidates
        elif rnd.random() < 0.02:
            candidates = candidates[:1]
        else:
            candidates = candidates[1:] or candidates
        operation = rnd.choice(operations)
        if operation == "number":
            numbers = [c for c in candidates if _is_number(c[1])]
            candidates = numbers or candidates
        path, value = rnd.choice(candidates)
        if operation == "delete" and path:
            data = _delete(data, path)
        elif operation == "add" and isinstance(value, dict):
            value[draw(st.sampled_from(FIELD_NAMES) | _TEXT)] = draw(values)
        elif operation == "add" and isinstance(value, list):
            value.insert(rnd.randint(0, len(value)), draw(values))
        elif operation == "retype":
            data = _set(data, path, _retype(value))
        elif operation == "duplicate" and isinstance(value, list) and value:
            value.append(copy.deepcopy(rnd.choice(value)))
        elif operation == "nest":
            nested = copy.deepcopy(value)
            for _ in range(rnd.randint(1, 60)):
                nested = [nested] if rnd.random() < 0.5 else {"x": nested}
            data = _set(data, path, nested)
        elif operation == "huge":
            data = _set(data, path, rnd.choice(HUGE))
        elif operation == "path":
            data = _set(data, path, rnd.choice(PATHS))
        elif operation == "number":
            data = _set(data, path, rnd.choice(EDGE_NUMBERS))
        elif operation == "plausible":
            data = _set(data, path, copy.deepcopy(rnd.choice(PLAUSIBLE)))
        else:
            data = _set(data, path, draw(values))
    return data


def deeply_nested_yaml(depth: int, flow: bool) -> str:
    """A description whose ``config`` is nested ``depth`` levels deep."""
    if flow:
        return "type: model\nconfig: " + "[" * depth + "]" * depth + "\n"
    return "type: model\nconfig:\n  " + "- " * depth + "x\n"  # block sequences on one line


yaml_texts = st.one_of(
    _TEXT,
    # around and beyond the parser's recursion limit (about 1000 levels)
    st.builds(deeply_nested_yaml, st.sampled_from([5, 100, 450, 900, 1500]), st.booleans()),
    st.sampled_from(
        [
            "",
            "---\n...\n",
            "- a\n- b\n",
            "type: model\ntype: dataset\n",
            "a: &a [*a]\n",
            "a: &a [x]\nb: [*a, *a, *a]\n",
            "format_version: !!python/object/apply:os.system ['true']\n",
            "name: \x00\n",
            "\ufeffformat_version: 0.5.4\n",
            "format_version: 0.5.4\ntype: model\ninputs: {{{\n",
            "type: model\nformat_version: 1e999999\n",
            "? [a, b]\n: c\n",
            "type: model\ninputs: !!binary aGVsbG8=\n",
            "type: model\nname: " + "x" * 100_000 + "\n",
        ]
    ),
)
"""Raw YAML text: broken syntax, deep nesting, duplicate keys, aliases, tags, odd bytes."""
