"""End-to-end test models for plugin authors: one definition written as a 0.5 and as an
equivalent 0.4 description, then tested and run through the ``bioimageio-run`` CLI.

A :class:`ModelDef` names its tensors (axis letters ``b``, ``c``, ``y``, ``x`` in array order and
a test array each), how their spatial sizes are described (fixed, parameterized, or relative to
another tensor with a scale and a halo) and its weights files. :func:`write_model` writes the
test tensors, a README and the description (``format_version`` 0.5.4 or 0.4.10) into a folder.
:func:`run_cli` runs a ``bioimageio-run`` command in-process.

Import it from tests only: it imports the CLI and click's test runner.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np
import yaml
from click.testing import CliRunner, Result

from bioimageio_core.cli import main

SPACE = "yx"


@attrs.frozen
class Param:
    """A parameterized spatial size ``min + n * step`` (inputs only)."""

    min: int
    step: int


@attrs.frozen
class Ref:
    """Spatial sizes relative to another tensor: ``size = ref_size * scale``.

    In a 0.5 description ``scale`` becomes the axis' physical scale ``1 / scale`` (the referenced
    tensor's axes have scale 1); in 0.4 it is the shape's ``scale``.
    """

    tensor: str
    scale: float = 1.0


@attrs.frozen(eq=False)  # holds arrays
class TensorDef:
    """One tensor: id, axis letters in array order, test array, size and halo of ``y`` and ``x``.

    ``size`` None means fixed at the test array's size. ``halo`` is in this tensor's pixels
    (outputs only).
    """

    id: str
    axes: str
    test: np.ndarray[Any, Any]
    size: Param | Ref | None = None
    halo: int = 0

    def __attrs_post_init__(self) -> None:
        assert len(self.axes) == self.test.ndim, (self.id, self.axes, self.test.shape)

    def channels(self) -> int:
        return int(self.test.shape[self.axes.index("c")]) if "c" in self.axes else 1


@attrs.frozen
class WeightsDef:
    """One weights entry: its file (next to the description) and the format's other fields."""

    format: str
    source: str
    v05: Mapping[str, Any] = attrs.field(factory=dict)
    v04: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(eq=False)  # holds arrays
class ModelDef:
    name: str
    inputs: tuple[TensorDef, ...]
    outputs: tuple[TensorDef, ...]
    weights: tuple[WeightsDef, ...]

    def tensor(self, tensor_id: str) -> TensorDef:
        (found,) = [t for t in (*self.inputs, *self.outputs) if t.id == tensor_id]
        return found


Version = Literal["0.5", "0.4"]


def sha256_of(path: Path) -> str:
    """The sha256 hex digest of a file (read now: tests rewrite files in place)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_model(
    folder: Path, model: ModelDef, version: Version, *, wrong_output: str | None = None
) -> Path:
    """Write ``model``'s test tensors and its description in ``version`` into ``folder``.

    With ``wrong_output`` the test tensor of that output is written off by one (its sha256 is
    that of the written file, so only the numbers are wrong). Returns the description's path.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text(f"# {model.name}\n\nA test model of bioimageio-run.\n")
    files: dict[str, str] = {}
    for t in (*model.inputs, *model.outputs):
        array = t.test + 1 if t.id == wrong_output else t.test
        name = f"test_{t.id}.npy"
        np.save(folder / name, array)
        files[t.id] = name
    writer = _rdf_v05 if version == "0.5" else _rdf_v04
    rdf = writer(folder, model, files)
    path = description_path(folder, version)
    path.write_text(yaml.safe_dump(rdf, sort_keys=False))
    return path


def _common(model: ModelDef) -> dict[str, Any]:
    return {
        "type": "model",
        "name": model.name,
        "description": f"{model.name}, built by the end-to-end tests",
        "authors": [{"name": "bioimageio-run developers"}],
        "cite": [{"text": "bioimageio-run", "url": "https://example.com/"}],
        "license": "MIT",
        "documentation": "README.md",
    }


def _data_type(array: np.ndarray[Any, Any]) -> str:
    return str(array.dtype)


