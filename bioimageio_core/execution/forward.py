"""Forward: the model call of a batch of blocks, and the outputs of each block."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from bioimageio_core.errors import PluginError, ServerError
from bioimageio_core.execution.batch import unstack
from bioimageio_core.execution.read import Array

if TYPE_CHECKING:
    from bioimageio_core.adapters import ModelAdapter

Call = tuple[Mapping[str, Array], int, int]
"""One forward call of blockwise prediction: the blocks' data stacked on the batch axis, the
number of blocks stacked and how many of them are real (the rest fill the batch up)."""


class Forward:
    """Runs a model's forward calls on stacked blocks and hands back each block's outputs.

    One call per batch; when the model rejects a batch its description allows (e.g. a graph
    exported with batch size 1), it warns once and runs one call per block from then on (the
    state lives as long as this object: one per pipeline).
    """

    def __init__(
        self,
        weights_format: str,
        input_axes: Mapping[str, tuple[str, ...]],
        output_axes: Mapping[str, tuple[str, ...]],
    ) -> None:
        self.weights_format = weights_format
        self.input_axes = dict(input_axes)
        self.output_axes = dict(output_axes)
        self.batching_failed = False

    def __call__(
        self, adapter: ModelAdapter, arrays: Mapping[str, Array], n_stacked: int, n_blocks: int
    ) -> list[dict[str, Array]]:
        """Outputs (by output id) of the first ``n_blocks`` of ``n_stacked`` blocks stacked on the
        batch axis of ``arrays``.

        Raises:
            PluginError: the model did not return every output.
        """
        return self.calls(adapter, [(arrays, n_stacked, n_blocks)])[0]

    def calls(self, adapter: ModelAdapter, calls: Sequence[Call]) -> list[list[dict[str, Array]]]:
        """The outputs of each block of each of ``calls`` (consecutive batches), handed to the
        adapter together (:meth:`ModelAdapter.forward_calls`).

        Raises:
            PluginError: the model did not return every output.
        """
        batched = any(n_stacked > 1 for _, n_stacked, _ in calls)
        if not (batched and self.batching_failed):
            try:
                raws = self._forward(adapter, [arrays for arrays, _, _ in calls])
            except ServerError:
                raise  # an unreachable server or a refused token is no batch-size problem
            except Exception as e:
                if not batched:
                    raise
                self.batching_failed = True
                largest = max(n_stacked for _, n_stacked, _ in calls)
                warnings.warn(
                    f"the {self.weights_format} model failed on a batch of {largest} blocks "
                    f"({type(e).__name__}: {e}); running one block per call instead",
                    stacklevel=3,
                )
            else:
                return [
                    [self.checked(self._part(raw, i, n_stacked)) for i in range(n_blocks)]
                    for raw, (_, n_stacked, n_blocks) in zip(raws, calls, strict=True)
                ]
        blocks = [
            [
                {m: unstack(a, self.input_axes[m], i, n_stacked) for m, a in arrays.items()}
                for i in range(n_blocks)
            ]
            for arrays, n_stacked, n_blocks in calls
        ]
        each = iter(self._forward(adapter, [inputs for call in blocks for inputs in call]))
        return [[self.checked(next(each)) for _ in call] for call in blocks]

    def _forward(
        self, adapter: ModelAdapter, calls: list[Mapping[str, Array]]
    ) -> Sequence[Mapping[str, Array]]:
        if len(calls) == 1:
            return [adapter.forward(calls[0])]
        raws = adapter.forward_calls(calls)
        if len(raws) != len(calls):
            raise PluginError(
                f"the {self.weights_format} adapter answered {len(raws)} of {len(calls)} "
                "forward calls"
            )
        return raws

    def _part(self, raw: Mapping[str, Array], i: int, n_stacked: int) -> dict[str, Array]:
        """Block ``i``'s part of the outputs of a call on ``n_stacked`` stacked blocks."""
        return {
            oid: unstack(np.asarray(a), self.output_axes[oid], i, n_stacked)
            for oid, a in raw.items()
            if oid in self.output_axes
        }

    def checked(self, raw: Mapping[str, Array]) -> dict[str, Array]:
        """The outputs of one block as arrays, in output order.

        Raises:
            PluginError: the model did not return every output.
        """
        absent = [oid for oid in self.output_axes if oid not in raw]
        if absent:
            raise PluginError(
                f"the {self.weights_format} model returned no output(s) {absent} "
                f"(it returned {sorted(raw)})"
            )
        return {oid: np.asarray(raw[oid]) for oid in self.output_axes}


__all__ = ["Call", "Forward"]
