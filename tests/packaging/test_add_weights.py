"""add_weights orchestration with converters of a fake plugin (numpy only)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pkg_helpers import (
    AFFINE,
    UseConverters,
    affine_converter,
    affine_verifier,
    read_yaml,
    sha256,
    snapshot,
)

from bioimageio_core.conversion import add_weights, verify_with_test_model
from bioimageio_core.errors import BioimageioError
from bioimageio_core.hookspecs import ConverterSpec
from bioimageio_core.loading import load_description


def spec(source: str, target: str, **kwargs: object) -> ConverterSpec:
    return ConverterSpec(source, target, affine_converter(target, **kwargs))  # type: ignore[arg-type]


def test_good_entry_is_added_bad_ones_are_not(
    affine_model: Path, tmp_path: Path, use_converters: UseConverters
) -> None:
    use_converters(
        spec("keras_hdf5", "onnx"),
        spec("keras_hdf5", "torchscript", scale_error=0.01),  # wrong numbers
        spec("keras_hdf5", "tensorflow_js", fail="cannot convert this layer"),
        spec("pytorch_state_dict", "tensorflow_saved_model_bundle"),  # source never present
    )
    before = snapshot(affine_model.parent)
    report = add_weights(affine_model, tmp_path / "out", verify=affine_verifier)
    out = tmp_path / "out"
    assert report.output_path == out

    (added,) = report.added
    assert (added.source_format, added.target_format) == ("keras_hdf5", "onnx")
    failed = {r.target_format: r.reason for r in report.failed}
    assert set(failed) == {"torchscript", "tensorflow_js"}
    assert failed["torchscript"].startswith("verification failed: max absolute difference")
    assert failed["tensorflow_js"] == "conversion failed: RuntimeError: cannot convert this layer"
    assert report.skipped == ()  # no source for tensorflow_saved_model_bundle, nor asked for

    # the package folder holds the model with exactly the verified new entry
    model = load_description(out, perform_io_checks=True)
    assert model.weights.available_formats == ("keras_hdf5", "onnx")
    onnx = model.weights["onnx"]
    assert onnx.parent == "keras_hdf5"
    assert onnx.source == added.file_name == "weights_onnx.onnx"
    assert onnx.sha256 == sha256(out / "weights_onnx.onnx")
    assert "converted from keras_hdf5 by affine-plugin" in onnx.comment
    assert onnx.opset_version == 17
    np.testing.assert_array_equal(np.load(out / "weights_onnx.onnx"), AFFINE)
    # no file of a failed conversion is left behind
    assert sorted(p.name for p in out.iterdir()) == [
        "affine.npy",
        "input.npy",
        "output.npy",
        "rdf.yaml",
        "weights_onnx.onnx",
    ]
    assert snapshot(affine_model.parent) == before
    assert "added: keras_hdf5 -> onnx" in report.format_text()


def test_conversions_chain_and_fall_back_to_another_source(
    affine_model: Path, tmp_path: Path, use_converters: UseConverters
) -> None:
    use_converters(
        spec("keras_hdf5", "torchscript", fail="scripting failed"),
        spec("keras_hdf5", "onnx"),
        spec("onnx", "torchscript"),
    )
    report = add_weights(affine_model, tmp_path / "out", verify=affine_verifier)
    assert [(r.source_format, r.target_format, r.status) for r in report.results] == [
        ("keras_hdf5", "torchscript", "failed"),
        ("keras_hdf5", "onnx", "added"),
        ("onnx", "torchscript", "added"),
    ]
    model = load_description(tmp_path / "out", perform_io_checks=True)
    assert model.weights["torchscript"].parent == "onnx"
    assert model.weights["torchscript"].pytorch_version == "2.13.0"


def test_source_and_target_format_select_converters(
    affine_model: Path, tmp_path: Path, use_converters: UseConverters
) -> None:
    use_converters(spec("keras_hdf5", "onnx"), spec("keras_hdf5", "torchscript"))
    report = add_weights(
        affine_model, tmp_path / "a", target_format="torchscript", verify=affine_verifier
    )
    assert [r.target_format for r in report.added] == ["torchscript"]
    assert load_description(tmp_path / "a").weights.available_formats == (
        "keras_hdf5",
        "torchscript",
    )
    # the target is now present: nothing to do
    again = add_weights(tmp_path / "a", tmp_path / "b", target_format="torchscript")
    assert [(r.status, r.reason) for r in again.results] == [
        ("skipped", "the model already has it")
    ]
    with pytest.raises(BioimageioError, match="no onnx weights") as e:
        add_weights(affine_model, tmp_path / "c", source_format="onnx")
    assert e.value.hint is not None and "keras_hdf5" in e.value.hint
    assert not (tmp_path / "c").exists()


def test_an_unreachable_target_that_was_asked_for_is_reported(
    affine_model: Path, tmp_path: Path, use_converters: UseConverters
) -> None:
    use_converters(spec("pytorch_state_dict", "tensorflow_saved_model_bundle"))
    report = add_weights(
        affine_model, tmp_path / "out", target_format="tensorflow_saved_model_bundle"
    )
    (result,) = report.results
    assert result.status == "skipped"
    assert result.reason == (
        "tensorflow_saved_model_bundle is made from pytorch_state_dict; the model has keras_hdf5"
    )
    assert str(result).startswith("skipped: tensorflow_saved_model_bundle (")


def test_no_converter_for_the_target(
    affine_model: Path, tmp_path: Path, use_converters: UseConverters
) -> None:
    use_converters(spec("keras_hdf5", "onnx"))
    report = add_weights(affine_model, tmp_path / "out", target_format="torchscript")
    (result,) = report.results
    assert result.status == "skipped"
    assert result.reason == (
        "no installed plugin converts to torchscript (installed converters: keras_hdf5->onnx)"
    )


def test_unavailable_converter_is_skipped_with_the_install_hint(
    affine_model: Path, tmp_path: Path, use_converters: UseConverters
) -> None:
    unavailable = ConverterSpec(
        "keras_hdf5",
        "onnx",
        affine_converter("onnx"),  # type: ignore[arg-type]
        is_available=lambda: "onnx is not installed",
        install_hint="pip install onnx",
    )
    use_converters(unavailable)
    report = add_weights(affine_model, tmp_path / "out", verify=affine_verifier)
    (result,) = report.results
    assert (result.status, result.reason) == ("skipped", "onnx is not installed; pip install onnx")


def test_without_verification_a_wrong_entry_is_added_and_marked(
    affine_model: Path, tmp_path: Path, use_converters: UseConverters
) -> None:
    use_converters(spec("keras_hdf5", "onnx", scale_error=0.5))
    report = add_weights(affine_model, tmp_path / "out", verify=False)
    (result,) = report.added
    assert result.reason.endswith("(not verified)")
    model = load_description(tmp_path / "out", perform_io_checks=True)
    assert affine_verifier(model, "onnx") is not None  # the numbers are indeed wrong


def test_the_verifier_sees_the_new_entry_and_a_crash_is_a_failure(
    affine_model: Path, tmp_path: Path, use_converters: UseConverters
) -> None:
    use_converters(spec("keras_hdf5", "onnx"))
    seen: list[tuple[str, ...]] = []

    def crashing(model: object, weight_format: str) -> str | None:
        seen.append((weight_format, *model.weights.available_formats))  # type: ignore[attr-defined]
        raise ValueError("test runner broke")

    report = add_weights(affine_model, tmp_path / "out", verify=crashing)
    assert seen == [("onnx", "keras_hdf5", "onnx")]
    (result,) = report.failed
    assert result.reason == "verification failed: ValueError: test runner broke"
    assert read_yaml(tmp_path / "out" / "rdf.yaml")["weights"].keys() == {"keras_hdf5"}


def test_converter_returning_no_entry_or_no_file_fails(
    affine_model: Path, tmp_path: Path, use_converters: UseConverters
) -> None:
    def forgets_the_file(m: Any, s: str, o: Path, opt: Mapping[str, Any]) -> Any:
        entry = affine_converter("torchscript")(m, s, o, opt)
        o.unlink()
        return entry

    use_converters(
        ConverterSpec("keras_hdf5", "onnx", lambda m, s, o, opt: {"source": o.name}),
        ConverterSpec("keras_hdf5", "torchscript", forgets_the_file),
    )
    report = add_weights(affine_model, tmp_path / "out", verify=affine_verifier)
    reasons = {r.target_format: r.reason for r in report.failed}
    assert reasons["onnx"] == "the converter returned dict, not a weights entry"
    out = tmp_path / "out" / "weights_torchscript.pt"
    assert reasons["torchscript"] == f"the converter wrote no file at {out}"
    assert report.added == ()


def test_converter_entry_that_does_not_validate_fails(
    affine_model: Path, tmp_path: Path, use_converters: UseConverters
) -> None:
    from bioimageio_core.spec.weights import OnnxWeightsDescr

    def convert(m: object, s: str, o: Path, opt: object) -> OnnxWeightsDescr:
        o.write_bytes(b"x")
        return OnnxWeightsDescr(source=o.name, opset_version=17, parent="tensorflow_js")

    use_converters(ConverterSpec("keras_hdf5", "onnx", convert))  # type: ignore[arg-type]
    report = add_weights(affine_model, tmp_path / "out", verify=affine_verifier)
    (result,) = report.failed
    assert result.reason.startswith("the new entry is invalid:")
    assert "parent" in result.reason
    assert not (tmp_path / "out" / "weights_onnx.onnx").exists()


def test_default_verifier_runs_model_testing_for_the_new_format(
    affine_model: Path, tmp_path: Path, use_converters: UseConverters
) -> None:
    use_converters(spec("keras_hdf5", "onnx"), spec("keras_hdf5", "torchscript", scale_error=0.01))
    report = add_weights(affine_model, tmp_path / "out")
    assert [r.target_format for r in report.added] == ["onnx"]
    (failed,) = report.failed
    assert failed.target_format == "torchscript"
    assert failed.reason.startswith("verification failed: reproduce test output 'out'")
    assert "does not reproduce" in failed.reason
    model = load_description(tmp_path / "out", perform_io_checks=True)
    assert verify_with_test_model(model, "onnx") is None
    assert verify_with_test_model(model, "keras_hdf5") is None


def test_default_verifier_fails_a_format_that_cannot_run(
    affine_model: Path, tmp_path: Path, use_converters: UseConverters
) -> None:
    # the fake plugin runs keras_hdf5, onnx, torchscript and tensorflow_js only
    use_converters(spec("keras_hdf5", "tensorflow_saved_model_bundle"))
    report = add_weights(affine_model, tmp_path / "out")
    (failed,) = report.failed
    assert "no installed plugin runs tensorflow_saved_model_bundle weights" in failed.reason
    assert report.added == ()
