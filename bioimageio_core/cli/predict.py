"""``bioimageio-run predict``: run a model on input files and write its outputs.

Inputs are matched to samples as :mod:`bioimageio_core.cli.input_files` describes; output
patterns take ``{sample_id}`` and ``{tensor_id}`` (the output's id; ``{output_id}`` works too).
Samples go through :func:`bioimageio_core.predict_many`, the same streaming path as the API: one
sample at a time, outputs written (block by block where the format allows) under temporary names
and put in place once their sample is done.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bioimageio_core.cli import main
from bioimageio_core.cli._common import (
    Progress,
    fail,
    info,
    running_options,
    server_option,
    show_progress,
)
from bioimageio_core.cli._prediction import (
    blocksize_option,
    inputs_option,
    load_model,
    make_pipeline,
    prediction_options,
    sample_files,
)
from bioimageio_core.errors import InputError

if TYPE_CHECKING:
    from bioimageio_core.cli.input_files import SampleFiles
    from bioimageio_core.pipeline import PredictionPipeline
    from bioimageio_core.spec import ModelDescr

DEFAULT_OUTPUTS = "outputs/{sample_id}_{tensor_id}.npy"


def _example_inputs(descr: ModelDescr, folder: Path) -> list[str]:
    """Copy the model's test inputs to ``folder/inputs`` and return one pattern per input."""
    from bioimageio_core.io.staging import copy_file
    from bioimageio_core.sources import open_file, root_of

    root = root_of(descr)
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
@inputs_option(
    "Input files: a path or glob, with ':ARRAY' for an array inside a container "
    "(data.zarr:raw, 'runs/*.h5:/raw', image.ome.zarr:1 for a resolution level) or the URL of "
    "a zarr store; use {tensor_id} for models with several inputs. Repeat for more patterns."
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
@blocksize_option(
    "Predict blockwise with blocks of min + N*step on parameterized axes (halo included). "
    "Default: the whole input at once, tiled only where it exceeds a fixed model size."
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Blocks per model call when predicting blockwise.",
)
@prediction_options
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
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Predict on a local dask cluster of N worker processes (the 'distributed' extra): each "
    "loads the model once and reads and writes its own blocks; threads per worker are chosen so "
    "that the workers share the cores. Outputs are zarr stores (.zarr, .ome.zarr).",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="Predict on the running dask cluster at ADDRESS (tcp://host:8786; SSH, SLURM, "
    "Kubernetes … deployments); its workers need the model's backend and the files.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the outputs an interrupted run left (zarr): blocks whose chunks are "
    "recorded as written are skipped.",
)
@server_option
@running_options
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
    workers: int | None,
    scheduler: str | None,
    resume: bool,
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
      bioimageio-run predict rdf.yaml -i big.zarr -o pred.zarr --blocksize 8 --workers 2
      bioimageio-run predict rdf.yaml -i big.zarr -o pred.zarr --scheduler tcp://head:8786 --resume
      bioimageio-run predict rdf.yaml --example
      bioimageio-run predict affable-shark -i 'images/*.png' -o 'out/{sample_id}.tif'
      bioimageio-run predict rdf.yaml -i 'images/*.tif' --server http://gpu-box:8000
    """
    try:
        if workers is not None and scheduler is not None:
            raise InputError("give --workers or --scheduler, not both")
        if (workers is not None or scheduler is not None) and server is not None:
            raise InputError("--server runs forward calls on a server; it does not combine with a cluster")
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
            workers=workers,
            scheduler=scheduler,
            resume=resume,
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
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
) -> list[Path]:
    """Predict every sample with :func:`~bioimageio_core.prediction.predict_many` (on a dask
    cluster with ``workers`` / ``scheduler``); returns the files written."""
    from bioimageio_core.prediction import predict_many

    written: list[Path] = []
    with (
        _cluster(workers, scheduler, quiet) as client,
        _pipeline_for(descr, weights_format, device, batch_size, server, source, client) as pipeline,
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
            on_progress=_BlockProgress(bar),
            devices=None if device is None else [device],
            resume=resume,
            client=client,
        )
        for sample, result in zip(samples, results, strict=True):
            written.extend(paths[(sample.id, oid)] for oid in (result.written or result.members))
            bar.update()
    return written


@contextmanager
def _cluster(workers: int | None, scheduler: str | None, quiet: bool) -> Iterator[Any]:
    """A dask client (a local cluster of ``workers`` started for this command, or the cluster
    at ``scheduler``), closed afterwards; None without either."""
    if workers is None and scheduler is None:
        yield None
        return
    from bioimageio_core.execution.distributed import (
        close_client,
        connect,
        dashboard_link,
        start_local_cluster,
        threads_per_worker,
        worker_count,
    )

    if scheduler is not None:
        client = connect(scheduler)
        info(f"connected to the dask cluster at {scheduler} ({worker_count(client)} workers)", quiet)
    else:
        assert workers is not None
        client = start_local_cluster(workers)
        info(
            f"started a local dask cluster: {workers} worker process(es), "
            f"{threads_per_worker(workers)} thread(s) each",
            quiet,
        )
    link = dashboard_link(client)
    info(f"dask dashboard: {link}" if link else "dask dashboard: not served (install bokeh)", quiet)
    try:
        yield client
    finally:
        close_client(client, own_cluster=scheduler is None)


def _pipeline_for(
    descr: ModelDescr,
    weights_format: str | None,
    device: str | None,
    batch_size: int,
    server: str | None,
    source: str | None,
    client: Any,
) -> PredictionPipeline:
    """The pipeline to plan and run with; on a cluster the model is loaded by the workers."""
    if client is None:
        return make_pipeline(descr, weights_format, device, batch_size, server, source)
    from bioimageio_core.execution.distributed import planning_pipeline

    return planning_pipeline(descr, weights_format, batch_size)


class _BlockProgress:
    """Shows blocks done / total and the throughput next to the samples' bar."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.start: float | None = None
        self.first = 0

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if self.start is None or done < self.first:
            self.start, self.first = now, done  # a new sample (or blocks skipped on resume)
        elapsed = now - self.start
        rate = (done - self.first) / elapsed if elapsed > 0 and done > self.first else 0.0
        speed = f", {rate:.3g} blocks/s" if rate else ""
        self.bar.note(f"block {done}/{total}{speed}")
        if done == total:
            self.start = None
