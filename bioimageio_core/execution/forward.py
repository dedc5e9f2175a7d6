"""Forward: the model call of a batch of blocks, and the outputs of each block."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from bioimageio_core.errors import PluginError, ServerError
from bioimageio_core.execution.batch import unstack
from bioimageio_core.execution.read import Array

if TYPE_CHECKING:
    from bioimageio_core.adapters import ModelAdapter


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
        return [self.checked(raw) for raw in self._run(adapter, arrays, n_stacked, n_blocks)]

    def _run(
        self, adapter: ModelAdapter, arrays: Mapping[str, Array], n_stacked: int, n_blocks: int
    ) -> list[Mapping[str, Array]]:
        if n_stacked == 1:
            return [adapter.forward(arrays)]
        if not self.batching_failed:
            try:
                raw = adapter.forward(arrays)
            except ServerError:
                raise  # an unreachable server or a refused token is no batch-size problem
            except Exception as e:
                self.batching_failed = True
                warnings.warn(
                    f"the {self.weights_format} model failed on a batch of {n_stacked} blocks "
                    f"({type(e).__name__}: {e}); running one block per call instead",
                    stacklevel=7,
                )
            else:
                return [
                    {
                        oid: unstack(np.asarray(a), self.output_axes[oid], i, n_stacked)
                        for oid, a in raw.items()
                        if oid in self.output_axes
                    }
                    for i in range(n_blocks)
                ]
        return [
            adapter.forward(
                {m: unstack(a, self.input_axes[m], i, n_stacked) for m, a in arrays.items()}
            )
            for i in range(n_blocks)
        ]

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


__all__ = ["Forward"]
