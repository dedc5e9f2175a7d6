"""The ``bioimageio-run`` command line interface.

Each command family lives in its own module of this package and registers itself on :data:`main`.
"""

from __future__ import annotations

import click

from bioimageio_core._version import __version__
from bioimageio_core.cli._common import show_notices


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bioimageio-run")
def main() -> None:
    """Load, validate, test and run bioimage.io models.

    \b
    Example:
      bioimageio-run validate path/to/rdf.yaml
    """
    show_notices()


# command modules register themselves on `main` when imported
from bioimageio_core.cli import commands as _commands  # noqa: E402,F401
