"""``bioimageio-run predict``: run a model on input files and write its outputs.

Inputs are matched to samples as :mod:`bioimageio_core.cli.input_files` describes; output
patterns take ``{sample_id}`` and ``{tensor_id}`` (the output's id; ``{output_id}`` works too).
Samples go through :func:`bioimageio_core.predict_many`, the same streaming path as the API: one
sample at a time, outputs written (block by block where the format allows) under temporary names
and put in place once their sample is done.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bioimageio_core.cli import main
from bioimageio_core.cli._common import (
    Progress,
    allow_remote_code_option,
    debug_option,
    fail,
    info,
    offline_option,
    overwrite_option,
    quiet_option,
    server_option,
    show_progress,
    weights_format_option,
)
from bioimageio_core.cli._prediction import (
    axes_option,
    device_option,
    load_model,
    make_pipeline,
    sample_files,
)
from bioimageio_core.cli.input_files import SampleFiles
from bioimageio_core.errors import InputError

if TYPE_CHECKING:
    from bioimageio_core.spec import ModelDescr

DEFAULT_OUTPUTS = "outputs/{sample_id}_{tensor_id}.npy"


def _example_inputs(descr: ModelDescr, folder: Path) -> list[str]:
    """Copy the model's test inputs to ``folder/inputs`` and return one pattern per input."""
    from bioimageio_core.io.staging import copy_file
    from bioimageio_core.sources import FolderRoot, open_file

    root = descr.root or FolderRoot(Path.cwd())
    patterns = []
    for t in descr.inputs:
        if t.test_tensor is None:
            if t.optional:
                continue
            raise InputError(f"input {t.id!r} has no test tensor, so there is no example to run")
        source = open_file(root, t.test_tensor.source, t.test_tensor.sha256)
        target = folder / "inputs" / t.id / f"example{''.join(source.suffixes) or '.npy'}"
        copy_file(source, target)
        patterns.append(str(target))
    return patterns


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "model"



