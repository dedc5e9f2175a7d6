"""``bioimageio-run test``: validate a model and reproduce its test outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bioimageio_core.cli import main
from bioimageio_core.cli._common import (
    allow_remote_code_option,
    debug_option,
    device_names,
    fail,
    offline_option,
    save_summaries,
    server_option,
    summary_format_option,
    summary_paths_option,
    weights_format_option,
)


@main.command("test")
@click.argument("source")
@weights_format_option
@click.option(
    "--device",
    "devices",
    multiple=True,
    metavar="DEVICE",
    callback=device_names,
    help="Device to run on (cpu, cuda, cuda:1 …); repeat for several. Default: GPU if available.",
)
@click.option(
    "--determinism",
    type=click.Choice(["seed_only", "full"]),
    default="seed_only",
    show_default=True,
    help="seed_only: seed the random number generators; full: also ask for deterministic "
    "algorithms where supported.",
)
@click.option("--stop-early", "-x", is_flag=True, help="Stop at the first failed check.")
@summary_paths_option
@click.option(
    "--save-failing-outputs",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder where outputs that do not reproduce their test output are saved "
    "(<weights format>/<output id>.npy).",
)
@summary_format_option
@server_option
@allow_remote_code_option
@offline_option
@debug_option
def test_command(
    source: str,
    weights_format: str | None,
    devices: tuple[str, ...],
    determinism: str,
    stop_early: bool,
    summary_paths: tuple[Path, ...],
    save_failing_outputs: Path | None,
    output_format: str,
    server: str | None,
    debug: bool,
) -> None:
    """Test the model at SOURCE: validate it, run its test inputs and compare with its test outputs.

    SOURCE is a path, folder, .zip package, URL, bioimage.io id or DOI (see `validate`).

    Every weight format whose plugin is installed is tested (or only --weights-format); formats
    that cannot run here are reported as skipped with what to install. Then a few valid larger
    input sizes are run to check the output sizes. Other descriptions (datasets, applications,
    notebooks) have nothing to run: their format is validated and their referenced files are
    checked (covers and data only for existence). Exits with 0 only if every check passed.

    \b
    Examples:
      bioimageio-run test path/to/rdf.yaml
      bioimageio-run test model.zip --weights-format onnx --summary report.md
      bioimageio-run test rdf.yaml --save-failing-outputs failing/ --summary summary.json
      bioimageio-run test dataset/rdf.yaml --summary report.html
      bioimageio-run test affable-shark            (a bioimage.io id; --offline once cached)
      bioimageio-run test rdf.yaml --server http://gpu-box:8000
    """
    try:
        from bioimageio_core.testing import test_description

        summary = test_description(
            source,
            weights_format=weights_format,
            devices=devices or None,
            determinism="full" if determinism == "full" else "seed_only",
            stop_early=stop_early,
            save_failing_outputs=save_failing_outputs,
            server=server,
        )
    except Exception as e:
        fail(e, debug)
    save_summaries(summary, summary_paths, debug)
    click.echo(summary.format(output_format), nl=False)
    sys.exit(0 if summary.status == "passed" else 1)
