"""Model chaining (``inputs[i].output_of``): the upstream model runs first when the sample lacks
the input it feeds; tiled prediction of a chain; the result holds the downstream's outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from pipeline_models import InputDef, OutputDef, conv_model, kernel, oracle_conv

from bioimageio_core import predict
from bioimageio_core.chain import chain_inputs
from bioimageio_core.errors import InputError
from bioimageio_core.loading import load_description
from bioimageio_core.pipeline import create_prediction_pipeline
from bioimageio_core.testing import test_model

Array = np.ndarray[Any, Any]
K_A, K_B, K_RAW = kernel(1, seed=1), kernel(2, seed=2), kernel(1, seed=3)


def rand(*shape: int, seed: int = 0) -> Array:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def upstream(folder: Path) -> Path:
    """A: raw -> mask (3x3 convolution)."""
    folder.mkdir(parents=True)
    conv_model(folder, inputs=[InputDef("raw")], outputs=[OutputDef("mask", K_A)])
    return folder / "rdf.yaml"


def downstream(folder: Path, reference: str = "../a/rdf.yaml", with_raw: bool = False) -> Path:
    """B: mask (output_of A) -> out (5x5 convolution); with ``with_raw`` also raw -> edges."""
    folder.mkdir(parents=True)
    mask = InputDef("mask", output_of=reference)
    if with_raw:
        outputs = [OutputDef("out", K_B, input_index=1), OutputDef("edges", K_RAW, input_index=0)]
        conv_model(folder, inputs=[InputDef("raw"), mask], outputs=outputs)
    else:
        conv_model(folder, inputs=[mask], outputs=[OutputDef("out", K_B)])
    return folder / "rdf.yaml"


def test_predict_runs_the_upstream_model_first(tmp_path: Path) -> None:
    upstream(tmp_path / "a")
    b = downstream(tmp_path / "b")
    x = rand(1, 1, 80, 96, seed=1)
    result = predict(model=b, inputs=x)
    assert set(result.members) == {"out"}
    expected = oracle_conv(oracle_conv(x, K_A), K_B)
    np.testing.assert_allclose(result.members["out"].data, expected, atol=1e-5)
    with create_prediction_pipeline(b, include_upstream_outputs=True) as pp:
        assert pp.input_ids == ("mask", "raw")
        both = pp.predict_sample_without_blocking({"raw": x})
    assert set(both.members) == {"mask", "out"}
    np.testing.assert_allclose(both.members["mask"].data, oracle_conv(x, K_A), atol=1e-5)


def test_tiled_prediction_of_a_chain(tmp_path: Path) -> None:
    upstream(tmp_path / "a")
    b = downstream(tmp_path / "b")
    x = rand(1, 1, 150, 130, seed=2)
    with create_prediction_pipeline(b, batch_size=2) as pp:
        whole = pp.predict_sample_without_blocking(x).members["out"].data
        tiled = pp.predict_sample_with_blocking(x, ns=0).members["out"].data
        fixed = pp.predict_sample_with_fixed_blocking(x, {"mask": {"y": 64, "x": 80}})
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    np.testing.assert_allclose(fixed.members["out"].data, whole, atol=1e-5)
    np.testing.assert_allclose(whole, oracle_conv(oracle_conv(x, K_A), K_B), atol=1e-5)


def test_a_given_fed_input_skips_the_upstream_model(tmp_path: Path) -> None:
    upstream(tmp_path / "a")
    b = downstream(tmp_path / "b")
    m = rand(1, 1, 64, 64, seed=3)
    with create_prediction_pipeline(b) as pp:
        out = pp.predict_sample_without_blocking({"mask": m}).members["out"].data
        (link,) = pp.upstreams
        assert link._pipeline is None  # never loaded
    np.testing.assert_allclose(out, oracle_conv(m, K_B), atol=1e-5)


def test_other_inputs_of_the_downstream_model_are_kept(tmp_path: Path) -> None:
    """'raw' feeds the upstream model and the downstream model alike."""
    upstream(tmp_path / "a")
    b = downstream(tmp_path / "b", with_raw=True)
    x = rand(1, 1, 64, 80, seed=4)
    result = predict(model=b, inputs={"raw": x})
    np.testing.assert_allclose(
        result.members["out"].data, oracle_conv(oracle_conv(x, K_A), K_B), atol=1e-5
    )
    np.testing.assert_allclose(result.members["edges"].data, oracle_conv(x, K_RAW), atol=1e-5)
    # what a user gives on the command line: inputs no model of the chain computes
    assert chain_inputs(load_description(b, perform_io_checks=False)) == (["raw"], [])  # type: ignore[arg-type]


def test_missing_inputs_name_both_ways_to_give_them(tmp_path: Path) -> None:
    upstream(tmp_path / "a")
    b = downstream(tmp_path / "b", with_raw=True)
    with create_prediction_pipeline(b) as pp, pytest.raises(InputError) as err:
        pp.predict_sample_without_blocking({"mask": rand(1, 1, 64, 64)})
    assert "raw" in str(err.value)
    b_only = downstream(tmp_path / "c")
    with create_prediction_pipeline(b_only) as pp, pytest.raises(InputError) as err:
        pp.predict_sample_without_blocking({})
    assert "missing input(s) ['raw'] of the model '../a/rdf.yaml'" in str(err.value)
    assert "'mask' directly" in str(err.value)


def test_a_chain_of_three(tmp_path: Path) -> None:
    upstream(tmp_path / "a")
    downstream(tmp_path / "b")
    folder = tmp_path / "c"
    folder.mkdir()
    conv_model(
        folder,
        inputs=[InputDef("out", output_of="../b/rdf.yaml")],
        outputs=[OutputDef("final", K_RAW)],
    )
    x = rand(1, 1, 64, 96, seed=5)
    result = predict(model=folder / "rdf.yaml", inputs=x, blocksize_parameter=0)
    expected = oracle_conv(oracle_conv(oracle_conv(x, K_A), K_B), K_RAW)
    np.testing.assert_allclose(result.members["final"].data, expected, atol=1e-5)


def test_circular_chains_are_refused(tmp_path: Path) -> None:
    for name, other in (("a", "../b/rdf.yaml"), ("b", "../a/rdf.yaml")):
        (tmp_path / name).mkdir()
        conv_model(
            tmp_path / name,
            inputs=[InputDef("x", output_of=other)],
            outputs=[OutputDef("x", kernel(1))],
        )
    with pytest.raises(InputError, match="cycle"):
        create_prediction_pipeline(tmp_path / "a" / "rdf.yaml")


def test_model_test_of_a_chained_model_uses_its_own_test_inputs(tmp_path: Path) -> None:
    upstream(tmp_path / "a")
    b = downstream(tmp_path / "b")
    m = rand(1, 1, 64, 64, seed=6)
    np.save(b.parent / "in.npy", m)
    np.save(b.parent / "out.npy", oracle_conv(m, K_B))
    raw = yaml.safe_load(b.read_text())
    raw["inputs"][0]["test_tensor"] = {"source": "in.npy"}
    raw["outputs"][0]["test_tensor"] = {"source": "out.npy"}
    b.write_text(yaml.safe_dump(raw))
    (tmp_path / "a" / "weights.npz").unlink()  # the upstream's weights are never needed
    summary = test_model(b)
    assert summary.status == "passed", summary.format_text()


def test_upstream_next_to_a_remote_description(http_server: Any, tmp_path: Path) -> None:
    upstream(http_server.root / "a")
    downstream(http_server.root / "b")
    x = rand(1, 1, 64, 64, seed=7)
    result = predict(model=http_server.url("b/rdf.yaml"), inputs={"raw": x})
    expected = oracle_conv(oracle_conv(x, K_A), K_B)
    np.testing.assert_allclose(result.members["out"].data, expected, atol=1e-5)
    assert http_server.count("a/rdf.yaml") >= 1 and http_server.count("a/weights.npz") == 1


def test_cli_predict_takes_the_inputs_of_the_chain(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from bioimageio_core.cli import main

    upstream(tmp_path / "a")
    b = downstream(tmp_path / "b")
    (tmp_path / "in").mkdir()
    x = rand(1, 1, 64, 64, seed=8)
    np.save(tmp_path / "in" / "s1.npy", x)
    out = tmp_path / "out" / "{sample_id}.npy"
    result = CliRunner().invoke(
        main, ["predict", str(b), "--inputs", str(tmp_path / "in" / "*.npy"), "--outputs", str(out)]
    )
    assert result.exit_code == 0, result.output
    expected = oracle_conv(oracle_conv(x, K_A), K_B)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "s1.npy"), expected, atol=1e-5)
