"""Adapter for ``torchscript`` weights: ``torch.jit.load(file, map_location=device)``."""

from __future__ import annotations

import warnings

import torch

from bioimageio_run_torch._adapter import TorchAdapter


class TorchscriptAdapter(TorchAdapter):
    """Runs a TorchScript archive (scripted or traced) on one device."""

    weights_format = "torchscript"

    def _load(self) -> torch.nn.Module:
        path = self._weights_path()
        try:
            with warnings.catch_warnings():
                # torch >= 2.9 deprecates TorchScript; the format itself is what the model provides
                warnings.filterwarnings(
                    "ignore", "`torch.jit.load` is deprecated", DeprecationWarning
                )
                module: torch.nn.Module = torch.jit.load(  # type: ignore[no-untyped-call]
                    str(path), map_location=self.device
                )
        except Exception as error:
            raise self._error(
                f"the file is not a TorchScript archive torch {torch.__version__} can load: "
                f"{type(error).__name__}: {error}",
                loc=self._loc("source"),
                hint="torchscript weights are written with torch.jit.save(torch.jit.script(model) "
                "or torch.jit.trace(model, example), path)",
            ) from error
        return module
