"""Weight format ``linear_npz``: a per-pixel linear map across channels, stored in an ``.npz`` file.

The file holds ``weight`` (shape ``(out_channels, in_channels)``) and ``bias`` (``(out_channels,)``);
the model computes ``out[c] = sum_k weight[c, k] * in[k] + bias[c]`` at every pixel. The model has
one input and one output, each with one channel axis; all other axes pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from bioimageio_core.plugin import AdapterRequest, ModelAdapter, PluginError, WeightsEntryDescrBase

FORMAT = "linear_npz"


@attrs.frozen(kw_only=True)
class LinearNpzWeightsDescr(WeightsEntryDescrBase):
    """A ``weights: linear_npz:`` entry.

    Fields of every weights entry (``source``, ``sha256``, ``authors``, ``parent``, ``comment``)
    come from :class:`WeightsEntryDescrBase`; this format adds ``layout``.
    """

    layout: str = attrs.field(default="out_in", validator=attrs.validators.in_(("out_in", "in_out")))
    """How ``weight`` is stored: ``out_in`` (``(out_channels, in_channels)``) or transposed."""

    def __attrs_post_init__(self) -> None:
        if not self.source.lower().endswith(".npz"):
            raise ValueError(f"'source' must be an .npz file (got {self.source!r})")


def _channel_index(axes: Any, where: str) -> int:
    """Position of the one channel axis of a tensor description."""
    found = [i for i, axis in enumerate(axes) if axis.type == "channel"]
    if len(found) != 1:
        raise PluginError(
            f"{FORMAT} models need exactly one channel axis in {where} (found {len(found)})",
            loc=f"{where}.axes",
            hint="describe the channels with an axis of type 'channel'",
        )
    return found[0]


class LinearNpzAdapter(ModelAdapter):
    """Runs ``linear_npz`` weights with numpy."""

    weights_format = FORMAT

    def __init__(self, request: AdapterRequest[LinearNpzWeightsDescr]) -> None:
        super().__init__(request)
        if len(self.input_ids) != 1 or len(self.output_ids) != 1:
            raise PluginError(
                f"{FORMAT} models have one input and one output (this one has "
                f"{len(self.input_ids)} and {len(self.output_ids)})",
                loc="inputs",
            )
        entry = request.weights  # a LinearNpzWeightsDescr, typed by the request
        # open_file resolves the reference against the description's root (folder, zip or URL),
        # downloads into the cache when needed and checks sha256
        path = request.open_file(entry.source, entry.sha256)
        try:
            with np.load(path) as npz:
                weight = np.asarray(npz["weight"], dtype=np.float32)
                bias = np.asarray(npz["bias"], dtype=np.float32)
        except (OSError, KeyError, ValueError) as e:
            raise PluginError(
                f"could not read {FORMAT} weights {entry.source}: {e}",
                loc=f"weights.{FORMAT}.source",
                hint="the file must be an .npz with arrays 'weight' and 'bias'",
            ) from e
        self.weight = weight.T if entry.layout == "in_out" else weight
        self.bias = bias
        self.loaded = True
        model = request.model
        self._in_axis = _channel_index(model.inputs[0].axes, "inputs[0]")
        self._out_axis = _channel_index(model.outputs[0].axes, "outputs[0]")
        n_in = model.inputs[0].axes[self._in_axis].size
        n_out = model.outputs[0].axes[self._out_axis].size
        if self.weight.shape != (n_out, n_in) or self.bias.shape != (n_out,):
            raise PluginError(
                f"{FORMAT} weights {entry.source} have weight {self.weight.shape} and bias "
                f"{self.bias.shape}, but the description declares {n_in} input and {n_out} "
                f"output channels (expected weight {(n_out, n_in)}, bias {(n_out,)})",
                loc=f"weights.{FORMAT}.source",
            )

    def forward(self, inputs: Mapping[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
        if not self.loaded:
            raise PluginError(f"the {FORMAT} model was unloaded", hint="create a new adapter")
        (x,) = self.ordered_inputs(inputs)
        if x is None:
            raise PluginError(f"input {self.input_ids[0]!r} is missing")
        channels_last = np.moveaxis(np.asarray(x, dtype=np.float32), self._in_axis, -1)
        y = channels_last @ self.weight.T + self.bias
        return self.outputs_by_id([np.moveaxis(y, -1, self._out_axis)])

    def unload(self) -> None:
        """Forget the model; a framework backend frees its (GPU) memory here. Idempotent."""
        self.loaded = False


def create_adapter(request: AdapterRequest[LinearNpzWeightsDescr]) -> ModelAdapter:
    """The ``create_adapter`` of the format (a framework backend would import it here)."""
    return LinearNpzAdapter(request)
