"""Match a graph's input/output names to the tensor ids of a description.

Rule (documented in the README): when the graph's names are exactly the description's tensor ids,
tensors are matched by name; otherwise they are matched by position (the graph's declared order
against the order of ``inputs`` / ``outputs`` in the description).
"""

from __future__ import annotations

from collections.abc import Sequence

from bioimageio_core.errors import PluginError


def match_names(
    graph_names: Sequence[str], tensor_ids: Sequence[str], *, what: str, source: str
) -> tuple[str, ...]:
    """Return the graph names in description order (one per tensor id).

    ``what`` is "inputs" or "outputs"; ``source`` names the weights file for error messages.
    """
    if sorted(graph_names) == sorted(tensor_ids):
        return tuple(tensor_ids)
    if len(graph_names) != len(tensor_ids):
        raise PluginError(
            f"the onnx graph in {source} has {len(graph_names)} {what} {list(graph_names)}, but "
            f"the description declares {len(tensor_ids)}: {list(tensor_ids)}",
            hint=f"the description's {what} must match the graph's {what} in number and order",
        )
    return tuple(graph_names)
