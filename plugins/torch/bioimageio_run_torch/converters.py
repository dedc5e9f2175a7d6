"""Weight converters of the torch backend (used by ``bioimageio-run add-weights``).

* ``pytorch_state_dict`` → ``torchscript``: ``torch.jit.script``; when scripting fails and the
  option ``allow_tracing`` is true (the default), ``torch.jit.trace`` with the model's test inputs.
* ``pytorch_state_dict`` → ``onnx`` and ``torchscript`` → ``onnx``: ``torch.onnx.export(...,
  dynamo=False)``. Input and output names are the tensor ids; batch axes, parameterized input
  axes and output axes without a fixed size are dynamic; the opset is the option
  ``opset_version`` (default 17).

Example inputs (for tracing and export) are the model's test inputs after its preprocessing: what
the network sees. torch is imported only when a converter runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bioimageio_core.plugin import ConverterSpec, PluginError, missing_module
from bioimageio_run_torch._errors import DISTRIBUTION
from bioimageio_run_torch.plugin import torch_missing_reason

if TYPE_CHECKING:
    import torch

    from bioimageio_core.plugin import ModelDescr, OnnxWeightsDescr, TorchscriptWeightsDescr

DEFAULT_OPSET = 17
ONNX_INSTALL_HINT = f"pip install onnx (next to {DISTRIBUTION})"


def onnx_missing_reason() -> str | None:
    """None when torch and onnx (needed by torch.onnx.export) can be imported here."""
    return torch_missing_reason() or missing_module("onnx", why="torch.onnx.export needs it")


def converter_specs() -> tuple[ConverterSpec, ...]:
    """The conversions this plugin provides."""
    return (
        ConverterSpec(
            "pytorch_state_dict",
            "torchscript",
            convert_to_torchscript,
            is_available=torch_missing_reason,
        ),
        ConverterSpec(
            "pytorch_state_dict",
            "onnx",
            convert_to_onnx,
            is_available=onnx_missing_reason,
            install_hint=ONNX_INSTALL_HINT,
        ),
        ConverterSpec(
            "torchscript",
            "onnx",
            convert_to_onnx,
            is_available=onnx_missing_reason,
            install_hint=ONNX_INSTALL_HINT,
        ),
    )


def convert_to_torchscript(
    model: ModelDescr, source_format: str, output_path: Path, options: Mapping[str, Any]
) -> TorchscriptWeightsDescr:
    """Script the network of ``pytorch_state_dict`` weights (or trace it) and save it."""
    import torch

    from bioimageio_core.plugin import TorchscriptWeightsDescr

    _expect(source_format, ("pytorch_state_dict",), "torchscript")
    module = load_module(model, source_format)
    try:
        compiled: Any = torch.jit.script(module)
        how = "torch.jit.script"
    except Exception as script_error:
        if not options.get("allow_tracing", True):
            raise PluginError(
                f"torch.jit.script failed: {type(script_error).__name__}: {script_error}",
                hint="allow tracing with the test inputs (option allow_tracing), or make the "
                "architecture scriptable",
            ) from script_error
        inputs = example_inputs(model)
        with torch.no_grad():
            compiled = torch.jit.trace(module, inputs)  # type: ignore[no-untyped-call]
        how = "torch.jit.trace with the test inputs (scripting failed)"
    compiled.save(str(output_path))
    return TorchscriptWeightsDescr(
        source=output_path.name,
        parent=source_format,
        pytorch_version=torch_version(),
        comment=f"converted from {source_format} with {how} ({DISTRIBUTION}, torch {torch_version()})",
    )


def convert_to_onnx(
    model: ModelDescr, source_format: str, output_path: Path, options: Mapping[str, Any]
) -> OnnxWeightsDescr:
    """Export the network of ``pytorch_state_dict`` or ``torchscript`` weights to ONNX."""
    import warnings

    import torch

    from bioimageio_core.plugin import OnnxWeightsDescr

    _expect(source_format, ("pytorch_state_dict", "torchscript"), "onnx")
    opset = int(options.get("opset_version", DEFAULT_OPSET))
    module = load_module(model, source_format)
    inputs = example_inputs(model)
    input_names = [str(t.id) for t in model.inputs]
    output_names = [str(t.id) for t in model.outputs]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript-based exporter
        warnings.filterwarnings("ignore", "no signature found", UserWarning)  # ScriptModules
        torch.onnx.export(
            module,
            inputs,
            str(output_path),
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes(model),
            opset_version=opset,
            dynamo=False,
        )
    return OnnxWeightsDescr(
        source=output_path.name,
        parent=source_format,
        opset_version=opset,
        comment=f"converted from {source_format} with torch.onnx.export (opset {opset}, "
        f"{DISTRIBUTION}, torch {torch_version()})",
    )


def torch_version() -> str:
    """The installed torch version without a local suffix (``2.13.0+cpu`` → ``2.13.0``)."""
    import torch

    return str(torch.__version__).split("+")[0]


def load_module(model: ModelDescr, weights_format: str) -> torch.nn.Module:
    """The network of ``model``'s ``weights_format`` entry on the CPU, in eval mode."""
    import torch

    from bioimageio_core.plugin import AdapterRequest, model_file

    entry = model.weights[weights_format]
    weights = model_file(model, entry.source, entry.sha256)
    module: torch.nn.Module
    if weights_format == "torchscript":
        module = torch.jit.load(str(weights), map_location="cpu")  # type: ignore[no-untyped-call]
    else:
        from bioimageio_run_torch.architecture import build_architecture

        module = build_architecture(
            AdapterRequest.for_model(model, weights_format, devices=("cpu",))
        )
        state = torch.load(str(weights), map_location="cpu", weights_only=True)
        module.load_state_dict(state, strict=True)
    return module.eval()


def example_inputs(model: ModelDescr) -> tuple[torch.Tensor, ...]:
    """The model's test inputs after its preprocessing, as CPU tensors in input order."""
    import numpy as np
    import torch

    from bioimageio_core.plugin import InputError, preprocessed_test_inputs

    try:
        processed = preprocessed_test_inputs(model)
    except InputError as e:
        raise PluginError(
            f"{e.message}; tracing and ONNX export need one per input", loc=e.loc
        ) from e
    return tuple(
        torch.from_numpy(np.ascontiguousarray(processed[str(t.id)])) for t in model.inputs
    )


def dynamic_axes(model: ModelDescr) -> dict[str, dict[int, str]]:
    """ONNX dynamic axes: batch axes, parameterized input axes, outputs without a fixed size."""
    from bioimageio_core.plugin import spec

    result: dict[str, dict[int, str]] = {}
    for t in model.inputs:
        axes = {
            i: f"{t.id}_{a.id}"
            for i, a in enumerate(t.axes)
            if (a.type == "batch" and a.size is None) or isinstance(a.size, spec.ParameterizedSize)
        }
        if axes:
            result[str(t.id)] = axes
    for out in model.outputs:
        axes = {
            i: f"{out.id}_{a.id}"
            for i, a in enumerate(out.axes)
            if not isinstance(getattr(a, "size", None), int)
        }
        if axes:
            result[str(out.id)] = axes
    return result


def _expect(source_format: str, sources: tuple[str, ...], target: str) -> None:
    if source_format not in sources:
        raise PluginError(
            f"{DISTRIBUTION} converts {', '.join(sources)} to {target}, not {source_format}"
        )
