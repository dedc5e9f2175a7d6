"""SavedModel graphs with side effects (files, Python, network) need consent before they load.

The SavedModels are built here: clean ones (variables, tables, control flow, random numbers,
printing to stderr, TF1) and ones that read, write, list files, call Python, or hide such
operations in a branch, an initialiser or an input pipeline.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from bioimageio_run_tensorflow.graph_check import (
    CHECKPOINT_READ,
    CHECKPOINT_WRITE,
    STATEFUL_ALLOWED_NAMES,
    classify,
    deny_reason,
    find_side_effects,
    registry_statefulness,
)
from tf_testing import FORMAT, zip_folder

import bioimageio_core
from bioimageio_core.plugin import RemoteCodeError
from bioimageio_core.plugin.testing import (
    ModelDef,
    TensorDef,
    WeightsDef,
    run_cli,
    serve_folder,
    write_model,
)

SPEC = tf.TensorSpec([None, None, None, 1], tf.float32)
STATEFUL = registry_statefulness()


@pytest.fixture(autouse=True)
def _own_cache_and_no_consent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOIMAGEIO_CACHE_PATH", str(tmp_path / "cache"))
    monkeypatch.delenv("BIOIMAGEIO_ALLOW_REMOTE_CODE", raising=False)


def _save(module: tf.Module, folder: Path) -> Path:
    tf.saved_model.save(module, str(folder), signatures=module.__call__)
    return folder


def _serving(body: Callable[[Any], Any], **state: Any) -> tf.Module:
    """A module whose serving function is ``body(raw)`` (``state`` becomes attributes)."""

    class Module(tf.Module):
        @tf.function(input_signature=[SPEC])
        def __call__(self, raw: Any) -> Any:
            return {"out": body(self, raw)}

    module = Module()
    for name, value in state.items():
        setattr(module, name, value)
    return module


# ---- clean graphs ------------------------------------------------------------------------------


def _clean_body(self: Any, raw: Any) -> Any:
    tf.print("batch", tf.shape(raw)[0])  # to stderr: allowed
    tf.debugging.assert_all_finite(raw, "finite input")
    keys = tf.constant([0, 1], tf.int64)
    scale = tf.cast(self.table.lookup(keys[:1])[0], tf.float32)
    noise = tf.random.uniform(tf.shape(raw), maxval=0.0)  # stateful random op, all zeros
    doubled = tf.cond(tf.reduce_sum(raw) > 0, lambda: raw * 2.0, lambda: raw * 2.0)
    total = tf.while_loop(lambda i, x: i < 2, lambda i, x: (i + 1, x + 0.0), (0, doubled))[1]
    return total * self.w * scale + noise


def test_clean_graphs_have_no_side_effects(tmp_path: Path) -> None:
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant([0, 1], tf.int64), [1, 2]), -1
    )
    module = _serving(_clean_body, w=tf.Variable(1.5), table=table)
    folder = _save(module, tmp_path / "clean")
    # the save path holds SaveV2 / MergeV2Checkpoints, the restore path RestoreV2: never refused
    assert find_side_effects(folder) == ()
    loaded = tf.saved_model.load(str(folder)).signatures["serving_default"]
    x = np.ones((1, 2, 2, 1), np.float32)
    np.testing.assert_allclose(loaded(raw=tf.constant(x))["out"].numpy(), x * 3.0)


def test_tf1_saved_model_is_clean_and_its_init_op_is_checked(tmp_path: Path) -> None:
    for name, init_writes in (("plain", False), ("init_writes", True)):
        export = tmp_path / name
        with tf.Graph().as_default(), tf.compat.v1.Session() as session:
            x = tf.compat.v1.placeholder(tf.float32, [None, None, None, 1], name="x")
            w = tf.compat.v1.Variable(1.5, name="w")
            y = tf.identity(x * w + 1.0, name="y")
            session.run(tf.compat.v1.global_variables_initializer())
            main_op = (
                tf.io.write_file(str(tmp_path / "marker"), "x") if init_writes else None
            )
            builder = tf.compat.v1.saved_model.Builder(str(export))
            signature = tf.compat.v1.saved_model.predict_signature_def({"input": x}, {"output": y})
            builder.add_meta_graph_and_variables(
                session, ["serve"], {"serving_default": signature}, main_op=main_op
            )
            builder.save()
        findings = find_side_effects(export)
        if init_writes:
            assert [(f.op, f.where) for f in findings] == [("WriteFile", "graph")]
        else:
            assert findings == ()


def _write(self: Any, raw: Any) -> Any:
    tf.io.write_file(self.path, tf.strings.as_string(tf.reduce_sum(raw)))
    return raw


def _read(self: Any, raw: Any) -> Any:
    return raw + tf.strings.to_number(tf.io.read_file(self.path))


def _glob(self: Any, raw: Any) -> Any:
    return raw + tf.cast(tf.size(tf.io.matching_files(self.path)), tf.float32)


def _python(self: Any, raw: Any) -> Any:
    return tf.py_function(lambda t: t * 2.0, [raw], tf.float32)


def _print_to_file(self: Any, raw: Any) -> Any:
    tf.print("leak", raw, output_stream="file://" + self.path)
    return raw


def _write_in_a_branch(self: Any, raw: Any) -> Any:
    def write() -> Any:
        tf.io.write_file(self.path, "x")
        return raw

    return tf.cond(tf.reduce_sum(raw) > 1e9, write, lambda: raw)


def _restore_in_serving(self: Any, raw: Any) -> Any:
    (value,) = tf.raw_ops.RestoreV2(
        prefix=self.path, tensor_names=["w"], shape_and_slices=[""], dtypes=[tf.float32]
    )
    return raw * value


def _dataset(self: Any, raw: Any) -> Any:
    lines = tf.data.TextLineDataset(self.path).reduce(0, lambda n, _: n + 1)
    return raw + tf.cast(lines, tf.float32)


@pytest.mark.parametrize(
    ("body", "op", "reason"),
    [
        (_write, "WriteFile", "writes files"),
        (_read, "ReadFile", "reads files"),
        (_glob, "MatchingFiles", "reads files"),
        (_python, "EagerPyFunc", "runs Python code"),
        (_print_to_file, "PrintV2", "prints to 'file://"),
        (_write_in_a_branch, "WriteFile", "writes files"),
        (_restore_in_serving, "RestoreV2", "reads checkpoint files"),
        (_dataset, "TextLineDataset", "input pipeline"),
    ],
)
def test_side_effects_are_found(
    tmp_path: Path, body: Callable[[Any, Any], Any], op: str, reason: str
) -> None:
    module = _serving(body, path=str(tmp_path / "target"))
    folder = _save(module, tmp_path / "model")
    findings = find_side_effects(folder)
    found = [f for f in findings if f.op.startswith(op)]
    assert found, findings
    assert reason in found[0].reason
    assert found[0].where.startswith("function ")
    assert not (tmp_path / "target").exists()  # inspecting runs nothing


# ---- the rule ----------------------------------------------------------------------------------


def test_allow_list_names_real_operations_without_file_access() -> None:
    for op in sorted(STATEFUL_ALLOWED_NAMES):
        assert STATEFUL(op) is not None, f"{op} is not a TensorFlow operation"
        if op != "PrintV2":
            assert deny_reason(op, {}) is None, op


@pytest.mark.parametrize(
    "op",
    [
        "WriteFile", "ReadFile", "MatchingFiles", "ImmutableConst", "PyFunc", "PyFuncStateless",
        "EagerPyFunc", "InitializeTableFromTextFileV2", "TFRecordDatasetV2", "WholeFileReaderV2",
        "ReaderReadV2", "IteratorGetNext", "DebugIdentityV2", "DebugNanCount", "CopyHost",
        "WriteScalarSummary", "CreateSummaryFileWriter", "RpcCall", "CollectiveReduceV2", "_Send",
        "RemoteCall", "XlaCallModule", "FIFOQueueV2", "LoadAndRemapMatrix", "SaveDatasetV2",
    ],
)  # fmt: skip
def test_operations_with_effects_outside_the_process_are_refused(op: str) -> None:
    for region in ("run", "restore", "save"):
        assert classify(op, {}, region, STATEFUL(op)) is not None, (op, region)


@pytest.mark.parametrize(
    "op",
    [
        "Conv2D", "BiasAdd", "Relu", "MaxPool", "FusedBatchNormV3", "Placeholder", "Const",
        "Identity", "NoOp", "PartitionedCall", "StatefulPartitionedCall", "If", "While",
        "StatelessIf", "VarHandleOp", "ReadVariableOp", "AssignVariableOp", "VariableV2",
        "RandomUniform", "StatelessRandomUniformV2", "Assert", "HashTableV2",
        "LookupTableFindV2", "TensorArrayV3", "ResourceGather", "Switch", "Merge", "Enter",
        "ShardedFilename", "StringJoin", "StaticRegexFullMatch",
    ],
)  # fmt: skip
def test_computation_and_in_memory_state_pass(op: str) -> None:
    assert classify(op, {}, "run", STATEFUL(op)) is None


def test_checkpoint_operations_only_where_the_saver_runs_them() -> None:
    for op in CHECKPOINT_READ:
        assert classify(op, {}, "run", True) == "reads checkpoint files"
        assert classify(op, {}, "restore", True) is None
    for op in CHECKPOINT_WRITE:
        assert classify(op, {}, "run", True) == "writes checkpoint files"
        assert classify(op, {}, "restore", True) == "writes checkpoint files"
        assert classify(op, {}, "save", True) is None


def test_unknown_and_unlisted_stateful_operations_are_refused() -> None:
    assert "custom operation" in str(classify("MyCustomOp", {}, "run", None))
    assert "stateful" in str(classify("SomeNewStatefulOp", {}, "run", True))
    assert classify("SomeNewPureOp", {}, "run", False) is None


def test_every_registered_stateful_operation_passes_only_when_listed() -> None:
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session as c_api

    ops = op_def_pb2.OpList()
    ops.ParseFromString(c_api.TF_GetBuffer(c_api.TF_GetAllOpList()))
    passing = {
        o.name for o in ops.op if o.is_stateful and classify(o.name, {}, "run", True) is None
    }
    assert passing, "no stateful operation passes"
    for op in passing:
        assert deny_reason(op, {}) is None
        assert not any(word in op for word in ("File", "Save", "Restore", "Summary", "Rpc"))


# ---- consent on predict and test ---------------------------------------------------------------


def _exfiltrating_model(folder: Path, secret: Path, marker: Path) -> Path:
    """A model whose serving function copies ``secret`` to ``marker`` (and doubles its input)."""

    def body(self: Any, raw: Any) -> Any:
        tf.io.write_file(str(marker), tf.io.read_file(str(secret)))
        return raw * 2.0

    folder.mkdir(parents=True, exist_ok=True)
    export = _save(_serving(body), folder / "saved_model")
    zip_folder(export, folder / "saved_model.zip")
    shutil.rmtree(export)
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    entry = {"tensorflow_version": tf.__version__.split("+")[0]}
    model = ModelDef(
        "reads and writes files",
        (TensorDef("raw", "byxc", x),),
        (TensorDef("out", "byxc", x * 2.0),),
        (WeightsDef(FORMAT, "saved_model.zip", entry, entry),),
    )
    rdf = write_model(folder, model, "0.5")
    np.save(folder / "image.npy", x)
    return rdf


@pytest.fixture
def attack(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """(URL of the served model, its folder, the marker file its graph would write)."""
    secret = tmp_path / "secret.txt"
    secret.write_text("the user's secret")
    marker = tmp_path / "exfiltrated.txt"
    served = tmp_path / "served"
    _exfiltrating_model(served, secret, marker)
    with serve_folder(served) as base_url:
        yield base_url + "rdf.yaml", served, marker


def test_remote_graph_that_touches_files_is_refused_on_predict_and_test(
    attack: tuple[str, Path, Path], tmp_path: Path
) -> None:
    url, served, marker = attack
    out = tmp_path / "out" / "{sample_id}.npy"
    predicted = run_cli("predict", url, "--inputs", served / "image.npy", "--outputs", out)
    assert predicted.exit_code == 1
    assert "refusing to run the TensorFlow graph saved_model.zip" in predicted.output
    assert "WriteFile (writes files)" in predicted.output
    assert "ReadFile (reads files)" in predicted.output
    assert "--allow-remote-code" in predicted.output
    tested = run_cli("test", url)
    assert tested.exit_code == 1 and "refusing to run" in tested.output
    with pytest.raises(RemoteCodeError, match="WriteFile"):
        bioimageio_core.predict(model=url, inputs=np.load(served / "image.npy"))
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_remote_graph_runs_with_consent(attack: tuple[str, Path, Path], tmp_path: Path) -> None:
    url, served, marker = attack
    out = tmp_path / "out" / "{sample_id}.npy"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_cli(
            "predict",
            url,
            "--inputs",
            served / "image.npy",
            "--outputs",
            out,
            "--allow-remote-code",
        )
    assert result.exit_code == 0, result.output
    assert marker.read_text() == "the user's secret"
    assert any("remote code is allowed" in str(w.message) for w in caught)
    np.testing.assert_array_equal(
        np.load(tmp_path / "out" / "image.npy"), np.load(served / "image.npy") * 2.0
    )


def test_a_local_graph_with_side_effects_runs_with_a_warning(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("local")
    marker = tmp_path / "written.txt"
    rdf = _exfiltrating_model(tmp_path / "model", secret, marker)
    x = np.load(tmp_path / "model" / "image.npy")
    with pytest.warns(UserWarning, match=r"the model is local"):
        sample = bioimageio_core.predict(model=rdf, inputs=x)
    assert marker.read_text() == "local"
    np.testing.assert_array_equal(sample.members["out"].data, x * 2.0)
