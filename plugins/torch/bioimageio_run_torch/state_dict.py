"""Adapter for ``pytorch_state_dict`` weights: architecture + ``torch.load(weights_only=True)``."""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Mapping, Sequence

import torch

from bioimageio_core.plugin import loc_to_path
from bioimageio_run_torch._adapter import TorchAdapter
from bioimageio_run_torch.architecture import build_architecture

_SHOW_KEYS = 20


class PytorchStateDictAdapter(TorchAdapter):
    """Builds the architecture, moves it to the device and loads the state dict.

    The state dict is read with ``weights_only=True``, so a file that holds anything but tensors
    and plain containers (a pickle payload) is refused. Loading is strict unless the entry says
    ``strict: false`` (model format 0.5.8+): then missing and unexpected keys are reported in a
    warning and the parameters not in the file keep the values the architecture gave them. A
    parameter whose shape differs is an error either way.
    """

    weights_format = "pytorch_state_dict"

    def _load(self) -> torch.nn.Module:
        module = build_architecture(self.request).to(self.device)
        state = self._read_state_dict()
        try:
            result = module.load_state_dict(state, strict=False)
        except RuntimeError as error:
            raise self._error(
                f"the state dict does not fit the architecture: {error}",
                loc=self._loc("source"),
                hint="check the architecture's kwargs (e.g. the number of channels)",
            ) from error
        finally:
            del state
        if result.missing_keys or result.unexpected_keys:
            keys = (
                f"missing keys {_show(result.missing_keys)}, "
                f"unexpected keys {_show(result.unexpected_keys)}"
            )
            if not self.strict:
                warnings.warn(
                    f"{self.weights_format} weights {str(self.request.weights.source)!r}: loaded "
                    f"non-strictly ({loc_to_path(self._loc('strict'))} is false): {keys}",
                    stacklevel=2,
                )
                return module
            raise self._error(
                f"the state dict does not fit the architecture: {keys}",
                loc=self._loc("source"),
                hint="the weights belong to a different architecture or kwargs (a state dict "
                "saved from a wrapper such as DataParallel has keys prefixed with 'module.'); "
                "if the model is meant to load only part of its parameters, its description "
                "says `strict: false`",
            )
        return module

    @property
    def strict(self) -> bool:
        """Whether missing or unexpected keys are an error (the entry's ``strict``, default True)."""
        return bool(getattr(self.request.weights, "strict", True))

    def _read_state_dict(self) -> Mapping[str, torch.Tensor]:
        path = self._weights_path()
        try:
            state = torch.load(str(path), map_location=self.device, weights_only=True)
        except pickle.UnpicklingError as error:
            raise self._error(
                f"the file holds objects other than tensors, which are not loaded for safety "
                f"(weights_only=True): {error}",
                loc=self._loc("source"),
                hint="save the weights with torch.save(model.state_dict(), path)",
            ) from error
        except Exception as error:
            raise self._error(
                f"torch {torch.__version__} cannot load the file: {type(error).__name__}: {error}",
                loc=self._loc("source"),
            ) from error
        if not isinstance(state, Mapping):
            raise self._error(
                f"the file holds a {type(state).__name__}, not a state dict",
                loc=self._loc("source"),
                hint="save the weights with torch.save(model.state_dict(), path)",
            )
        return state


def _show(keys: Sequence[str]) -> str:
    shown = sorted(keys)[:_SHOW_KEYS]
    more = len(keys) - len(shown)
    return f"{shown}" + (f" and {more} more" if more > 0 else "")
