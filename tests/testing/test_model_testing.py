"""test_model on small models run by the test weight formats (numpy_conv, toy_scale)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from model_testing_helpers import KERNEL, MakeModel, expected_conv

from bioimageio_core import testing
from bioimageio_core.summary import ValidationDetail, ValidationSummary
from bioimageio_core.testing import runner

UNREACHABLE = "http://127.0.0.1:9/unreachable/weights.onnx"


def _tests(summary: ValidationSummary) -> list[ValidationDetail]:
    return [d for d in summary.details if d.kind == "test"]


def _by_prefix(summary: ValidationSummary, prefix: str) -> list[ValidationDetail]:
    return [d for d in summary.details if d.name.startswith(prefix)]


def _test_input(path: Path) -> Any:
    return np.load(path.parent / "test_input.npy")


def test_passing_model(make_model: MakeModel) -> None:
    path = make_model(size=24)
    summary = testing.test_model(path)
    assert summary.status == "passed", summary.format_text()
    (reproduce,) = _by_prefix(summary, "reproduce test output 'out' with numpy_conv weights")
    assert reproduce.status == "passed"
    assert "0 of 576 elements mismatched" in reproduce.name
    assert re.search(r"max abs error [0-9.e+-]+, max rel error", reproduce.name)
    # parameterized sizes: min 16 + n * 8 for n = 0, 1, 2, with batch sizes 1 and 2
    sizes = _by_prefix(summary, "run numpy_conv weights with input sizes")
    found = {
        (int(m[1]), int(m[2])) for d in sizes if (m := re.search(r"batch=(\d+) .*y=(\d+)", d.name))
    }
    assert found == {(b, 16 + n * 8) for b in (1, 2) for n in (0, 1, 2)}
    assert all(d.status == "passed" for d in sizes)


def test_failing_reproduction_reports_numbers_and_saves_output(
    make_model: MakeModel, tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, size=(1, 1, 24, 24)).astype(np.float32)
    wrong = expected_conv(x)
    wrong[0, 0, 5, 7] += 0.5
    wrong[0, 0, 20, 1] -= 0.25
    path = make_model(size=24, seed=3, output=wrong)
    save = tmp_path / "failing"
    summary = testing.test_model(path, save_failing_outputs=save)
    assert summary.status == "valid-format"
    (detail,) = _by_prefix(summary, "reproduce test output 'out'")
    assert detail.status == "failed"
    (error,) = detail.errors
    assert error.loc == ("outputs", 0, "test_tensor")
    assert "2 of 576 elements mismatched (3472 per million, 100 allowed)" in error.msg
    assert "max abs error 0.5" in error.msg
    worst = error.msg.index("(batch=0, channel=0, y=5, x=7)")
    assert worst < error.msg.index("(batch=0, channel=0, y=20, x=1)")
    saved = save / "numpy_conv" / "out.npy"
    assert str(saved) in error.msg
    np.testing.assert_allclose(np.load(saved), expected_conv(x), atol=1e-6)


@pytest.mark.parametrize(("n_bad", "passes"), [(1, True), (2, False)])
def test_mismatches_within_the_allowance_are_warnings(
    make_model: MakeModel, n_bad: int, passes: bool
) -> None:
    # 32 x 32 = 1024 elements: one mismatch is 977 per million (<= 1000), two are 1953
    x = np.random.default_rng(0).uniform(0, 1, size=(1, 1, 32, 32)).astype(np.float32)
    out = expected_conv(x)
    out.reshape(-1)[:n_bad] += 1.0
    config = {
        "bioimageio": {"reproducibility_tolerance": [{"mismatched_elements_per_million": 1000}]}
    }
    summary = testing.test_model(make_model(size=32, output=out, config=config))
    (detail,) = _by_prefix(summary, "reproduce test output 'out'")
    if passes:
        assert summary.status == "passed"
        assert detail.status == "passed" and not detail.errors
        (warning,) = detail.warnings
        assert "within tolerance" in warning.msg and "1 of 1024 elements mismatched" in warning.msg
    else:
        assert summary.status == "valid-format"
        assert (
            "2 of 1024 elements mismatched (1953 per million, 1000 allowed)" in detail.errors[0].msg
        )


def test_legacy_test_kwargs_loosen_the_tolerance(make_model: MakeModel) -> None:
    x = np.random.default_rng(0).uniform(0, 1, size=(1, 1, 24, 24)).astype(np.float32)
    shifted = expected_conv(x) + np.float32(0.005)
    strict = testing.test_model(make_model("strict", output=shifted))
    assert strict.status == "valid-format"
    config = {"bioimageio": {"test_kwargs": {"numpy_conv": {"absolute_tolerance": 0.01}}}}
    loose = testing.test_model(make_model("loose", output=shifted, config=config))
    assert loose.status == "passed", loose.format_text()


def test_formats_without_plugin_are_skipped_with_install_hint(make_model: MakeModel) -> None:
    # the onnx weights point at an unreachable URL: never fetched, the rest still tests
    weights = {
        "numpy_conv": {"source": "weights.npz"},
        "onnx": {"source": UNREACHABLE, "opset_version": 15, "parent": "numpy_conv"},
    }
    summary = testing.test_model(make_model(weights=weights))
    assert summary.status == "passed", summary.format_text()
    (skipped,) = _by_prefix(summary, "onnx weights: skipped")
    assert skipped.status == "passed"
    assert "pip install bioimageio-run-onnx" in skipped.warnings[0].msg
    assert not any("onnx" in d.name for d in _tests(summary) if d.status == "failed")


def test_no_runnable_format_says_so(make_model: MakeModel) -> None:
    weights = {"onnx": {"source": UNREACHABLE, "opset_version": 15}}
    summary = testing.test_model(make_model(weights=weights))
    assert summary.status == "valid-format"
    (detail,) = _tests(summary)
    assert detail.status == "failed"
    assert "no weight format can run here" in detail.errors[0].msg
    assert "pip install bioimageio-run-onnx" in detail.errors[0].msg


def test_chosen_format_that_cannot_run_fails(make_model: MakeModel) -> None:
    weights = {
        "numpy_conv": {"source": "weights.npz"},
        "onnx": {"source": UNREACHABLE, "opset_version": 15, "parent": "numpy_conv"},
    }
    summary = testing.test_model(make_model(weights=weights), weights_format="onnx")
    assert summary.status == "valid-format"
    (detail,) = _tests(summary)
    assert detail.name == "test onnx weights" and detail.status == "failed"
    assert "pip install bioimageio-run-onnx" in detail.errors[0].msg
    absent = testing.test_model(make_model("absent"), weights_format="torchscript")
    assert "has no torchscript weights" in _tests(absent)[0].errors[0].msg


def _two_formats(make_model: MakeModel) -> Path:
    path = make_model(
        weights={
            "numpy_conv": {"source": "weights.npz"},
            # toy_scale multiplies by 2: it cannot reproduce the convolution's test output
            "toy_scale": {"source": "weights.npz", "factor": 2.0},
        }
    )
    return path


def test_every_runnable_format_is_tested(make_model: MakeModel) -> None:
    summary = testing.test_model(_two_formats(make_model))
    assert summary.status == "valid-format"
    conv = _by_prefix(summary, "reproduce test output 'out' with numpy_conv")
    toy = _by_prefix(summary, "reproduce test output 'out' with toy_scale")
    assert [d.status for d in conv] == ["passed"]
    assert [d.status for d in toy] == ["failed"]
    # the size checks of both formats ran after their reproduction
    assert len(_by_prefix(summary, "run toy_scale weights")) == 6
    only = testing.test_model(_two_formats(make_model), weights_format="numpy_conv")
    assert only.status == "passed"
    assert not [d for d in only.details if "toy_scale" in d.name]


def test_stop_early(make_model: MakeModel) -> None:
    path = make_model(
        weights={
            "toy_scale": {"source": "weights.npz", "factor": 2.0},
            "numpy_conv": {"source": "weights.npz", "parent": "toy_scale"},
        }
    )
    full = testing.test_model(path)
    early = testing.test_model(path, stop_early=True)
    assert _tests(early)[-1].status == "failed"
    assert len(_tests(early)) < len(_tests(full))
    assert not [d for d in early.details if "numpy_conv" in d.name]


def test_missing_weights_file_fails_only_that_format(make_model: MakeModel) -> None:
    path = make_model(
        weights={
            "numpy_conv": {"source": "weights.npz"},
            "toy_scale": {"source": "missing.bin", "factor": 1.0},
        }
    )
    summary = testing.test_model(path)
    (toy,) = _by_prefix(summary, "reproduce test outputs with toy_scale")
    assert toy.status == "failed"
    assert "missing.bin" in toy.errors[0].msg
    assert all(d.status == "passed" for d in _tests(summary) if "numpy_conv" in d.name)


def test_missing_test_tensor_is_a_format_failure(make_model: MakeModel) -> None:
    path = make_model()
    (path.parent / "test_output.npy").unlink()
    summary = testing.test_model(path)
    assert summary.status == "failed"
    (io,) = _by_prefix(summary, "io checks")
    assert io.errors[0].loc == ("outputs", 0, "test_tensor")
    assert not _tests(summary)


def test_wrong_output_size_fails_the_size_check(make_model: MakeModel) -> None:
    # the description claims a fixed output of 24 x 24 while the model keeps the input size
    path = make_model(size=24, out_size=24)
    summary = testing.test_model(path)
    assert _by_prefix(summary, "reproduce test output 'out'")[0].status == "passed"
    failed = [d for d in _by_prefix(summary, "run numpy_conv weights") if d.status == "failed"]
    assert failed, summary.format_text()
    # the pipeline notices first: the 16 x 16 output does not fit the declared 24 x 24
    assert all("expected 24" in e.msg for d in failed for e in d.errors)
    assert len(failed) == 4  # sizes 16 and 32, batch 1 and 2
    assert summary.status == "valid-format"


def test_invalid_description_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "rdf.yaml"
    path.write_text("format_version: 0.5.4\ntype: model\nname: broken\n")
    summary = testing.test_model(path)
    assert summary.status == "failed"
    assert not _tests(summary)


def test_test_description_accepts_a_loaded_model(make_model: MakeModel) -> None:
    from bioimageio_core.loading import load_description

    descr = load_description(make_model(), perform_io_checks=False)
    summary = testing.test_description(descr)
    assert summary.status == "passed"
    assert KERNEL.shape == (3, 3)


def test_v0_4_model_allows_no_mismatch_and_skips_size_checks(tmp_path: Path) -> None:
    from model_testing_helpers import write_v04_model

    x = np.random.default_rng(0).uniform(0, 1, size=(1, 1, 24, 24)).astype(np.float32)
    good = testing.test_model(write_v04_model(tmp_path / "good"))
    assert good.status == "passed", good.format_text()
    assert good.format_version == "0.4.10"
    assert not _by_prefix(good, "run numpy_conv weights")  # as the reference: 0.5 only
    one_off = expected_conv(x)
    one_off[0, 0, 3, 4] += 0.1
    bad = testing.test_model(write_v04_model(tmp_path / "bad", output=one_off))
    (detail,) = _by_prefix(bad, "reproduce test output 'out'")
    assert "1 of 576 elements mismatched (1736 per million, 0 allowed)" in detail.errors[0].msg
    assert "(batch=0, channel=0, y=3, x=4)" in detail.errors[0].msg
    config = {"bioimageio": {"test_kwargs": {"numpy_conv": {"absolute_tolerance": 0.2}}}}
    loose = testing.test_model(write_v04_model(tmp_path / "loose", output=one_off, config=config))
    assert loose.status == "passed", loose.format_text()


def test_other_resource_types(tmp_path: Path) -> None:
    path = tmp_path / "rdf.yaml"
    path.write_text(
        "format_version: 0.3.0\ntype: dataset\nname: some data\ndescription: images\n"
        "authors: [{name: A}]\ncite: [{text: t, doi: 10.1234/x}]\nlicense: MIT\n"
        "source: data.zip\n"
    )
    (tmp_path / "data.zip").write_bytes(b"")
    described = testing.test_description(path)
    assert described.status == "passed", described.format_text()
    (checked,) = _tests(described)
    assert checked.name == "test the dataset" and "nothing to run" in checked.note
    assert described.headline() == (
        "OK: some data passed: a valid dataset description; referenced files checked: "
        "1 source: found"
    )
    (tmp_path / "data.zip").unlink()
    missing = testing.test_description(path)
    assert missing.status == "failed"
    assert "file not found: data.zip" in missing.first_error_text()
    (tmp_path / "data.zip").write_bytes(b"")
    as_model = testing.test_model(path)
    (detail,) = _tests(as_model)
    assert detail.status == "failed" and "expected a model, got a dataset" in detail.errors[0].msg


def test_malformed_test_kwargs_are_reported_not_raised(make_model: MakeModel) -> None:
    config = {"bioimageio": {"test_kwargs": {"numpy_conv": {"absolute_tolerance": "loose"}}}}
    summary = testing.test_model(make_model(config=config))
    assert summary.status == "valid-format"
    _, error = summary.errors[-1]
    assert error.loc == ("config", "bioimageio", "test_kwargs", "numpy_conv")
    assert "absolute_tolerance must be a number (got 'loose')" in error.msg


def test_unexpected_errors_become_a_failed_detail(
    make_model: MakeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(runner, "enable_determinism", broken)
    summary = testing.test_model(make_model())
    assert summary.status == "valid-format"
    assert "internal error while testing: ZeroDivisionError: boom" in summary.errors[-1][1].msg


def test_sizes_too_large_for_memory_are_reported_not_an_internal_error(
    make_model: MakeModel,
) -> None:
    from bioimageio_core.spec.axes import MAX_AXIS_SIZE

    # each axis within the per-axis limit, together 4 TiB: this model cannot run anywhere
    summary = testing.test_model(make_model(y={"min": MAX_AXIS_SIZE, "step": 8}))
    assert summary.status == "valid-format"
    text = summary.format_text()
    assert "internal error" not in text and "please report" not in text
    assert "not enough memory" in text