# ---- 0.5 ---------------------------------------------------------------------------------------


def _rdf_v05(folder: Path, model: ModelDef, files: Mapping[str, str]) -> dict[str, Any]:
    def tensor(t: TensorDef) -> dict[str, Any]:
        return {
            "id": t.id,
            "axes": [_axis_v05(t, letter) for letter in t.axes],
            "test_tensor": {"source": files[t.id], "sha256": sha256_of(folder / files[t.id])},
            "data": {"type": _data_type(t.test)},
        }

    weights = {
        w.format: {"source": w.source, "sha256": sha256_of(folder / w.source), **w.v05}
        for w in model.weights
    }
    return {
        "format_version": "0.5.4",
        **_common(model),
        "inputs": [tensor(t) for t in model.inputs],
        "outputs": [tensor(t) for t in model.outputs],
        "weights": weights,
    }


def _axis_v05(t: TensorDef, letter: str) -> dict[str, Any]:
    if letter == "b":
        return {"type": "batch"}
    if letter == "c":
        return {"type": "channel", "channel_names": [f"c{i}" for i in range(t.channels())]}
    axis: dict[str, Any] = {"type": "space", "id": letter}
    if t.size is None:
        axis["size"] = int(t.test.shape[t.axes.index(letter)])
    elif isinstance(t.size, Param):
        axis["size"] = {"min": t.size.min, "step": t.size.step}
    else:
        axis["size"] = {"tensor_id": t.size.tensor, "axis_id": letter}
        if t.size.scale != 1:
            axis["scale"] = 1 / t.size.scale
    if t.halo:
        axis["halo"] = t.halo
    return axis


# ---- 0.4 ---------------------------------------------------------------------------------------


def _rdf_v04(folder: Path, model: ModelDef, files: Mapping[str, str]) -> dict[str, Any]:
    weights = {
        w.format: {"source": w.source, "sha256": sha256_of(folder / w.source), **w.v04}
        for w in model.weights
    }
    return {
        "format_version": "0.4.10",
        **_common(model),
        "timestamp": "2024-01-01T00:00:00",
        "inputs": [_input_v04(model, t) for t in model.inputs],
        "outputs": [_output_v04(t) for t in model.outputs],
        "test_inputs": [files[t.id] for t in model.inputs],
        "test_outputs": [files[t.id] for t in model.outputs],
        "weights": weights,
    }


def _input_v04(model: ModelDef, t: TensorDef) -> dict[str, Any]:
    size = t.size
    if isinstance(size, Ref):  # 0.4 inputs cannot reference each other: same parameterization
        referenced = model.tensor(size.tensor).size
        assert size.scale == 1 and not isinstance(referenced, Ref), t.id
        size = referenced
    shape: Any
    if isinstance(size, Param):
        shape = {
            "min": [size.min if a in SPACE else _fixed(t, a) for a in t.axes],
            "step": [size.step if a in SPACE else 0 for a in t.axes],
        }
    else:
        shape = [_fixed(t, a) for a in t.axes]
    return {"name": t.id, "axes": t.axes, "data_type": _data_type(t.test), "shape": shape}


def _fixed(t: TensorDef, letter: str) -> int:
    return 1 if letter == "b" else int(t.test.shape[t.axes.index(letter)])


def _output_v04(t: TensorDef) -> dict[str, Any]:
    out: dict[str, Any] = {"name": t.id, "axes": t.axes, "data_type": _data_type(t.test)}
    if isinstance(t.size, Ref):
        scale = t.size.scale
        out["shape"] = {
            "reference_tensor": t.size.tensor,
            "scale": [scale if a in SPACE else (0.0 if a == "c" else 1.0) for a in t.axes],
            "offset": [t.channels() / 2 if a == "c" else 0.0 for a in t.axes],
        }
    else:
        out["shape"] = [_fixed(t, a) for a in t.axes]
    if t.halo:
        out["halo"] = [t.halo if a in SPACE else 0 for a in t.axes]
    return out


# ---- CLI ---------------------------------------------------------------------------------------


