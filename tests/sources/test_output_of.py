"""``inputs[i].output_of``: the upstream model must have an output named like the input.

The check reads the upstream description through a loader callback (`spec.chaining`); loading a
description runs it with or without io checks, resolving the reference against the referencing
description's folder or URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from descriptions import tiny_model_v0_4

from bioimageio_core import ValidationError, load_description, validate_format
from bioimageio_core.spec import ModelDescr, build_description
from bioimageio_core.spec.chaining import check_output_of

if TYPE_CHECKING:
    from tests.conftest import FileServer


def _axes() -> list[dict[str, Any]]:
    return [{"type": "channel", "channel_names": ["c"]}, {"type": "space", "id": "x", "size": 8}]


def model(
    name: str, inputs: list[str], outputs: list[str], output_of: str | None = None
) -> dict[str, Any]:
    def tensor(tid: str, is_input: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"id": tid, "axes": _axes()}
        if is_input and output_of is not None:
            out["output_of"] = output_of
        return out

    return {
        "format_version": "0.5.14",
        "type": "model",
        "name": name,
        "license": "MIT",
        "inputs": [tensor(t, True) for t in inputs],
        "outputs": [tensor(t, False) for t in outputs],
        "weights": {"onnx": {"source": "w.onnx", "opset_version": 17}},
    }


UPSTREAM = model("upstream model", ["raw"], ["mask", "probs"])


def _descr(raw: dict[str, Any]) -> ModelDescr:
    result = build_description(raw)
    assert isinstance(result.descr, ModelDescr), result.errors
    return result.descr


class Loader:
    """A loader callback over a dict of raw descriptions; counts the calls per reference."""

    def __init__(self, known: Mapping[str, Any]) -> None:
        self.known = known
        self.calls: list[str] = []

    def __call__(self, reference: str) -> Mapping[str, Any]:
        self.calls.append(reference)
        if reference not in self.known:
            raise LookupError(f"'{reference}' not found")
        data: Mapping[str, Any] = self.known[reference]
        return data


def test_matching_output_is_valid_and_each_reference_is_loaded_once() -> None:
    down = _descr(model("downstream model", ["mask", "probs"], ["out"], output_of="up-model"))
    loader = Loader({"up-model": UPSTREAM})
    assert check_output_of(down, loader) == []
    assert loader.calls == ["up-model"]


def test_missing_output_names_the_outputs() -> None:
    down = _descr(model("downstream model", ["labels"], ["out"], output_of="up-model"))
    (issue,) = check_output_of(down, Loader({"up-model": UPSTREAM}))
    assert issue.loc == ("inputs", 0, "output_of")
    assert "has no output 'labels' (its outputs: mask, probs)" in issue.msg


def test_unknown_reference_is_an_error_with_the_loaders_reason() -> None:
    down = _descr(model("downstream model", ["mask"], ["out"], output_of="nobody"))
    (issue,) = check_output_of(down, Loader({}))
    assert issue.loc == ("inputs", 0, "output_of")
    assert "cannot read the model 'nobody'" in issue.msg and "not found" in issue.msg


def test_invalid_or_non_model_upstream_is_an_error() -> None:
    down = _descr(model("downstream model", ["mask"], ["out"], output_of="up"))
    broken = {**UPSTREAM, "outputs": []}
    (issue,) = check_output_of(down, Loader({"up": broken}))
    assert "not a usable model description" in issue.msg and "invalid" in issue.msg
    dataset = {"format_version": "0.3.4", "type": "dataset", "name": "some data"}
    (issue,) = check_output_of(down, Loader({"up": dataset}))
    assert "its type is 'dataset'" in issue.msg


def test_upstream_in_format_0_4_is_matched_by_output_name() -> None:
    upstream_v0_4 = tiny_model_v0_4(
        name="old upstream",
        outputs=[{"name": "mask", "axes": "bcx", "data_type": "float32", "shape": [1, 1, 8]}],
    )
    down = _descr(model("downstream model", ["mask"], ["out"], output_of="old"))
    assert check_output_of(down, Loader({"old": upstream_v0_4})) == []


def test_inputs_naming_different_models() -> None:
    other = model("other upstream", ["raw"], ["edges"])
    raw = model("downstream model", ["mask", "edges"], ["out"])
    raw["inputs"][0]["output_of"] = "up"
    raw["inputs"][1]["output_of"] = "other"
    loader = Loader({"up": UPSTREAM, "other": other})
    assert check_output_of(_descr(raw), loader) == []
    raw["inputs"][1]["output_of"] = "up"
    (issue,) = check_output_of(_descr(raw), loader)
    assert issue.loc == ("inputs", 1, "output_of") and "no output 'edges'" in issue.msg


# --- through load_description: files next to the description, URLs, offline ---------------------


def _write(folder: Path, raw: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "rdf.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.parametrize("io_checks", [False, True])
def test_load_resolves_a_relative_reference_from_the_descriptions_folder(
    tmp_path: Path, io_checks: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "up", UPSTREAM)
    (tmp_path / "up" / "w.onnx").write_bytes(b"x")
    down = _write(
        tmp_path / "down", model("downstream model", ["mask"], ["out"], output_of="../up/rdf.yaml")
    )
    (tmp_path / "down" / "w.onnx").write_bytes(b"x")
    monkeypatch.chdir(tmp_path / "up")  # the reference is not resolved against the working dir
    descr = load_description(down, perform_io_checks=io_checks)
    assert isinstance(descr, ModelDescr) and descr.inputs[0].output_of == "../up/rdf.yaml"


def test_load_fails_without_io_checks_when_the_output_is_missing(tmp_path: Path) -> None:
    _write(tmp_path / "up", UPSTREAM)
    down = _write(
        tmp_path / "down", model("downstream model", ["edges"], ["out"], output_of="../up/rdf.yaml")
    )
    with pytest.raises(ValidationError, match=r"inputs\[0\]\.output_of.*no output 'edges'"):
        load_description(down, perform_io_checks=False)
    summary = validate_format(down, perform_io_checks=False)
    assert summary.status == "failed"


def test_load_from_url_resolves_against_the_url_and_fails_offline(
    http_server: FileServer,
) -> None:
    _write(http_server.root / "up", UPSTREAM)
    _write(
        http_server.root / "down",
        model("downstream model", ["probs"], ["out"], output_of="../up/rdf.yaml"),
    )
    url = http_server.url("down/rdf.yaml")
    descr = load_description(url, perform_io_checks=False)
    assert isinstance(descr, ModelDescr)
    assert http_server.count("up/rdf.yaml") == 1
    (http_server.root / "up" / "rdf.yaml").unlink()  # the upstream is gone (or we are offline)
    summary = validate_format(url, perform_io_checks=False)
    assert summary.status == "failed"
    assert "cannot read the model '../up/rdf.yaml'" in summary.first_error_text()
