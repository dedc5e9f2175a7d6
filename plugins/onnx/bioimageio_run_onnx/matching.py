"""Match a graph's input/output names to the tensor ids of a description.

Rule (documented in the README): when the graph's names are exactly the description's tensor ids,
tensors are matched by name; otherwise they are matched by position (the graph's declared order
against the order of ``inputs`` / ``outputs`` in the description).
"""

from __future__ import annotations

from collections.abc import Sequence

from bioimageio_core.plugin import match_tensors


def match_names(
    graph_names: Sequence[str], tensor_ids: Sequence[str], *, what: str, source: str
) -> tuple[str, ...]:
    """Return the graph names in description order (one per tensor id).

    ``what`` is "inputs" or "outputs"; ``source`` names the weights file for error messages.
    """
    positions = match_tensors(
        graph_names, tensor_ids, what=what, holder=f"the onnx graph in {source}", noun="graph"
    )
    return tuple(graph_names[i] for i in positions)
