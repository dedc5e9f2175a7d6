"""Commands ``validate``, ``update-format`` and ``empty-cache``.

Heavy modules are imported inside the commands so that ``bioimageio-run --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from bioimageio_core.cli import main
from bioimageio_core.cli._common import (
    debug_option,
    offline_option,
    overwrite_option,
    save_summaries,
    summary_format_option,
    summary_paths_option,
)
from bioimageio_core.errors import ValidationError


def _fail(error: BaseException, debug: bool) -> NoReturn:
    """Report an error as its message alone (with the traceback only under ``--debug``).

    Unlike :func:`~bioimageio_core.cli._common.fail`, the message is printed as it is.
    """
    if debug:
        raise error
    click.echo(f"error: {error}", err=True)
    sys.exit(1)


@main.command("validate")
@click.argument("source")
@click.option(
    "--io-checks/--no-io-checks",
    default=None,
    help="Check that referenced files exist and match their sha256 "
    "[default: BIOIMAGEIO_PERFORM_IO_CHECKS, else on].",
)
@summary_paths_option
@summary_format_option
@offline_option
@debug_option
def validate(
    source: str,
    io_checks: bool | None,
    summary_paths: tuple[Path, ...],
    output_format: str,
    debug: bool,
) -> None:
    """Validate the description at SOURCE and print a summary.

    SOURCE is a path to rdf.yaml / bioimageio.yaml / *.bioimageio.yaml, a folder holding one,
    a .zip package, an http(s) URL to any of these, a bioimage.io id (affable-shark,
    affable-shark/1.2, affable-shark/draft), a DOI the collection lists, or
    huggingface/<user>/<repo>[/<version>]. Exits with 0 when the description is valid, 1 when
    it is not. The io checks fetch files pinned by a sha256 (weights, test tensors); covers,
    documentation and a dataset's or application's data are only looked up (a HEAD request for
    a URL), never downloaded.

    \b
    Examples:
      bioimageio-run validate path/to/rdf.yaml
      bioimageio-run validate https://example.org/model.zip --no-io-checks --format md
      bioimageio-run validate dataset/rdf.yaml --summary report.html --format json
      bioimageio-run validate affable-shark/1.2
      bioimageio-run validate affable-shark --offline
    """
    try:
        from bioimageio_core.loading import validate_format

        summary = validate_format(source, perform_io_checks=io_checks)
    except Exception as e:
        _fail(e, debug)
    save_summaries(summary, summary_paths, debug)
    click.echo(summary.format(output_format), nl=False)
    sys.exit(0 if summary.is_valid else 1)


@main.command("update-format")
@click.argument("source")
@click.option(
    "--output",
    "-o",
    default="-",
    show_default=True,
    help="Where to write the updated YAML: a file, a folder (writes bioimageio.yaml there), "
    "or - for standard output.",
)
@overwrite_option
@offline_option
@debug_option
def update_format(source: str, output: str, overwrite: bool, debug: bool) -> None:
    """Write the description at SOURCE in the current format (model 0.5.14, other types 0.3.4).

    Older descriptions are converted (0.4 models become 0.5.14, generic 0.2 becomes 0.3.4) and
    must satisfy today's rules; what changed or was dropped is reported as a warning. By default
    the YAML goes to standard output; with --output it is written to a file (an existing file
    only with --overwrite). Relative file references are kept as they are: write the file next to the original
    description (or copy the referenced files along).

    \b
    Examples:
      bioimageio-run update-format old/rdf.yaml > new.bioimageio.yaml
      bioimageio-run update-format old/rdf.yaml --output old/updated.bioimageio.yaml
    """
    target = Path(output)
    if output != "-" and target.is_dir():
        target = target / "bioimageio.yaml"
    try:
        from bioimageio_core.io.staging import refuse_existing, write_text
        from bioimageio_core.loading import (
            dump_description,
            dump_yaml,
            load_description_and_summary,
        )

        if output != "-":
            refuse_existing([target], overwrite)
        descr, summary = load_description_and_summary(
            source, perform_io_checks=False, format_version="latest"
        )
        if descr is None:
            raise ValidationError(summary)
        text = dump_yaml(dump_description(descr))
    except ValidationError as e:
        click.echo(f"error: {e.summary.first_error_text()}", err=True)
        click.echo(
            f"  run `bioimageio-run validate {source}` for the full report; fields written in "
            "an older format may need changes by hand to fit the current one",
            err=True,
        )
        sys.exit(1)
    except Exception as e:
        _fail(e, debug)
    for detail in summary.details:
        for warning in detail.warnings:
            click.echo(f"warning: {warning.path}: {warning.msg}", err=True)
    if output == "-":
        click.echo(text, nl=False)
        return
    try:
        write_text(target, text, overwrite=overwrite)
    except Exception as e:
        _fail(e, debug)
    version = getattr(descr, "format_version", "?")
    click.echo(f"wrote the description in format {version} to {target}", err=True)
    root = getattr(descr, "root", None)
    root_path = getattr(root, "path", None)
    if isinstance(root_path, Path) and root_path.is_dir():
        if root_path.resolve() != target.parent.resolve():
            click.echo(
                f"note: its relative file references point into {root_path}; "
                "copy those files next to the new file",
                err=True,
            )


@main.command("empty-cache")
@debug_option
def empty_cache(debug: bool) -> None:
    """Delete every downloaded and unpacked file in the cache (BIOIMAGEIO_CACHE_PATH), and the
    record of what ids resolved to (ids then need the network again).

    \b
    Example:
      bioimageio-run empty-cache
    """
    try:
        from bioimageio_core.sources import empty_cache as empty

        root, freed = empty()
    except Exception as e:
        _fail(e, debug)
    click.echo(f"emptied the cache at {root} ({freed / 1024**2:.1f} MiB freed)")
