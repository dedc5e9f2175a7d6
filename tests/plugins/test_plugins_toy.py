"""The toy distribution (tests/plugin_dists/toy) is found through its real entry point and used."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from optional import skip_module, unmet_dists

from bioimageio_core import plugins
from bioimageio_core.adapters import AdapterRequest
from bioimageio_core.ops import apply_ops, build_ops, required_measures
from bioimageio_core.settings import Settings, get_settings
from bioimageio_core.stats import SampleMean, StatsCalculator
from bioimageio_core.tensor import Tensor

skip_module(unmet_dists("toy", what="the toy plugin tests"))

TOY = Settings(load_plugins=("toy",))


def test_toy_distribution_is_discovered() -> None:
    infos = {i.name: i for i in plugins.plugin_infos(TOY)}
    toy = infos["toy"]
    assert toy.distribution == "bioimageio-toy-plugin"
    assert toy.version == "0.1.0"
    assert toy.status == "loaded", toy.error
    assert toy.weight_formats == ("toy_scale",)
    assert toy.ops == ("toy_add",)
    ext = plugins.spec_extensions(TOY)
    assert ext.weight_formats["toy_scale"].__name__ == "ToyScaleWeightsDescr"
    assert [c.__name__ for c in ext.processing["toy_add"]] == ["ToyAddKwargs"]


def test_toy_weight_format_is_chosen_and_runs() -> None:
    spec = plugins.choose_weight_format(["not_installed_fmt", "toy_scale"], settings=TOY)
    assert spec.name == "toy_scale"
    weights = spec.entry_class(source="toy.bin", factor=3.0)
    model = SimpleNamespace(inputs=[SimpleNamespace(id="raw")], outputs=[SimpleNamespace(id="out")])
    request = AdapterRequest(
        model=model,  # type: ignore[arg-type]
        weights_format="toy_scale",
        weights=weights,
        devices=None,
        open_file=lambda ref, sha: None,  # type: ignore[arg-type,return-value]
        settings=get_settings(),
    )
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with spec.create_adapter(request) as adapter:
        out = adapter.forward({"raw": x})
    np.testing.assert_array_equal(out["out"], x * 3.0)


def test_toy_op_is_bound_and_applied_with_statistics() -> None:
    ops = plugins.processing_ops(TOY)
    kwargs_class = ops["toy_add"].kwargs_classes[0]
    steps = [
        SimpleNamespace(id="toy_add", kwargs=kwargs_class(value=2.0, center=True)),
        SimpleNamespace(id="sigmoid", kwargs=None),
    ]
    bound = build_ops("raw", steps, ops=ops)
    assert required_measures(bound) == {SampleMean("raw")}
    data = np.array([[1.0, 2.0], [3.0, 10.0]])
    members = {"raw": Tensor(data, ("y", "x"))}
    stat = StatsCalculator(required_measures(bound)).update_and_get_all(members)
    out = apply_ops(bound, members, stat)["raw"]
    expected = 1 / (1 + np.exp(-(data + 2.0 - data.mean())))
    np.testing.assert_allclose(out.data, expected)


def test_toy_format_and_op_parse_like_built_ins() -> None:
    from bioimageio_core.spec import ProcessingStep, structure
    from bioimageio_core.spec.weights import WeightsDescr

    ext = plugins.spec_extensions(TOY)
    step = structure({"id": "toy_add", "kwargs": {"value": 1.5}}, ProcessingStep, extensions=ext)
    assert type(step.kwargs).__name__ == "ToyAddKwargs"
    assert step.kwargs.value == 1.5
    weights = structure(
        {"toy_scale": {"source": "w.bin", "factor": 2.0}, "onnx": {"source": "m.onnx", "opset_version": 15}},
        WeightsDescr,
        extensions=ext,
    )
    assert type(weights.formats["toy_scale"]).__name__ == "ToyScaleWeightsDescr"
    assert weights.formats["toy_scale"].factor == 2.0


def test_load_description_parses_the_toy_format_and_op(monkeypatch: pytest.MonkeyPatch) -> None:
    from bioimageio_core import validate_format

    monkeypatch.setenv("BIOIMAGEIO_LOAD_PLUGINS", "toy")
    axes = [{"type": "batch"}, {"type": "space", "id": "x", "size": 8}]
    raw = {
        "format_version": "0.5.4",
        "type": "model",
        "name": "toy model",
        "inputs": [
            {
                "id": "raw",
                "axes": axes,
                "preprocessing": [{"id": "toy_add", "kwargs": {"value": 1.0}}],
            }
        ],
        "outputs": [{"id": "out", "axes": axes}],
        "weights": {"toy_scale": {"source": "w.bin", "factor": 2.0}},
    }
    summary = validate_format(raw, perform_io_checks=False)
    assert summary.status == "valid-format", summary.format_text()
    assert not any("toy_scale" in str(w) for d in summary.details for w in d.warnings)

    from bioimageio_core import load_description

    descr = load_description(raw, perform_io_checks=False)
    assert type(descr.weights.formats["toy_scale"]).__name__ == "ToyScaleWeightsDescr"
    steps = [s.id for s in descr.inputs[0].preprocessing]
    assert "toy_add" in steps
