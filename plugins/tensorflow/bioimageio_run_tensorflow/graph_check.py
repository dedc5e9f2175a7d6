"""Inspect a SavedModel's graphs for operations with effects outside the computation.

A SavedModel is a program: besides math it can hold operations that read or write files
(``ReadFile``, ``WriteFile``, ``MatchingFiles``, checkpoint ``SaveV2``), run Python (``PyFunc``),
talk to other machines (``Rpc*``, collectives), write summaries or debug dumps, or feed an input
pipeline. :func:`find_side_effects` reads ``saved_model.pb`` (nothing is loaded or run) and lists
every such operation in every meta graph: the top-level graph and every function of its library.

The rule is an allow-list for side effects plus a deny-list for the side effects TensorFlow calls
pure. TensorFlow marks every operation with an effect beyond its outputs as *stateful*; a stateful
operation passes only when it is on :data:`STATEFUL_ALLOWED` (variables, random numbers, control
flow, calls, assertions, in-memory tables and tensor arrays: effects inside the process). Some
operations that touch files are registered as stateless (``ReadFile``, ``MatchingFiles``,
``ImmutableConst``, the debug ops, most ``*Dataset`` ops): :func:`deny_reason` names those, and
every operation TensorFlow does not know (a custom op library) is refused too. A new or rare
stateful operation therefore needs consent until it is reviewed and listed, rather than running
unnoticed.

Checkpoint operations are where the loader uses them: ``RestoreV2`` may appear in what the saver
runs to restore variables (``saver_def.restore_op_name`` and the object graph's restore
functions), ``SaveV2`` / ``MergeV2Checkpoints`` only in what saves (``saver_def.save_tensor_name``,
the object graph's save functions), which loading and prediction never run. Anything reachable
from elsewhere (the signatures, initialisers, unreferenced functions) gets no such exception.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from bioimageio_core.plugin import SourceError

Region = Literal["run", "restore", "save"]
"""Where an operation sits: ``run`` (may run on load or prediction), ``restore`` (only in the
variables' restore path), ``save`` (only in the save path, never run here)."""

Statefulness = Callable[[str], "bool | None"]
"""``op type -> is_stateful`` from the op registry; None for an op type TensorFlow does not know."""

STATEFUL_ALLOWED_NAMES = frozenset(
    {
        # variables (resource and reference variables) and their reads / assignments
        "VarHandleOp", "_VarHandlesOp", "ReadVariableOp", "_ReadVariablesOp",
        "AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp", "VarIsInitializedOp",
        "VariableShape", "DestroyResourceOp", "DisableCopyOnRead", "Variable", "VariableV2",
        "TemporaryVariable", "DestroyTemporaryVariable", "IsVariableInitialized",
        # calls and control flow (the functions they call are checked themselves)
        "StatefulPartitionedCall", "If", "While", "Case", "_If", "_While",
        "_Arg", "_Retval", "_DeviceArg", "_DeviceRetval",
        # checks and logging to the standard streams (PrintV2: see deny_reason)
        "Assert", "CheckNumerics", "CheckNumericsV2", "Print", "PrintV2",
        # memory and process information
        "Empty", "GuaranteeConst", "DeepCopy", "_ParallelConcatStart", "Timestamp",
        "DeviceIndex", "GraphDefVersion", "IsTensorFloat32Enabled",
        # in-memory lookup tables (file initialisers are denied)
        "HashTable", "HashTableV2", "MutableHashTable", "MutableHashTableV2",
        "MutableHashTableOfTensors", "MutableHashTableOfTensorsV2", "MutableDenseHashTable",
        "MutableDenseHashTableV2", "AnonymousHashTable", "AnonymousMutableHashTable",
        "AnonymousMutableHashTableOfTensors", "AnonymousMutableDenseHashTable",
        "InitializeTable", "InitializeTableV2",
        # mutexes
        "MutexV2", "MutexLock", "ConsumeMutexLock",
        # random numbers
        "Multinomial", "TruncatedNormal", "ParameterizedTruncatedNormal", "NonDeterministicInts",
        "RngSkip", "RngReadAndSkip", "StatelessRandomGetAlg", "AnonymousSeedGenerator",
        "AnonymousRandomSeedGenerator", "DummySeedGenerator", "DeleteSeedGenerator",
        "DeleteRandomSeedGenerator", "SampleDistortedBoundingBox", "SampleDistortedBoundingBoxV2",
    }
)  # fmt: skip
"""Stateful operations whose effects stay inside the process's own memory."""

STATEFUL_ALLOWED_PATTERN = re.compile(
    r"^(Random\w*|Stateful(Uniform|StandardNormal|TruncatedNormal|RandomBinomial)\w*"
    r"|\w*CandidateSampler|LookupTable\w*|TensorArray\w*|Stack(V2|PushV2|PopV2|CloseV2)?"
    r"|Resource(Gather|GatherNd|Scatter\w*|StridedSliceAssign|CountUpTo)|CudnnRNN\w*)$"
)
"""Families of in-memory stateful operations (random numbers, tables, tensor arrays, stacks,
variable updates, cuDNN recurrent layers)."""

CHECKPOINT_READ = frozenset({"Restore", "RestoreV2", "RestoreSlice", "DTensorRestoreV2"})
CHECKPOINT_WRITE = frozenset(
    {"Save", "SaveV2", "SaveSlices", "MergeV2Checkpoints", "DistributedSave"}
)

_DENIED: Mapping[str, str] = {
    **dict.fromkeys(("PyFunc", "PyFuncStateless", "EagerPyFunc"), "runs Python code"),
    **dict.fromkeys(
        (
            "ReadFile",
            "MatchingFiles",
            "ImmutableConst",
            "InitializeTableFromTextFile",
            "InitializeTableFromTextFileV2",
            "LoadAndRemapMatrix",
            "GenerateVocabRemapping",
        ),
        "reads files",
    ),
    "WriteFile": "writes files",
    **dict.fromkeys(
        ("Copy", "CopyHost", "DumpTensor"), "debug operation: writes tensors to files or over the network"
    ),
    **dict.fromkeys(
        ("XlaCustomCall", "XlaCustomCallV2", "XlaCallModule", "XlaHostCompute"),
        "runs compiled code that cannot be inspected (custom calls, host callbacks)",
    ),
    **dict.fromkeys(("SleepOp", "SleepIdentityOp"), "blocks the process"),
}
_SUMMARY = re.compile(
    r"^(Write\w*Summary|CreateSummary\w*Writer|SummaryWriter|FlushSummaryWriter"
    r"|CloseSummaryWriter|ImportEvent|\w*StatsAggregator\w*)$"
)
_PIPELINE = re.compile(r"Dataset|Iterator|^Reader|Reader(V2)?$|^(\w*Queue\w*|Barrier\w*)$")
_NETWORK = re.compile(
    r"^_?(Rpc\w*|Collective\w*|Nccl\w*|Send|Recv|HostSend|HostRecv|RemoteCall|Xla(Send|Recv)\w*"
    r"|_XlaSendFromHost\w*|_XlaRecvAtHost\w*|Infeed\w*|Outfeed\w*|WorkerHeartbeat)$"
)
_STD_STREAMS = frozenset({"stderr", "stdout", "log(info)", "log(warning)", "log(error)"})
_PROTO_OPS = frozenset({"DecodeProtoV2", "EncodeProto"})


def deny_reason(op: str, attr: Mapping[str, Any]) -> str | None:
    """Why ``op`` (with its node's attributes) is refused whatever TensorFlow says; else None.

    ``attr`` maps attribute names to ``AttrValue`` protos (only ``PrintV2.output_stream`` and the
    proto ops' ``descriptor_source`` are read).
    """
    if op in _DENIED:
        return _DENIED[op]
    if op.startswith("Debug"):
        return "debug operation: writes tensors to files or over the network"
    if _SUMMARY.match(op):
        return "writes summaries to files"
    if _PIPELINE.search(op):
        return "input pipeline operation (datasets, readers, queues read files or block)"
    if _NETWORK.match(op):
        return "communicates with other processes or machines"
    if op == "PrintV2":
        stream = _string_attr(attr, "output_stream", "stderr")
        if stream not in _STD_STREAMS:
            return f"prints to {stream!r} (writes a file)"
    if op in _PROTO_OPS:
        source = _string_attr(attr, "descriptor_source", "local://")
        if source != "local://" and not source.startswith("bytes://"):
            return f"reads the protocol buffer descriptor file {source!r}"
    return None


def classify(op: str, attr: Mapping[str, Any], region: Region, stateful: bool | None) -> str | None:
    """Why an operation of type ``op`` in ``region`` is a side effect to ask about; else None."""
    if op in CHECKPOINT_READ:
        return None if region in ("restore", "save") else "reads checkpoint files"
    if op in CHECKPOINT_WRITE:
        return None if region == "save" else "writes checkpoint files"
    reason = deny_reason(op, attr)
    if reason is not None:
        return reason
    if stateful is None:
        return "not an operation of this TensorFlow (a custom operation library would run)"
    if stateful and op not in STATEFUL_ALLOWED_NAMES and not STATEFUL_ALLOWED_PATTERN.match(op):
        return "has side effects (a stateful operation not known to be harmless)"
    return None


@attrs.frozen
class Finding:
    """One operation with a side effect: its type, node name, where it is, and why."""

    op: str
    node: str
    where: str
    """``"graph"`` (the top-level graph) or ``"function <name>"``."""
    reason: str

    def __str__(self) -> str:
        return f"{self.op} ({self.reason}) at {self.node!r} in the {self.where}"


def find_side_effects(folder: Path, stateful: Statefulness | None = None) -> tuple[Finding, ...]:
    """Every operation with a side effect in the SavedModel in ``folder`` (nothing is run).

    ``stateful`` defaults to TensorFlow's op registry (:func:`registry_statefulness`).
    """
    lookup = stateful if stateful is not None else registry_statefulness()
    saved_model = read_saved_model(folder)
    findings: dict[tuple[str, str, str], Finding] = {}
    for meta_graph in saved_model.meta_graphs:
        for finding in _meta_graph_findings(meta_graph, lookup):
            findings.setdefault((finding.op, finding.node, finding.where), finding)
    return tuple(findings.values())


def registry_statefulness() -> Statefulness:
    """``op type -> is_stateful`` from the running TensorFlow's op registry (imports tensorflow).

    TensorFlow offers no public API for op definitions; this is the registry module its own
    ``saved_model_cli`` uses.
    """
    from tensorflow.python.framework import op_def_registry

    def lookup(op: str) -> bool | None:
        op_def = op_def_registry.get(op)
        return None if op_def is None else bool(op_def.is_stateful)

    return lookup


def read_saved_model(folder: Path) -> Any:
    """The ``SavedModel`` protocol buffer of ``folder`` (``saved_model.pb`` or ``.pbtxt``)."""
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    binary, text = folder / "saved_model.pb", folder / "saved_model.pbtxt"
    try:
        if binary.is_file():
            proto.ParseFromString(binary.read_bytes())
        else:
            text_format.Parse(text.read_text(encoding="utf-8"), proto)
    except Exception as error:  # protobuf raises DecodeError / ParseError / OSError
        raise SourceError(
            f"cannot read the SavedModel graph in {folder.name}: {type(error).__name__}: {error}",
            hint="the zip must hold a folder written by tf.saved_model.save or model.export",
        ) from error
    return proto


# ---- the graph walk ----------------------------------------------------------------------------

_Item = tuple[Literal["graph", "function"], str]


def _meta_graph_findings(meta_graph: Any, stateful: Statefulness) -> Iterator[Finding]:
    graph = meta_graph.graph_def
    functions = {f.signature.name: f for f in graph.library.function}
    nodes = {n.name: n for n in graph.node}
    edges: dict[_Item, set[_Item]] = {}
    for node in graph.node:
        targets: set[_Item] = {("graph", _node_name(i)) for i in node.input}
        targets |= {("function", f) for f in _callees(node, functions)}
        edges[("graph", node.name)] = {t for t in targets if t[0] == "function" or t[1] in nodes}
    for name, function in functions.items():
        edges[("function", name)] = {
            ("function", f) for node in function.node_def for f in _callees(node, functions)
        }
    save_roots, restore_roots = _saver_roots(meta_graph, nodes, functions)
    saving = _closure(save_roots, edges)
    restoring = _closure(restore_roots, edges)
    running = _closure((item for item in edges if item not in saving | restoring), edges)

    def region(item: _Item) -> Region:
        if item in running:
            return "run"
        return "restore" if item in restoring else "save"

    for node in graph.node:
        where = region(("graph", node.name))
        yield from _check_node(node, where, "graph", functions, stateful)
    for name, function in functions.items():
        where = region(("function", name))
        for node in function.node_def:
            yield from _check_node(node, where, f"function {name}", functions, stateful)


def _check_node(
    node: Any, region: Region, where: str, functions: Mapping[str, Any], stateful: Statefulness
) -> Iterator[Finding]:
    if node.op in functions:  # a direct call; the function is checked on its own
        return
    reason = classify(node.op, node.attr, region, stateful(node.op))
    if reason is not None:
        yield Finding(node.op, node.name, where, reason)


def _saver_roots(
    meta_graph: Any, nodes: Mapping[str, Any], functions: Mapping[str, Any]
) -> tuple[set[_Item], set[_Item]]:
    """What the saver runs to save, and to restore (graph nodes and library functions)."""
    save: set[_Item] = set()
    restore: set[_Item] = set()
    saver = meta_graph.saver_def
    for tensor, target in ((saver.save_tensor_name, save), (saver.restore_op_name, restore)):
        name = _node_name(tensor) if tensor else ""
        if name in nodes:
            target.add(("graph", name))
    objects = meta_graph.object_graph_def.nodes
    for obj in objects:
        for saveable in obj.saveable_objects.values():
            for node_id, target in ((saveable.save_function, save), (saveable.restore_function, restore)):
                if 0 <= node_id < len(objects):
                    target |= {("function", f) for f in _object_functions(objects[node_id]) if f in functions}
    return save, restore


def _object_functions(obj: Any) -> Iterable[str]:
    kind = obj.WhichOneof("kind")
    if kind == "bare_concrete_function":
        return (obj.bare_concrete_function.concrete_function_name,)
    if kind == "function":
        return tuple(obj.function.concrete_functions)
    return ()


def _callees(node: Any, functions: Mapping[str, Any]) -> set[str]:
    """Functions a node calls: its op type when that names a function, and every function
    attribute (``f``, ``then_branch``, ``body``, ``branches`` …, also nested ones)."""
    found = {node.op} if node.op in functions else set()
    stack = list(node.attr.values())
    while stack:
        value = stack.pop()
        kind = value.WhichOneof("value")
        if kind == "func":
            found.add(value.func.name)
            stack.extend(value.func.attr.values())
        elif kind == "list":
            for func in value.list.func:
                found.add(func.name)
                stack.extend(func.attr.values())
    return {f for f in found if f in functions}


def _closure(start: Iterable[_Item], edges: Mapping[_Item, set[_Item]]) -> set[_Item]:
    seen: set[_Item] = set()
    stack = list(start)
    while stack:
        item = stack.pop()
        if item in seen:
            continue
        seen.add(item)
        stack.extend(edges.get(item, ()))
    return seen


def _node_name(tensor: str) -> str:
    """``"^name"`` / ``"name:0"`` / ``"name"`` → ``"name"``."""
    return tensor.lstrip("^").split(":", 1)[0]


def _string_attr(attr: Mapping[str, Any], name: str, default: str) -> str:
    if name not in attr:  # (indexing a protobuf map would add the key)
        return default
    raw = attr[name].s
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
