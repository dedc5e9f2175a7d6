"""The ``bioimageio-run`` command line run in-process, and what to assert about its results."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from click.testing import CliRunner, Result

from bioimageio_core.cli import main
from bioimageio_core.collection_testing import LocalServer

__all__ = [
    "LargePrediction",
    "assert_failed_reproduction",
    "assert_passed",
    "predict_whole_and_tiled",
    "run_cli",
    "run_test",
    "serve_folder",
    "warnings_of",
]


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


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1 while the ``with`` block runs; yields the base URL.

    For tests of what a plugin does with a model opened from a URL (for instance that it refuses
    to run code that came with it unless the user allowed remote code)::

        with serve_folder(model_folder) as base_url:
            bioimageio_core.predict(model=base_url + "rdf.yaml", inputs=x)
    """
    with LocalServer(folder) as server:
        yield server.base_url