@main.command("predict")
@click.argument("source")
@click.option(
    "--inputs",
    "-i",
    "input_patterns",
    multiple=True,
    metavar="PATTERN",
    help="Input files: a path or glob, with ':ARRAY' for an array inside a container "
    "(data.zarr:raw, 'runs/*.h5:/raw', image.ome.zarr:1 for a resolution level) or the URL of "
    "a zarr store; use {tensor_id} for models with several inputs. Repeat for more patterns.",
)
@click.option(
    "--outputs",
    "-o",
    "output_pattern",
    default=None,
    metavar="PATTERN",
    help=f"Output files with {{sample_id}} and {{tensor_id}}; the suffix picks the format "
    f"[default: {DEFAULT_OUTPUTS}].",
)
@click.option(
    "--blocksize",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Predict blockwise with blocks of min + N*step on parameterized axes (halo included). "
    "Default: the whole input at once, tiled only where it exceeds a fixed model size.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Blocks per model call when predicting blockwise.",
)
@device_option
@weights_format_option
@axes_option
@overwrite_option
@click.option(
    "--stats",
    "stats_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Dataset statistics (for normalisation over all inputs): load them from FILE when it "
    "exists (it must be of this model), else compute them over all inputs and save them there. "
    "Without --stats they are computed over all inputs and not saved.",
)
@click.option(
    "--example",
    is_flag=True,
    help="Run the model's own test inputs (copied to <model>_example/inputs); outputs go to "
    "<model>_example/outputs unless --outputs is given.",
)
@server_option
@quiet_option
@allow_remote_code_option
@offline_option
@debug_option
def predict_command(
    source: str,
    input_patterns: tuple[str, ...],
    output_pattern: str | None,
    blocksize: int | None,
    batch_size: int,
    device: str | None,
    weights_format: str | None,
    axes: str | dict[str, str] | None,
    overwrite: bool,
    stats_path: Path | None,
    example: bool,
    server: str | None,
    quiet: bool,
    debug: bool,
) -> None:
    """Run the model at SOURCE on input files and write its outputs.

    SOURCE is a path, folder, .zip package, URL, bioimage.io id or DOI (see `validate`).

    Each file (or group of files, one per model input) is one sample; the part of the path the
    glob wildcards matched is its sample id. Existing outputs are kept unless --overwrite.
    When the model normalises with dataset statistics, they are computed over all inputs
    before the first prediction (or loaded with --stats), so the order of the files does not
    change any output.

    \b
    Examples:
      bioimageio-run predict rdf.yaml --inputs 'images/*.tif' --outputs 'out/{sample_id}.tif'
      bioimageio-run predict model.zip -i 'data/{tensor_id}/*.npy' \\
          -o 'pred/{sample_id}_{tensor_id}.npy' --blocksize 4 --batch-size 4
      bioimageio-run predict rdf.yaml -i 'batch1/*.tif' --stats dataset_stats.json
      bioimageio-run predict rdf.yaml -i volume.ome.zarr -o 'pred/{sample_id}.ome.zarr'
      bioimageio-run predict rdf.yaml -i 'runs/*.h5:/raw' -o 'out/{sample_id}.zarr'
      bioimageio-run predict rdf.yaml --example
      bioimageio-run predict affable-shark -i 'images/*.png' -o 'out/{sample_id}.tif'
      bioimageio-run predict rdf.yaml -i 'images/*.tif' --server http://gpu-box:8000
    """
    try:
        descr = load_model(source)
        if example:
            if input_patterns:
                raise InputError("--example runs the model's test inputs; leave out --inputs")
            folder = Path(f"{_slug(descr.name)}_example")
            input_patterns = tuple(_example_inputs(descr, folder))
            output_pattern = output_pattern or str(
                folder / "outputs" / "{sample_id}_{tensor_id}.npy"
            )
        output_pattern = output_pattern or DEFAULT_OUTPUTS
        samples, paths = sample_files(descr, input_patterns, output_pattern, overwrite)
        written = _run_predict(
            descr,
            samples,
            paths,
            output_pattern,
            overwrite,
            blocksize,
            batch_size,
            device,
            weights_format,
            axes,
            quiet,
            stats_path,
            server=server,
            source=source,
        )
    except Exception as e:
        fail(e, debug)
    if not quiet:
        folders = sorted({str(p.parent) for p in written})
        where = folders[0] if len(folders) == 1 else f"{len(folders)} folders"
        info(f"wrote {len(written)} output file(s) for {len(samples)} sample(s) to {where}", quiet)
        if example:
            info(
                "the same with the CLI: bioimageio-run predict "
                + source
                + "".join(f" --inputs {p}" for p in input_patterns)
                + f" --outputs '{output_pattern}'",
                quiet,
            )
    for path in written:
        click.echo(str(path))




def _run_predict(
    descr: ModelDescr,
    samples: Sequence[SampleFiles],
    paths: Mapping[tuple[str, str], Path],
    output_pattern: str,
    overwrite: bool,
    blocksize: int | None,
    batch_size: int,
    device: str | None,
    weights_format: str | None,
    axes: str | dict[str, str] | None,
    quiet: bool,
    stats_path: Path | None = None,
    *,
    server: str | None = None,
    source: str | None = None,
) -> list[Path]:
    """Predict every sample with :func:`~bioimageio_core.prediction.predict_many`; returns the
    files written."""
    from bioimageio_core.prediction import predict_many

    written: list[Path] = []
    with (
        make_pipeline(descr, weights_format, device, batch_size, server, source) as pipeline,
        Progress(len(samples), "predicting", enabled=show_progress(quiet)) as bar,
    ):
        if not pipeline.running_dataset_measures:
            if stats_path is not None:
                info(f"--stats {stats_path}: the model needs no dataset statistics", quiet)
        elif stats_path is None or not stats_path.exists():
            info(f"computing dataset statistics over {len(samples)} sample(s)", quiet)
        results = predict_many(
            model=pipeline,
            inputs=[dict(s.inputs) for s in samples],
            sample_id=[s.id for s in samples],
            blocksize_parameter=blocksize,
            batch_size=batch_size,
            axes=axes,
            save_output_path=output_pattern,
            overwrite=overwrite,
            dataset_statistics_path=stats_path,
            on_dataset_statistics=lambda report: info(report.describe(), quiet),
            on_progress=lambda done, total: bar.note(f"block {done}/{total}"),
        )
        for sample, result in zip(samples, results, strict=True):
            written.extend(paths[(sample.id, oid)] for oid in result.members)
            bar.update()
    return written
