"""Commands ``package``, ``update-hashes`` and ``add-weights``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bioimageio_core.cli import main
from bioimageio_core.cli._common import (
    allow_remote_code_option,
    debug_option,
    fail,
    offline_option,
    overwrite_option,
)


@main.command("package")
@click.argument("source")
@click.argument("output", type=click.Path(path_type=Path))
@click.option(
    "--weights-format",
    "weights_formats",
    multiple=True,
    metavar="FORMAT",
    help="Keep only the first of these weight formats the model has (repeat the option to give "
    "an order of preference); its 'parent' is dropped. Default: keep every format.",
)
@overwrite_option
@offline_option
@debug_option
def package(
    source: str, output: Path, weights_formats: tuple[str, ...], overwrite: bool, debug: bool
) -> None:
    """Write SOURCE and every file it references as a package.

    OUTPUT ending in .zip gets a zip file; any other OUTPUT is a folder. Remote files are
    downloaded (through the cache), every sha256 is checked and filled in, and references are
    renamed to unique local file names. The source files are never modified; an existing zip,
    or a folder holding a description or any file of the package, only with --overwrite.

    \b
    Examples:
      bioimageio-run package path/to/rdf.yaml my-model.zip
      bioimageio-run package https://example.org/rdf.yaml folder/ --weights-format onnx
      bioimageio-run package rdf.yaml small.zip --weights-format torchscript --weights-format onnx
    """
    try:
        from bioimageio_core.packaging import (
            save_bioimageio_package,
            save_bioimageio_package_as_folder,
        )

        order = weights_formats or None
        if output.suffix.lower() == ".zip":
            written = save_bioimageio_package(
                source, output, weights_priority_order=order, overwrite=overwrite
            )
        else:
            written = save_bioimageio_package_as_folder(
                source, output, weights_priority_order=order, overwrite=overwrite
            )
    except Exception as e:
        fail(e, debug)
    click.echo(f"package written to {written}")


@main.command("update-hashes")
@click.argument("source")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the updated YAML here instead of updating SOURCE in place.",
)
@overwrite_option
@offline_option
@debug_option
def update_hashes(source: str, output: Path | None, overwrite: bool, debug: bool) -> None:
    """Recompute the sha256 of every file SOURCE references and write them into its YAML.

    SOURCE is updated in place (only when a hash changed; its permissions are kept) unless
    --output is given (an existing file only with --overwrite); a zip package or a URL needs
    --output. Comments in the YAML file are not kept.

    \b
    Examples:
      bioimageio-run update-hashes path/to/rdf.yaml
      bioimageio-run update-hashes model.zip --output updated.rdf.yaml
    """
    try:
        from bioimageio_core.packaging import update_hashes as run_update

        report = run_update(source, output, overwrite=overwrite)
    except Exception as e:
        fail(e, debug)
    click.echo(report.format_text(), nl=False)


@main.command("add-weights")
@click.argument("source")
@click.argument("output", type=click.Path(path_type=Path))
@click.option(
    "--source-format", default=None, metavar="FORMAT", help="Convert only from this format."
)
@click.option(
    "--target-format", default=None, metavar="FORMAT", help="Convert only to this format."
)
@click.option(
    "--verify/--no-verify",
    default=True,
    show_default=True,
    help="Test every new entry with the model's test tensors and keep only the ones that pass.",
)
@overwrite_option
@allow_remote_code_option
@offline_option
@debug_option
def add_weights(
    source: str,
    output: Path,
    source_format: str | None,
    target_format: str | None,
    verify: bool,
    overwrite: bool,
    debug: bool,
) -> None:
    """Copy SOURCE as a package folder OUTPUT and add weights converted to other formats.

    Every installed converter (see `bioimageio-run plugins`) from a format the model has to one
    it lacks is run; each new entry is tested with the model's test inputs and outputs and added
    only when it reproduces them. Exits with 1 when a conversion failed or nothing was added.
    The package appears in OUTPUT when everything is done; a folder holding a description or a
    file of the package is replaced only with --overwrite.

    \b
    Examples:
      bioimageio-run add-weights path/to/rdf.yaml converted/
      bioimageio-run add-weights rdf.yaml out/ --source-format pytorch_state_dict --target-format onnx
    """
    try:
        from bioimageio_core.conversion import add_weights as run_add

        report = run_add(
            source, output, source_format, target_format, verify=verify, overwrite=overwrite
        )
    except Exception as e:
        fail(e, debug)
    click.echo(report.format_text(), nl=False)
    sys.exit(1 if report.failed or not report.added else 0)
