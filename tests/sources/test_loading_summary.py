"""ValidationSummary: status rules and the text, JSON and Markdown renderings."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bioimageio_core.errors import ValidationError
from bioimageio_core.spec.issues import Issue
from bioimageio_core.summary import ValidationDetail, ValidationSummary

SIZE_ERROR = Issue(("inputs", 0, "axes", 2, "size"), "must be > 0 (got 0)")
FIELD_WARNING = Issue(("extra_field",), "unknown field 'extra_field' is ignored", "warning")


def make_summary(*details: ValidationDetail) -> ValidationSummary:
    return ValidationSummary(
        name="UNet | 2D",
        source="/models/rdf.yaml",
        type="model",
        format_version="0.4.9",
        converted_format_version="0.5.4",
        details=list(details),
    )


def format_detail(*issues: Issue) -> ValidationDetail:
    return ValidationDetail.from_issues("format", issues, kind="format")


def test_loading_summary_detail_from_issues_splits_by_severity() -> None:
    detail = format_detail(SIZE_ERROR, FIELD_WARNING)
    assert detail.status == "failed"
    assert detail.errors == (SIZE_ERROR,) and detail.warnings == (FIELD_WARNING,)
    assert format_detail(FIELD_WARNING).status == "passed"


def test_loading_summary_status_rules() -> None:
    summary = make_summary(format_detail(FIELD_WARNING))
    assert summary.status == "valid-format"
    summary.add_detail(ValidationDetail("test inference (onnx)", "passed"))
    assert summary.status == "passed"
    summary.add_detail(ValidationDetail("test inference (torchscript)", "failed"))
    assert summary.status == "valid-format"
    summary.add_detail(ValidationDetail("test sizes", "passed"))
    assert summary.status == "valid-format", "never flips back to passed after a failure"
    assert make_summary(format_detail(SIZE_ERROR)).status == "failed"


def test_loading_summary_headline_says_what_the_status_means() -> None:
    summary = make_summary(format_detail(FIELD_WARNING))
    assert summary.headline() == "OK: UNet | 2D is valid-format (the model itself was not tested)"
    summary.add_detail(ValidationDetail("test inference (onnx)", "passed"))
    assert summary.headline() == "OK: UNet | 2D passed"
    summary.add_detail(ValidationDetail("test inference (torchscript)", "failed"))
    assert summary.headline().startswith("FAILED: UNet | 2D is a valid description, but 1 test")
    assert summary.format_text().splitlines()[0] == summary.headline()
    assert make_summary(format_detail(SIZE_ERROR)).headline().startswith("FAILED:")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["format", "test"]), st.sampled_from(["passed", "failed"])),
        max_size=6,
    )
)
def test_loading_summary_status_matches_definition(steps: list[tuple[str, str]]) -> None:
    summary = make_summary()
    seen: list[tuple[str, str]] = []
    for kind, status in steps:
        summary.add_detail(ValidationDetail(f"{kind}-{len(seen)}", status, kind=kind))  # type: ignore[arg-type]
        seen.append((kind, status))
        format_failed = ("format", "failed") in seen
        test_statuses = [s for k, s in seen if k == "test"]
        if format_failed:
            expected = "failed"
        elif test_statuses and "failed" not in test_statuses:
            expected = "passed"
        else:
            expected = "valid-format"
        assert summary.status == expected
        assert summary.is_valid == (expected != "failed")


def test_loading_summary_first_error_text_and_validation_error() -> None:
    summary = make_summary(format_detail(FIELD_WARNING, SIZE_ERROR, Issue(("name",), "bad")))
    text = summary.first_error_text()
    assert (
        text == "/models/rdf.yaml: $.inputs[0].axes[2].size: must be > 0 (got 0) (and 1 more error)"
    )
    err = ValidationError(summary)
    assert err.summary is summary
    assert "$.inputs[0].axes[2].size" in str(err)
    assert "no errors" in make_summary(format_detail()).first_error_text()


def test_loading_summary_text() -> None:
    text = make_summary(
        format_detail(SIZE_ERROR, FIELD_WARNING), ValidationDetail("io checks", "passed")
    ).format_text()
    lines = text.splitlines()
    assert lines[0] == "FAILED: UNet | 2D is not a valid description"
    assert "0.4.9 (converted to 0.5.4)" in text
    assert "  [failed] format" in lines
    assert "      error   $.inputs[0].axes[2].size: must be > 0 (got 0)" in lines
    assert "      warning $.extra_field: unknown field 'extra_field' is ignored" in lines
    assert lines[-1].startswith("environment: python ")


def test_loading_summary_json_round_trip() -> None:
    summary = make_summary(format_detail(SIZE_ERROR, FIELD_WARNING))
    data = json.loads(summary.format_json())
    assert data["status"] == "failed"
    assert data["details"][0]["errors"][0]["path"] == "$.inputs[0].axes[2].size"
    assert data["details"][0]["errors"][0]["loc"] == ["inputs", 0, "axes", 2, "size"]
    env = {e["name"]: e["version"] for e in data["env"]}
    assert env["python"].count(".") == 2
    again = ValidationSummary.from_json(data)
    assert again.to_json() == summary.to_json()
    assert again.details == summary.details


def test_loading_summary_markdown_escapes_and_lists_findings() -> None:
    md = make_summary(format_detail(SIZE_ERROR, FIELD_WARNING)).format_md()
    assert md.startswith("# ❌ UNet \\| 2D: failed\n")
    assert "| ❌ | format | `$.inputs[0].axes[2].size` | must be > 0 (got 0) |" in md
    assert "| ⚠️ | format | `$.extra_field` |" in md
    assert "| format version | 0.4.9 (converted to 0.5.4) |" in md
    # every table row has the same number of cells as its header
    for block in md.split("\n\n"):
        rows = [r for r in block.splitlines() if r.startswith("|")]
        if rows:
            widths = {r.replace("\\|", "").count("|") for r in rows}
            assert len(widths) == 1, block


def test_loading_summary_save_picks_format(tmp_path: Path) -> None:
    summary = make_summary(format_detail())
    assert json.loads(summary.save(tmp_path / "s.json").read_text())["status"] == "valid-format"
    assert summary.save(tmp_path / "s.md").read_text().startswith("# ✔️")
    assert summary.save(tmp_path / "s.txt").read_text().startswith("OK: ")


def test_loading_dump_yaml_keeps_order_and_writes_tuples_as_lists() -> None:
    import yaml

    from bioimageio_core.loading import dump_yaml

    data = {"z": (1, 2), "a": {"b": ("x",)}, "name": "ü"}
    text = dump_yaml(data)
    assert list(yaml.safe_load(text)) == ["z", "a", "name"]
    assert yaml.safe_load(text) == {"z": [1, 2], "a": {"b": ["x"]}, "name": "ü"}


def test_loading_summary_json_has_the_reference_shape() -> None:
    summary = make_summary(
        format_detail(FIELD_WARNING),
        ValidationDetail("reproduce test output 'out' with onnx weights", "failed",
                         (Issue(("outputs", 0), "differs"),), loc=("weights", "onnx")),
    )  # fmt: skip
    data = summary.to_json()
    assert {"name", "source_name", "id", "type", "format_version", "status", "details", "env"} <= set(data)
    assert data["source_name"] == "/models/rdf.yaml" and data["status"] == "valid-format"
    for detail in data["details"]:
        assert {"name", "status", "loc", "errors", "warnings"} <= set(detail)
    failed = data["details"][1]
    assert failed["loc"] == ["weights", "onnx"]
    assert failed["errors"] == [
        {"loc": ["outputs", 0], "msg": "differs", "type": "value_error", "path": "$.outputs[0]",
         "traceback": []}
    ]  # fmt: skip
    assert data["details"][0]["warnings"][0]["severity"] == 30  # logging.WARNING, as the reference
    assert all(set(e) == {"name", "version"} for e in data["env"])
    assert ValidationSummary.from_json(json.loads(json.dumps(data))).to_json() == data


def test_loading_summary_markdown_header_says_failed_when_a_test_failed() -> None:
    summary = make_summary(format_detail(), ValidationDetail("test onnx weights", "failed"))
    assert summary.status == "valid-format"  # the reference's status word is kept
    md = summary.format_md()
    assert md.startswith("# ❌ UNet \\| 2D: failed\n")
    assert "1 test check(s) failed" in md.splitlines()[2]
    passed = make_summary(format_detail(), ValidationDetail("test onnx weights", "passed"))
    assert passed.format_md().startswith("# ✔️ UNet \\| 2D: passed\n")


def test_loading_summary_html_is_escaped(tmp_path: Path) -> None:
    from html.parser import HTMLParser

    hostile = Issue(("name",), "<script>alert('x')</script> & more", "error")
    summary = ValidationSummary(name="<b>model</b>", source="a&b.yaml", type="model")
    summary.add_detail(ValidationDetail.from_issues("format", [hostile], kind="format"))
    page = summary.save(tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script>" not in page and "<b>model</b>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in page
    assert "&lt;b&gt;model&lt;/b&gt;: failed" in page and "a&amp;b.yaml" in page

    class Tags(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.open: list[str] = []
            self.seen: set[str] = set()

        def handle_starttag(self, tag: str, attrs: object) -> None:
            self.seen.add(tag)
            if tag != "meta":
                self.open.append(tag)

        def handle_endtag(self, tag: str) -> None:
            assert self.open.pop() == tag

    tags = Tags()
    tags.feed(page)
    assert tags.open == [] and {"html", "table", "code", "h1"} <= tags.seen
    assert summary.save(tmp_path / "report.htm").read_text(encoding="utf-8") == page


def test_loading_summary_headline_of_other_types_says_what_was_checked() -> None:
    summary = ValidationSummary(name="cells", source="d/rdf.yaml", type="dataset")
    summary.add_detail(ValidationDetail("format", "passed", kind="format"))
    summary.add_detail(
        ValidationDetail("io checks", "passed", kind="format", note="1 source: HEAD request")
    )
    assert summary.headline() == (
        "OK: cells is valid-format: a valid dataset description; referenced files checked: "
        "1 source: HEAD request"
    )
    assert "not tested" not in summary.format_text()
    assert "      checked 1 source: HEAD request" in summary.format_text().splitlines()
    unchecked = ValidationSummary(name="app", source="a/rdf.yaml", type="application")
    unchecked.add_detail(ValidationDetail("format", "passed", kind="format"))
    assert unchecked.headline().endswith("a valid application description; referenced files not checked")
