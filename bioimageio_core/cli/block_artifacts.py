"""``bioimageio-run block-artifacts``: where blockwise prediction differs from whole-image
prediction."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import click

from bioimageio_core.cli import _prediction as steps
from bioimageio_core.cli import main
from bioimageio_core.cli._common import (
    Progress,
    fail,
    info,
    running_options,
    show_progress,
)

if TYPE_CHECKING:
    from bioimageio_core.pipeline import PredictionPipeline
    from bioimageio_core.sample import Sample


@attrs.frozen
class Artifact:
    """Difference between whole-image and blockwise prediction of one output of one sample."""

    sample_id: str
    output_id: str
    max_diff: float
    mean_diff: float
    n_blocks: int
    path: Path


def block_differences(
    pipeline: PredictionPipeline,
    sample: Sample | Mapping[str, Any],
    blocksize: int,
    batch_size: int = 1,
) -> tuple[dict[str, Any], int]:
    """``|whole - blockwise|`` per output (float32 arrays) and the number of blocks used."""
    import numpy as np

    whole = pipeline.predict_sample_without_blocking(sample)
    counted: list[int] = [0]

    def count(done: int, total: int) -> None:
        counted[0] = total

    blocked = pipeline.predict_sample_with_blocking(
        sample, blocksize, batch_size, on_progress=count
    )
    diffs = {
        oid: np.abs(
            np.asarray(whole.members[oid].data, dtype=np.float64)
            - np.asarray(blocked.members[oid].data, dtype=np.float64)
        ).astype(np.float32)
        for oid in whole.members
    }
    return diffs, counted[0]


@main.command("block-artifacts")
@click.argument("source")
@steps.inputs_option("Input files, as for `predict` (globs, {tensor_id}).", required=True)
@click.option(
    "--outputs",
    "-o",
    "output_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the difference images <sample_id>_<output id><suffix>.",
)
@steps.blocksize_option(
    "Blocksize parameter of the blockwise run (small blocks show artifacts best).", default=0
)
@click.option("--suffix", default=".npy", show_default=True, help="File format of the differences.")
@click.option(
    "--fail-above",
    type=float,
    default=None,
    metavar="DIFF",
    help="Exit with 1 when any difference exceeds DIFF.",
)
@steps.prediction_options
@running_options
def block_artifacts_command(
    source: str,
    input_patterns: tuple[str, ...],
    output_dir: Path,
    blocksize: int,
    suffix: str,
    fail_above: float | None,
    device: str | None,
    weights_format: str | None,
    axes: str | dict[str, str] | None,
    overwrite: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Show where blockwise prediction differs from whole-image prediction.

    Predicts every input once whole and once in small blocks, writes |whole - blockwise| per
    output and prints the largest difference. Non-zero differences along block borders mean the
    model's halo is too small (or its outputs depend on the whole image, e.g. by normalisation
    inside the network).

    \b
    Example:
      bioimageio-run block-artifacts rdf.yaml --inputs 'images/*.tif' --outputs artifacts/
    """
    try:
        from bioimageio_core.io import save_tensor
        from bioimageio_core.tensor import Tensor

        descr = steps.load_model(source)
        suffix = suffix if suffix.startswith(".") else f".{suffix}"
        pattern = str(output_dir / ("{sample_id}_{tensor_id}" + suffix)).replace("\\", "/")
        samples, paths = steps.sample_files(descr, input_patterns, pattern, overwrite)
        results: list[Artifact] = []
        with (
            steps.make_pipeline(descr, weights_format, device, 1) as pipeline,
            Progress(len(samples), "comparing", enabled=show_progress(quiet)) as bar,
        ):
            for sample in samples:
                digested = pipeline.digest(dict(sample.inputs), axes=axes, sample_id=sample.id)
                diffs, n_blocks = block_differences(pipeline, digested, blocksize)
                for oid, diff in diffs.items():
                    path = paths[(sample.id, oid)]
                    dims = next(t for t in pipeline.shape.outputs if t.id == oid).axis_ids
                    save_tensor(path, Tensor(diff, dims), overwrite=overwrite)
                    results.append(
                        Artifact(
                            sample.id,
                            oid,
                            float(diff.max()) if diff.size else 0.0,
                            float(diff.mean()) if diff.size else 0.0,
                            n_blocks,
                            path,
                        )
                    )
                bar.update()
    except Exception as e:
        fail(e, debug)
    for r in results:
        click.echo(
            f"{r.sample_id} {r.output_id}: max |whole - blockwise| = {r.max_diff:.3g} "
            f"(mean {r.mean_diff:.3g}, {r.n_blocks} blocks) -> {r.path}"
        )
        if r.n_blocks <= 1:
            click.echo(
                f"  note: the input fits into one block of blocksize {blocksize}; use a larger "
                "input or a smaller --blocksize to see artifacts",
                err=True,
            )
    worst = max((r.max_diff for r in results), default=0.0)
    info(f"largest difference: {worst:.3g}", quiet)
    if fail_above is not None and worst > fail_above:
        raise SystemExit(1)
