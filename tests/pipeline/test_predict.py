"""predict / predict_many: sources, dispatch, saving outputs, one loaded model for many samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
import yaml
from descriptions import conv_v0_4
from pipeline_models import InputDef, OutputDef, conv_model, kernel, oracle_conv

import bioimageio_core
from bioimageio_core import plugins
from bioimageio_core.errors import InputError, PluginError, UnsupportedWeightFormatError
from bioimageio_core.pipeline import create_prediction_pipeline
from bioimageio_core.prediction import output_paths, predict, predict_many
from bioimageio_core.sample import Sample
from bioimageio_core.sources import FolderRoot
from bioimageio_core.spec import ModelDescr, UnknownWeightsDescr, build_description
from bioimageio_core.tensor import Tensor

Array = np.ndarray[Any, Any]


def rand(*shape: int, seed: int = 0) -> Array:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_public_names() -> None:
    assert bioimageio_core.predict is predict
    assert bioimageio_core.predict_many is predict_many
    assert bioimageio_core.create_prediction_pipeline is create_prediction_pipeline
    assert {"predict", "predict_many", "create_prediction_pipeline", "PredictionPipeline"} <= set(
        bioimageio_core.__all__
    )


def test_predict_from_a_description_file(tmp_path: Path) -> None:
    k = kernel(2, seed=1)
    conv_model(tmp_path, outputs=[OutputDef("out", k, halo=2)])
    x = rand(130, 100)
    out = predict(model=tmp_path / "rdf.yaml", inputs=x, sample_id="s7")
    assert out.id == "s7"
    np.testing.assert_allclose(out.members["out"].data[0, 0], oracle_conv(x, k), atol=1e-5)
    blocked = predict(model=str(tmp_path / "rdf.yaml"), inputs={"raw": x}, blocksize_parameter=0, batch_size=2)
    np.testing.assert_allclose(blocked.members["out"].data, out.members["out"].data, atol=1e-5)
    fixed = predict(model=tmp_path, inputs=x, input_block_shape={"raw": {"y": 80, "x": 64}})
    np.testing.assert_allclose(fixed.members["out"].data, out.members["out"].data, atol=1e-5)


def test_predict_saves_every_output(tmp_path: Path) -> None:
    inputs = [InputDef("a"), InputDef("b")]
    outputs = [OutputDef("oa", kernel(1), input_index=0), OutputDef("ob", kernel(1, seed=2), input_index=1)]
    model = conv_model(tmp_path, inputs, outputs)
    a, b = rand(64, 64, seed=3), rand(64, 64, seed=4)
    with pytest.raises(InputError, match="no '\\{output_id\\}' placeholder"):
        predict(model=model, inputs={"a": a, "b": b}, save_output_path=tmp_path / "out.npy")
    result = predict(
        model=model,
        inputs={"a": a, "b": b},
        sample_id="x1",
        save_output_path=tmp_path / "res" / "{sample_id}_{output_id}.npy",
    )
    for oid in ("oa", "ob"):
        saved = np.load(tmp_path / "res" / f"x1_{oid}.npy")
        np.testing.assert_array_equal(saved, result.members[oid].data)


def test_output_paths() -> None:
    assert output_paths("o/{sample_id}-{output_id}.tif", 3, ["p"]) == {"p": Path("o/3-p.tif")}
    assert output_paths("o/{sample_id}.tif", "s", ["p"]) == {"p": Path("o/s.tif")}
    assert output_paths("{tensor_id}/{sample_id}.npy", 1, ["a", "b"]) == {
        "a": Path("a/1.npy"),
        "b": Path("b/1.npy"),
    }
    with pytest.raises(InputError, match="2 outputs"):
        output_paths("{sample_id}.npy", 1, ["a", "b"])
    with pytest.raises(InputError, match="not a valid pattern"):
        output_paths("o/{tensor}.tif", "s", ["p"])


def test_predict_many_one_model_and_per_sample_files(tmp_path: Path) -> None:
    k = kernel(1, seed=5)
    model = conv_model(tmp_path, outputs=[OutputDef("out", k, halo=1)])
    xs = [rand(64 + 10 * i, 70, seed=i) for i in range(3)]
    with pytest.raises(InputError, match="no '\\{sample_id\\}' placeholder"):
        list(predict_many(model=model, inputs=xs, save_output_path=tmp_path / "o.npy"))
    named = Sample(members={"raw": Tensor(xs[0], ("y", "x"))}, id="named")
    with create_prediction_pipeline(model) as pp:
        results = list(
            predict_many(
                model=pp,
                inputs=[named, *xs[1:]],
                save_output_path=tmp_path / "{sample_id}.npy",
                blocksize_parameter=0,
            )
        )
        assert pp.adapter is not None  # a given pipeline stays loaded
    assert [r.id for r in results] == ["named", "sample001", "sample002"]
    for r, x in zip(results, xs, strict=True):
        np.testing.assert_allclose(np.load(tmp_path / f"{r.id}.npy")[0, 0], oracle_conv(x, k), atol=1e-5)


def test_weight_format_errors(tmp_path: Path) -> None:
    model = conv_model(tmp_path)
    with pytest.raises(UnsupportedWeightFormatError, match="no weights in onnx"):
        create_prediction_pipeline(model, weights_format="onnx")
    (tmp_path / "weights.npz").unlink()
    with pytest.raises(PluginError, match="could not load the model with any weight format"):
        create_prediction_pipeline(model)
    with pytest.raises(PluginError, match="could not load the numpy_conv weights"):
        create_prediction_pipeline(model, weights_format="numpy_conv")


def test_pipeline_unloads(tmp_path: Path) -> None:
    model = conv_model(tmp_path)
    with create_prediction_pipeline(model) as pp:
        adapter = pp.adapter
        assert adapter is not None and adapter.loaded  # type: ignore[attr-defined]
    assert not adapter.loaded  # type: ignore[attr-defined]
    with pytest.raises(bioimageio_core.BioimageioError, match="unloaded"):
        pp.predict_sample_without_blocking(rand(64, 64))


def test_a_0_4_model_tiles(tmp_path: Path) -> None:
    k = kernel(2, seed=6)
    conv_model(tmp_path, outputs=[OutputDef("out", k)])  # writes weights.npz
    raw = conv_v0_4(
        "numpy convolution 0.4",
        test=("in.npy", "out.npy"),
        min_size=64,
        step=16,
        halo=2,
        description="a 0.4 description",
        documentation="README.md",
        timestamp="2024-01-01T00:00:00",
    )
    (tmp_path / "README.md").write_text("# test")
    np.save(tmp_path / "in.npy", np.zeros((1, 1, 64, 64), dtype=np.float32))
    np.save(tmp_path / "out.npy", np.zeros((1, 1, 64, 64), dtype=np.float32))
    (tmp_path / "v04.yaml").write_text(yaml.safe_dump(raw))
    built = build_description(raw, extensions=plugins.spec_extensions())
    assert built.descr is not None, built.issues
    x = rand(1, 1, 300, 250, seed=7)
    with create_prediction_pipeline(tmp_path / "v04.yaml") as pp:
        assert pp.model.format_version.startswith("0.5")
        out = pp.predict_sample_with_blocking(x, ns=1).members["out"].data
    np.testing.assert_allclose(out, oracle_conv(x, k), atol=1e-5)


def test_only_the_chosen_weights_are_fetched(tmp_path: Path) -> None:
    k = kernel(1, seed=8)
    conv_model(tmp_path, outputs=[OutputDef("out", k, halo=1)])
    raw = yaml.safe_load((tmp_path / "rdf.yaml").read_text())
    # an unreachable URL for another format (port 9: connection refused at once)
    raw["weights"] = {
        "onnx": {"source": "http://127.0.0.1:9/missing.onnx", "opset_version": 17},
        **raw["weights"],
    }
    (tmp_path / "rdf.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    x = rand(70, 70, seed=9)
    out = predict(model=tmp_path / "rdf.yaml", inputs=x, weights_format="numpy_conv")
    np.testing.assert_allclose(out.members["out"].data[0, 0], oracle_conv(x, k), atol=1e-5)
    # without a choice: onnx is skipped (no plugin here, or its file cannot be fetched)
    again = predict(model=tmp_path / "rdf.yaml", inputs=x)
    np.testing.assert_array_equal(again.members["out"].data, out.members["out"].data)


def test_weights_unknown_to_the_loader_are_parsed_by_the_plugin(tmp_path: Path) -> None:
    k = kernel(1, seed=10)
    conv_model(tmp_path, outputs=[OutputDef("out", k, halo=1)])
    raw = yaml.safe_load((tmp_path / "rdf.yaml").read_text())
    built = build_description(raw)  # no plugin extensions: numpy_conv stays an unknown entry
    assert isinstance(built.descr, ModelDescr)
    assert isinstance(built.descr.weights["numpy_conv"], UnknownWeightsDescr)
    descr = attrs.evolve(built.descr, root=FolderRoot(tmp_path))
    x = rand(64, 64, seed=11)
    out = predict(model=descr, inputs=x)
    np.testing.assert_allclose(out.members["out"].data[0, 0], oracle_conv(x, k), atol=1e-5)


def _sigmoid_model(folder: Path, k: Array) -> Any:
    post: list[dict[str, Any]] = [
        {"id": "sigmoid"},
        {"id": "scale_linear", "kwargs": {"gain": 2.0, "offset": -1.0}},
    ]
    return conv_model(folder, outputs=[OutputDef("out", k, halo=1, postprocessing=post)])


def sigmoid_oracle(x: Array, k: Array) -> Array:
    return 2.0 / (1.0 + np.exp(-oracle_conv(x, k))) - 1.0


@pytest.mark.parametrize("suffix", [".npy", ".tif", ".npz"])
def test_outputs_stream_into_files(tmp_path: Path, suffix: str) -> None:
    k = kernel(1, seed=12)
    model = _sigmoid_model(tmp_path, k)
    x = rand(1, 1, 300, 200, seed=13)
    with create_prediction_pipeline(model) as pp:
        assert pp.postprocessing_is_pointwise()
        out = predict(
            model=pp, inputs=x, blocksize_parameter=1, save_output_path=tmp_path / f"o{suffix}"
        )
    data = out.members["out"].data
    assert isinstance(data, np.memmap) == (suffix != ".npz")  # .npz cannot be written blockwise
    np.testing.assert_allclose(data, sigmoid_oracle(x, k), atol=1e-5)
    saved = bioimageio_core.load_tensor(tmp_path / f"o{suffix}")
    np.testing.assert_array_equal(np.asarray(saved.data).reshape(data.shape), data)


def test_a_failed_prediction_leaves_no_partial_file(tmp_path: Path) -> None:
    model = _sigmoid_model(tmp_path, kernel(1))
    with create_prediction_pipeline(model) as pp:
        assert pp.adapter is not None
        forward = pp.adapter.forward
        calls = 0

        def fail_later(inputs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls > 2:
                raise RuntimeError("out of memory")
            return forward(inputs)

        pp.adapter.forward = fail_later  # type: ignore[method-assign]
        with pytest.raises(RuntimeError, match="out of memory"):
            predict(model=pp, inputs=rand(300, 300), blocksize_parameter=0, save_output_path=tmp_path / "o.npy")
    assert calls == 3
    assert not (tmp_path / "o.npy").exists()


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (1.5, "got 1.5"),
        (-1, "got -1"),
        (True, "got True"),
        ("2", "got '2'"),
        ({"raw": 1}, "got {'raw': 1}"),
        ({("raw", "y"): 0.5}, "0.5"),
        ({("raw", "nope"): 1}, "('raw', 'nope')"),
    ],
)
def test_malformed_blocksize_parameter_is_an_input_error(
    tmp_path: Path, value: object, words: str
) -> None:
    conv_model(tmp_path, outputs=[OutputDef("out", kernel(1), halo=1)])
    x = rand(70, 70)
    with pytest.raises(InputError, match="blocksize_parameter") as info:
        predict(model=tmp_path, inputs=x, blocksize_parameter=value)  # type: ignore[arg-type]
    assert words in str(info.value)
    with pytest.raises(InputError, match="default_blocksize_parameter"):
        create_prediction_pipeline(tmp_path, default_blocksize_parameter=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, 1.5, "2"])
def test_malformed_batch_size_is_an_input_error(tmp_path: Path, value: object) -> None:
    conv_model(tmp_path, outputs=[OutputDef("out", kernel(1), halo=1)])
    with pytest.raises(InputError, match=f"batch_size must be a whole number >= 1 .*{value!r}"):
        predict(model=tmp_path, inputs=rand(70, 70), blocksize_parameter=0, batch_size=value)  # type: ignore[arg-type]


def test_blocksize_parameter_mapping_and_numpy_integers_work(tmp_path: Path) -> None:
    conv_model(tmp_path, outputs=[OutputDef("out", kernel(1), halo=1)])
    x = rand(70, 70)
    whole = predict(model=tmp_path, inputs=x).members["out"].data
    for ns in (np.int64(1), {("raw", "y"): 0, ("raw", "x"): np.int32(2)}):
        blocked = predict(model=tmp_path, inputs=x, blocksize_parameter=ns)  # type: ignore[arg-type]
        np.testing.assert_allclose(blocked.members["out"].data, whole, atol=1e-5)
