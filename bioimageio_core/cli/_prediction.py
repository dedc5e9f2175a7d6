"""Steps and options the ``predict`` and ``block-artifacts`` commands share.

Heavy modules (the pipeline, numpy, io) are imported inside the functions so that the CLI starts
fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bioimageio_core.cli._common import (
    F,
    device_names,
    options,
    overwrite_option,
    weights_format_option,
)

if TYPE_CHECKING:
    from bioimageio_core.cli.input_files import SampleFiles
    from bioimageio_core.pipeline import PredictionPipeline
    from bioimageio_core.spec import ModelDescr


def load_model(source: str) -> ModelDescr:
    """The model description at ``source`` (files are checked when used)."""
    from bioimageio_core.loading import as_model_description

    return as_model_description(source)


def sample_files(
    descr: ModelDescr, input_patterns: Sequence[str], output_pattern: str, overwrite: bool
) -> tuple[list[SampleFiles], dict[tuple[str, str], Path]]:
    """The input files of each sample and the output file of each (sample, output); existing
    output files are refused unless ``overwrite``, before anything runs."""
    from bioimageio_core.chain import chain_inputs
    from bioimageio_core.cli.input_files import match_inputs
    from bioimageio_core.io import check_outputs
    from bioimageio_core.prediction import samples_output_paths

    # a chained model (output_of) takes its upstream models' inputs too
    input_ids, optional = chain_inputs(descr)
    samples = match_inputs(input_patterns, input_ids, optional)
    found = samples_output_paths(
        output_pattern, [s.id for s in samples], [t.id for t in descr.outputs]
    )
    paths = {(str(sid), oid): path for (sid, oid), path in found.items()}
    check_outputs(list(paths.values()), overwrite)
    return samples, paths


def make_pipeline(
    descr: ModelDescr,
    weights_format: str | None,
    device: str | None,
    batch_size: int,
    server: str | None = None,
    source: str | None = None,
) -> PredictionPipeline:
    """The pipeline; with ``server``, a URL or id ``source`` is fetched by the server itself."""
    from bioimageio_core.pipeline import create_prediction_pipeline

    model: Any = descr
    if server is not None and source is not None:
        from bioimageio_core.remote import model_reference  # only with a server

        if model_reference(source, descr) is not None:
            model = source
    return create_prediction_pipeline(
        model,
        devices=None if device is None else [device],
        weights_format=weights_format,
        batch_size=batch_size,
        server=server,
    )


def blocksize_option(help: str, *, default: int | None = None) -> Callable[[F], F]:
    """``--blocksize N`` (>= 0): the blocksize parameter of blockwise prediction."""
    return click.option(
        "--blocksize",
        type=click.IntRange(min=0),
        default=default,
        show_default=default is not None,
        metavar="N",
        help=help,
    )


def inputs_option(help: str, *, required: bool = False) -> Callable[[F], F]:
    """``--inputs/-i PATTERN`` (repeatable) into ``input_patterns``."""
    return click.option(
        "--inputs",
        "-i",
        "input_patterns",
        multiple=True,
        required=required,
        metavar="PATTERN",
        help=help,
    )


device_option = click.option(
    "--device",
    default=None,
    metavar="DEVICE",
    callback=device_names,
    help="Device to run on (cpu, cuda, cuda:1, mps …, as the backend names them); default: GPU "
    "if the backend finds one, else CPU.",
)


def parse_axes(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | dict[str, str] | None:
    """``cyx`` (every input) or ``raw=cyx,mask=yx`` (per input tensor id)."""
    if value is None or "=" not in value:
        return value
    axes: dict[str, str] = {}
    for part in value.split(","):
        tensor_id, sep, letters = part.partition("=")
        if not sep or not tensor_id.strip() or not letters.strip():
            raise click.BadParameter(
                f"{part!r} is not TENSOR_ID=LETTERS; write e.g. raw=cyx,mask=yx", ctx, param
            )
        axes[tensor_id.strip()] = letters.strip()
    return axes


axes_option = click.option(
    "--axes",
    default=None,
    metavar="LETTERS|ID=LETTERS,...",
    callback=parse_axes,
    help="Axes of the input files when they do not record them, e.g. yx or cyx "
    "(b c t i x y z) for every input, or per input tensor id: raw=cyx,mask=yx; default: from "
    "the file, else guessed from the shape.",
)


prediction_options = options(device_option, weights_format_option, axes_option, overwrite_option)
"""Where and how the model runs on the input files: ``--device``, ``--weights-format``,
``--axes``, ``--overwrite``."""

