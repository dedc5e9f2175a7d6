"""Error locations: built as a Loc, written by loc_to_path only."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bioimageio_core.errors import (
    BioimageioError,
    HashMismatchError,
    Loc,
    PluginError,
    RemoteCodeError,
    loc_to_path,
)
from bioimageio_core.spec.issues import Issue

FIELD = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True)
LOCS = st.lists(st.one_of(FIELD, st.integers(0, 99)), max_size=6).map(tuple)


def test_a_loc_is_written_as_a_json_path() -> None:
    assert loc_to_path(("inputs", 0, "axes", 2, "size")) == "$.inputs[0].axes[2].size"
    assert loc_to_path(()) == "$"


@given(loc=LOCS)
def test_errors_and_issues_write_a_loc_the_same_way(loc: Loc) -> None:
    path = loc_to_path(loc)
    assert path.startswith("$")
    assert path.count("[") == sum(isinstance(p, int) for p in loc)
    assert path.count(".") == sum(isinstance(p, str) for p in loc)
    for error in (
        BioimageioError("m", loc=loc),
        PluginError("m", loc=loc),
        HashMismatchError("f", "a", "b", loc=loc),
        RemoteCodeError("code", "https://x.org", loc=loc),
    ):
        assert error.loc == path == Issue(loc, "m").path
        assert f"(at {path})" in str(error)


def test_a_text_location_is_kept_as_given() -> None:
    """Locations that are no field (or were written before, by an error raised again) stay."""
    assert BioimageioError("m", loc="step 0 of 'raw'").loc == "step 0 of 'raw'"
    first = PluginError("m", loc=("weights", "onnx", "source"))
    again = PluginError("wrapped", loc=first.loc)
    assert again.loc == "$.weights.onnx.source"
    assert BioimageioError("m").loc is None and "(at" not in str(BioimageioError("m"))
