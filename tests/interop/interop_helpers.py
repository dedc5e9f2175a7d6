"""Calls into the reference library and the models the interoperability tests use."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from click.testing import CliRunner
from conformance_models import UNET, UNET_LOCAL_FILES

from bioimageio_core.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tiny-nuclei-unet"
#: the files of the conformance U-Net that are available offline (its pytorch_state_dict weights
#: are a URL that cannot be reached, its architecture file is not included)
UNET_FILES = (*UNET_LOCAL_FILES, "test_output_expanded.npy")
UNET_DESCRIPTIONS = (
    "bioimageio.yaml",
    "v0_4_9.bioimageio.yaml",
    "v0_4_0.bioimageio.yaml",
    "expand_output_shape.bioimageio.yaml",
    "expand_output_shape_v0_4.bioimageio.yaml",
)
OFFLINE_FORMATS = ("onnx", "torchscript")


def run(*args: str) -> tuple[int, str]:
    """``bioimageio-run ARGS`` in this process: (exit code, stdout + stderr)."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output  # stdout and stderr, interleaved


def reference_load(reference: ModuleType, source: Path | str, *, io_checks: bool) -> Any:
    """The reference's ``load_description`` (a descriptor or its ``InvalidDescr``)."""
    return reference.load_description(source, perform_io_checks=io_checks)


def reference_verdict(descr: Any) -> tuple[str, str, list[str]]:
    """(status, format_version, errors) of a reference descriptor."""
    summary = descr.validation_summary
    errors = [f"{e.loc}: {e.msg}" for d in summary.details for e in d.errors]
    return str(summary.status), str(getattr(descr, "format_version", "?")), errors


def reference_validate_dict(reference: ModuleType, data: dict[str, Any]) -> tuple[str, list[str]]:
    """Validate raw data with the reference, format only (no file is read or downloaded)."""
    summary = reference.validate_format(
        data, context=reference.ValidationContext(perform_io_checks=False)
    )
    errors = [f"{e.loc}: {e.msg}" for d in summary.details for e in d.errors]
    return str(summary.status), errors


def copy_example(target: Path) -> Path:
    shutil.copytree(EXAMPLE, target)
    return target / "rdf.yaml"


def copy_unet(conformance: Path, target: Path, description: str) -> Path:
    """The conformance U-Net's files and one of its descriptions, the weights entries whose
    files are not available offline removed (a 0.4 ``parent`` pointing at them as well)."""
    source = conformance / UNET
    target.mkdir(parents=True, exist_ok=True)
    for name in UNET_FILES:
        shutil.copyfile(source / name, target / name)
    data: dict[str, Any] = yaml.safe_load((source / description).read_text())
    weights = data["weights"]
    for fmt in [f for f in weights if f not in OFFLINE_FORMATS]:
        del weights[fmt]
    for entry in weights.values():
        entry.pop("parent", None)
    path = target / description
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def read_yaml(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data