def run_cli(*args: str | Path) -> Result:
    """``bioimageio-run ARGS`` in-process (exceptions propagate instead of being swallowed)."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def run_test(source: str | Path, *args: str) -> tuple[int, dict[str, Any]]:
    """``bioimageio-run test SOURCE ARGS --format json``: exit code and the summary."""
    result = run_cli("test", source, *args, "--format", "json")
    try:
        summary: dict[str, Any] = json.loads(result.output)
    except json.JSONDecodeError as e:
        raise AssertionError(f"exit code {result.exit_code}, output:\n{result.output}") from e
    return result.exit_code, summary


def _reproduced(summary: Mapping[str, Any], weights_format: str) -> list[Mapping[str, Any]]:
    return [
        d
        for d in summary["details"]
        if d["name"].startswith("reproduce test output ")
        and f" with {weights_format} weights" in d["name"]
    ]


def assert_passed(
    exit_code: int, summary: Mapping[str, Any], formats: Sequence[str], n_outputs: int
) -> None:
    """Exit code 0, status passed, and every output reproduced with every format in ``formats``."""
    failed = [d for d in summary["details"] if d["status"] != "passed"]
    assert (exit_code, summary["status"], failed) == (0, "passed", []), summary
    for fmt in formats:
        checks = _reproduced(summary, fmt)
        assert len(checks) == n_outputs, (fmt, summary)


def warnings_of(summary: Mapping[str, Any]) -> list[str]:
    return [f"{w['path']}: {w['msg']}" for d in summary["details"] for w in d["warnings"]]


def assert_failed_reproduction(
    exit_code: int, summary: Mapping[str, Any], weights_format: str, output_id: str
) -> None:
    """Exit code 1 because ``output_id`` was not reproduced (and nothing else failed).

    The format is valid, so the status is ``valid-format`` (a failed test downgrades ``passed``).
    """
    assert (exit_code, summary["status"]) == (1, "valid-format"), summary
    failed = [d["name"] for d in summary["details"] if d["status"] == "failed"]
    assert failed, summary
    wrong = f"reproduce test output '{output_id}' with {weights_format} weights"
    assert all(name.startswith(wrong) for name in failed), failed


def space_shape(shape: Sequence[int], axes: str) -> tuple[int, ...]:
    return tuple(int(shape[axes.index(a)]) for a in SPACE)


def description_path(folder: Path, version: Version) -> Path:
    """Where :func:`write_model` writes the description of ``version`` in ``folder``."""
    return folder / ("rdf.yaml" if version == "0.5" else "v0_4.rdf.yaml")


@attrs.frozen
class LargePrediction:
    """One large input predicted by the CLI whole and blockwise, and by the framework directly."""

    whole: np.ndarray[Any, Any]
    direct: np.ndarray[Any, Any]
    tiled: dict[int, np.ndarray[Any, Any]]
    """Blockwise predictions by batch size."""


def predict_whole_and_tiled(
    description: Path,
    image: np.ndarray[Any, Any],
    work: Path,
    *,
    axes: str,
    blocksize: int,
    weights_format: str | None = None,
    batch_sizes: Sequence[int] = (1, 4),
) -> tuple[np.ndarray[Any, Any], dict[int, np.ndarray[Any, Any]]]:
    """``bioimageio-run predict`` of ``image`` whole and with ``--blocksize`` per batch size.

    Runs on the CPU (GPU convolutions may use TF32 and differ from a CPU run by more than 1e-5).
    Returns the whole-image output and the blockwise outputs by batch size.
    """
    np.save(work / "image.npy", image)
    chosen = () if weights_format is None else ("--weights-format", weights_format)

    def predict(name: str, *args: str) -> np.ndarray[Any, Any]:
        result = run_cli(
            "predict", description, "--inputs", work / "image.npy", "--outputs", work / name,
            "--device", "cpu", "--axes", axes, "--quiet", *chosen, *args,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        return np.asarray(np.load(work / name))

    tiled = {
        b: predict(f"tiled_{b}.npy", "--blocksize", str(blocksize), "--batch-size", str(b))
        for b in batch_sizes
    }
    return predict("whole.npy"), tiled
