"""The minimal plugin example (docs/examples/minimal-plugin) works as the author guide says.

The nox ``tests`` session installs the example; this module installs nothing. Without the example
installed it skips, except under ``BIOIMAGEIO_TEST_PLUGIN_DISTS=required`` where it fails.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from optional import PLUGIN_DISTS, skip_module, unmet

from bioimageio_core import plugins
from bioimageio_core.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "minimal-plugin"
MODEL = EXAMPLE / "example-model" / "rdf.yaml"

skip_module(
    unmet(
        {"docs/examples/minimal-plugin": ("bioimageio_example_linear",)},
        "the minimal plugin example tests",
        "-e docs/examples/minimal-plugin",
        variable=PLUGIN_DISTS,
    )
)

ONLY_EXAMPLE = Settings(load_plugins=("example_linear",))


@pytest.fixture(autouse=True)
def _fresh_registry() -> Any:
    plugins.reset()
    yield
    plugins.reset()


def reference_output(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
    """The example model written out channel by channel in float64 (pre, model, post)."""
    x64 = x.astype(np.float64)
    pre = np.empty_like(x64)
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            plane = x64[b, c]
            pre[b, c] = np.sqrt(np.abs(plane / (plane.mean() + 1e-6)))
    out = np.zeros((x.shape[0], weight.shape[0], *x.shape[2:]))
    for o in range(weight.shape[0]):
        for k in range(weight.shape[1]):
            out[:, o] += float(weight[o, k]) * pre[:, k]
        out[:, o] += float(bias[o])
    return 1.0 / (1.0 + np.exp(-out))


def weights() -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    with np.load(MODEL.parent / "weights.npz") as npz:
        return npz["weight"], npz["bias"]


def test_example_is_discovered_through_its_entry_point() -> None:
    info = {i.name: i for i in plugins.plugin_infos()}["example_linear"]
    assert info.distribution == "bioimageio-run-example-linear"
    assert info.status == "loaded", info.error
    assert info.weight_formats == ("linear_npz",)
    assert info.ops == ("example_power",)
    spec = plugins.weight_formats()["linear_npz"]
    assert spec.is_available() is None
    ext = plugins.spec_extensions()
    assert ext.weight_formats["linear_npz"].__name__ == "LinearNpzWeightsDescr"
    assert [c.__name__ for c in ext.processing["example_power"]] == ["PowerKwargs"]


def test_example_model_validates_with_the_plugin() -> None:
    from bioimageio_core import load_description, validate_format

    summary = validate_format(str(MODEL))
    assert summary.status == "valid-format", summary.format_text()
    assert not [w for d in summary.details for w in d.warnings if "linear_npz" in str(w)]
    descr = load_description(str(MODEL))
    entry = descr.weights["linear_npz"]
    assert type(entry).__name__ == "LinearNpzWeightsDescr" and entry.layout == "out_in"
    steps = {s.id: s for s in descr.inputs[0].preprocessing}
    assert steps["example_power"].kwargs.exponent == 0.5
    assert steps["example_power"].kwargs.axes == ("y", "x")


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (lambda r: r["inputs"][0]["preprocessing"][0]["kwargs"].update(exponent=-1), "exponent"),
        (lambda r: r["weights"]["linear_npz"].update(source="weights.txt"), "linear_npz"),
        (lambda r: r["weights"]["linear_npz"].update(layout="diagonal"), "layout"),
    ],
)
def test_bad_plugin_fields_fail_at_their_field(edit: Any, path: str) -> None:
    from bioimageio_core import validate_format

    raw = yaml.safe_load(MODEL.read_text(encoding="utf-8"))
    bad = copy.deepcopy(raw)
    edit(bad)
    summary = validate_format(bad, perform_io_checks=False)
    assert summary.status == "failed"
    errors = [e for d in summary.details for e in d.errors]
    assert any(path in str(e) for e in errors), summary.format_text()


def test_example_model_runs_through_registry_and_adapter() -> None:
    """Preprocessing (plugin op), the plugin's adapter, postprocessing (built-in op): each step
    the way prediction runs it (the pipeline the registry's choice of format builds)."""
    from bioimageio_core import Sample, Tensor, create_prediction_pipeline, load_description

    descr = load_description(str(MODEL))
    x = np.load(MODEL.parent / "test_input.npy")
    spec = plugins.choose_weight_format(list(descr.weights.available_formats))
    assert spec.name == "linear_npz"
    with create_prediction_pipeline(descr) as pipeline:
        assert pipeline.weights_format == "linear_npz"
        assert type(pipeline.adapter).__name__ == "LinearNpzAdapter"
        pre = pipeline.apply_preprocessing({"raw": Tensor(x, ("batch", "channel", "y", "x"))})
        assert pipeline.adapter is not None
        raw_out = pipeline.adapter.forward({"raw": pre.members["raw"].data})
        mixed = Tensor(raw_out["mixed"], ("batch", "channel", "y", "x"))
        out = pipeline.apply_postprocessing(Sample(members={"mixed": mixed}, stat=pre.stat, id=pre.id))
    result = out.members["mixed"].data
    assert result.shape == (1, 3, 16, 24) and result.dtype == np.float32
    np.testing.assert_allclose(result, reference_output(x, *weights()), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result, np.load(MODEL.parent / "test_output.npy"), rtol=1e-5, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(
    n_in=st.integers(1, 3),
    n_out=st.integers(1, 3),
    channel_pos=st.integers(0, 2),
    layout=st.sampled_from(["out_in", "in_out"]),
    seed=st.integers(0, 2**16),
)
def test_adapter_equals_einsum(
    tmp_path_factory: pytest.TempPathFactory,
    n_in: int,
    n_out: int,
    channel_pos: int,
    layout: str,
    seed: int,
) -> None:
    """For any channel counts, channel axis position and layout, forward == an einsum."""
    from bioimageio_core.adapters import AdapterRequest
    from bioimageio_core.spec import build_description

    rng = np.random.default_rng(seed)
    weight = rng.normal(size=(n_out, n_in)).astype(np.float32)
    bias = rng.normal(size=n_out).astype(np.float32)
    folder = tmp_path_factory.mktemp("linear")
    stored = weight if layout == "out_in" else weight.T
    np.savez(folder / "w.npz", weight=stored, bias=bias)

    def axes(n: int, ref: bool) -> list[dict[str, Any]]:
        space: list[dict[str, Any]] = [
            {"type": "space", "id": a, "size": {"tensor_id": "raw", "axis_id": a} if ref else 5}
            for a in ("y", "x")
        ]
        channel = {"type": "channel", "channel_names": [f"c{i}" for i in range(n)]}
        return [{"type": "batch"}, *space[:channel_pos], channel, *space[channel_pos:]]

    raw = {
        "format_version": "0.5.4",
        "type": "model",
        "name": "linear",
        "inputs": [{"id": "raw", "axes": axes(n_in, False)}],
        "outputs": [{"id": "out", "axes": axes(n_out, True)}],
        "weights": {"linear_npz": {"source": "w.npz", "layout": layout}},
    }
    result = build_description(raw, extensions=plugins.spec_extensions(ONLY_EXAMPLE))
    assert result.descr is not None, result.issues
    spec = plugins.weight_formats(ONLY_EXAMPLE)["linear_npz"]
    request = AdapterRequest.for_model(
        result.descr,  # type: ignore[arg-type]
        "linear_npz",
        open_file=lambda ref, sha: folder / ref,
    )
    shape = [2, 5, 5]
    shape.insert(1 + channel_pos, n_in)
    x = rng.normal(size=shape).astype(np.float32)
    with spec.create_adapter(request) as adapter:
        out = adapter.forward({"raw": x})["out"]
    x_cl = np.moveaxis(x, 1 + channel_pos, -1)
    expected = np.moveaxis(np.einsum("...k,ok->...o", x_cl, weight) + bias, -1, 1 + channel_pos)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_adapter_rejects_weights_that_do_not_match_the_channels(tmp_path: Path) -> None:
    from bioimageio_core import load_description
    from bioimageio_core.adapters import AdapterRequest
    from bioimageio_core.errors import PluginError

    np.savez(tmp_path / "w.npz", weight=np.ones((4, 2), np.float32), bias=np.zeros(4, np.float32))
    descr = load_description(str(MODEL))
    request = AdapterRequest.for_model(
        descr, "linear_npz", open_file=lambda ref, sha: tmp_path / "w.npz"
    )
    with pytest.raises(PluginError, match=r"declares 2 input and 3 output channels"):
        plugins.weight_formats()["linear_npz"].create_adapter(request)


def test_example_model_predicts_through_the_pipeline() -> None:
    """``predict`` runs the plugin's op and format like built-ins; blockwise equals whole."""
    from bioimageio_core import predict

    x = np.load(MODEL.parent / "test_input.npy")
    expected = reference_output(x, *weights())
    whole = predict(model=str(MODEL), inputs=x)
    np.testing.assert_allclose(whole.members["mixed"].data, expected, rtol=1e-5, atol=1e-6)
    # blocks of 8x8 (min + 0*step), two blocks per call: the mean is still taken over the whole
    # sample before tiling, so the result does not change
    tiled = predict(model=str(MODEL), inputs={"raw": x}, blocksize_parameter=0, batch_size=2)
    np.testing.assert_allclose(tiled.members["mixed"].data, whole.members["mixed"].data, rtol=1e-6)


def test_pipeline_on_an_odd_sized_image(tmp_path: Path) -> None:
    """A 2x13x21 image (not a valid size) is padded to a valid size and cropped back."""
    from bioimageio_core import create_prediction_pipeline, predict

    rng = np.random.default_rng(1)
    x = rng.uniform(0.5, 3.0, size=(2, 13, 21)).astype(np.float32)
    with create_prediction_pipeline(str(MODEL)) as pipeline:
        assert pipeline.weights_format == "linear_npz"
        out = predict(model=pipeline, inputs=x, axes="cyx", save_output_path=tmp_path / "{output_id}.npy")
    data = out.members["mixed"].data
    assert data.shape == (1, 3, 13, 21)
    # padding changes nothing pixel-wise except through the mean, which is computed before padding
    np.testing.assert_allclose(data, reference_output(x[None], *weights()), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.load(tmp_path / "mixed.npy"), data)


def test_example_model_passes_its_model_test() -> None:
    """``test_model`` reproduces the committed test output with the plugin's weights."""
    from bioimageio_core import test_model

    summary = test_model(str(MODEL))
    assert summary.status == "passed", summary.format_text()
    names = [d.name for d in summary.details]
    assert any("linear_npz" in n and "reproduce" in n for n in names), names


def test_cli_predicts_the_example_model(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from bioimageio_core.cli import main

    x = np.load(MODEL.parent / "test_input.npy")
    np.save(tmp_path / "img.npy", x)
    pattern = str(tmp_path / "pred" / "{sample_id}_{tensor_id}.npy")
    result = CliRunner().invoke(
        main, ["predict", str(MODEL), "-i", str(tmp_path / "img.npy"), "-o", pattern, "-q"]
    )
    assert result.exit_code == 0, result.output
    out = np.load(tmp_path / "pred" / "img_mixed.npy")
    np.testing.assert_allclose(out, reference_output(x, *weights()), rtol=1e-5, atol=1e-6)
