"""``bioimageio-run predict`` and ``bioimageio-run block-artifacts``.

Input patterns: each ``--inputs`` value is a path or a glob (``*``, ``?``, ``[..]``, ``**``). For a
model with several inputs, write ``{tensor_id}`` where the input's id goes
(``data/{tensor_id}/*.tif``) or give one pattern per input in the model's order. The text a glob's
wildcards matched is the sample id (``raw/*.tif`` matching ``raw/img01.tif`` → ``img01``); files of
different inputs with the same sample id form one sample. Output patterns take ``{sample_id}`` and
``{tensor_id}`` (the output's id; ``{output_id}`` works too).
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
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
from bioimageio_core.errors import InputError

if TYPE_CHECKING:
    from bioimageio_core.pipeline import PredictionPipeline
    from bioimageio_core.sample import Sample
    from bioimageio_core.spec import ModelDescr

TENSOR_ID = "{tensor_id}"
DEFAULT_OUTPUTS = "outputs/{sample_id}_{tensor_id}.npy"


# ---------------------------------------------------------------------------------------------
# matching input files to samples (pure functions over patterns and the file system)


@attrs.frozen
class SampleFiles:
    """The files of one sample: input tensor id → path."""

    id: str
    inputs: Mapping[str, Path]


_WILDCARD = re.compile(r"\*\*|\*|\?|\[[^\]]*\]")


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A regex matching what ``glob`` matches for ``pattern``, one group per wildcard."""
    parts: list[str] = []
    pos = 0
    for m in _WILDCARD.finditer(pattern):
        parts.append(re.escape(pattern[pos : m.start()]))
        token = m.group()
        if token == "**":
            parts.append("(.*)")
        elif token == "*":
            parts.append(r"([^/\\]*)")
        elif token == "?":
            parts.append(r"([^/\\])")
        else:
            body = token[1:-1]
            if body.startswith("!"):
                body = "^" + body[1:]
            parts.append(f"([{body}])")
        pos = m.end()
    parts.append(re.escape(pattern[pos:]))
    return re.compile("".join(parts))


def sample_id_of(pattern: str, path: str) -> str:
    """The sample id of ``path`` matched by ``pattern``: the wildcard parts, else the file stem."""
    if not _WILDCARD.search(pattern):
        return _stem(Path(path))
    m = _pattern_regex(pattern).fullmatch(path)
    if m is None:  # glob normalised the path differently: fall back to the stem
        return _stem(Path(path))
    groups = [g.strip("/\\").replace("/", "_").replace("\\", "_") for g in m.groups()]
    return "_".join(g for g in groups if g) or _stem(Path(path))


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _expand(pattern: str) -> dict[str, Path]:
    """sample id → path for every file ``pattern`` matches (a plain path must exist)."""
    if not _WILDCARD.search(pattern):
        path = Path(pattern)
        if not path.exists():
            raise InputError(f"input file not found: {pattern}")
        return {_stem(path): path}
    matches = sorted(glob.glob(pattern, recursive=True))
    if not matches:
        raise InputError(
            f"no file matches the input pattern {pattern!r}",
            hint="check the pattern (quote it so that the shell does not expand it)",
        )
    found: dict[str, Path] = {}
    for match in matches:
        sid = sample_id_of(pattern, match)
        if sid in found:
            raise InputError(
                f"{found[sid]} and {match} both give sample id {sid!r} for pattern {pattern!r}"
            )
        found[sid] = Path(match)
    return found


def match_inputs(
    patterns: Sequence[str], input_ids: Sequence[str], optional: Sequence[str] = ()
) -> list[SampleFiles]:
    """Group the files matched by ``patterns`` into samples (see the module docstring).

    Raises:
        InputError: no match, an ambiguous pattern set, or a sample lacking a required input.
    """
    if not patterns:
        raise InputError("no --inputs given", hint="e.g. --inputs 'images/*.tif'")
    with_id = [p for p in patterns if TENSOR_ID in p]
    per_input: dict[str, dict[str, Path]] = {tid: {} for tid in input_ids}
    if with_id and len(with_id) != len(patterns):
        raise InputError(
            "mix of input patterns with and without {tensor_id}",
            hint="use {tensor_id} in every pattern, or give one pattern per input in order",
        )
    if with_id:
        for pattern in patterns:
            for tid in input_ids:
                concrete = pattern.replace(TENSOR_ID, tid)
                try:
                    matched = _expand(concrete)
                except InputError:
                    if tid in optional:
                        continue
                    raise
                _merge(per_input[tid], matched, concrete)
    elif len(input_ids) == 1:
        for pattern in patterns:
            _merge(per_input[input_ids[0]], _expand(pattern), pattern)
    elif len(patterns) == len(input_ids):
        for tid, pattern in zip(input_ids, patterns, strict=True):
            per_input[tid] = _expand(pattern)
        plain = [p for p in patterns if not _WILDCARD.search(p)]
        if len(plain) == len(patterns):  # one file per input: one sample
            first = per_input[input_ids[0]]
            sid = next(iter(first))
            return [SampleFiles(sid, {tid: next(iter(m.values())) for tid, m in per_input.items()})]
    else:
        raise InputError(
            f"the model has {len(input_ids)} inputs ({', '.join(input_ids)}) but "
            f"{len(patterns)} --inputs pattern(s) without {{tensor_id}}",
            hint="write {tensor_id} in the pattern (e.g. 'data/{tensor_id}/*.tif') or give one "
            "--inputs per input in this order",
        )
    sample_ids = sorted({sid for files in per_input.values() for sid in files})
    samples = []
    for sid in sample_ids:
        files = {tid: per_input[tid][sid] for tid in input_ids if sid in per_input[tid]}
        missing = [tid for tid in input_ids if tid not in files and tid not in optional]
        if missing:
            have = ", ".join(f"{t}: {p}" for t, p in files.items())
            raise InputError(
                f"sample {sid!r} has no file for input(s) {', '.join(missing)} (found {have})",
                hint="every sample needs a file per required input with the same wildcard part",
            )
        samples.append(SampleFiles(sid, files))
    return samples


def _merge(target: dict[str, Path], new: Mapping[str, Path], pattern: str) -> None:
    for sid, path in new.items():
        if sid in target and target[sid] != path:
            raise InputError(
                f"{target[sid]} and {path} both give sample id {sid!r} (pattern {pattern!r})",
                hint="use patterns whose wildcard parts differ between samples",
            )
        target[sid] = path


def output_paths(
    pattern: str, sample_ids: Sequence[str], output_ids: Sequence[str]
) -> dict[tuple[str, str], Path]:
    """``(sample id, output id) → path`` for an output pattern; every path must differ.

    Raises:
        InputError: a placeholder is missing or unknown, or two outputs share a path.
    """
    if len(sample_ids) > 1 and "{sample_id}" not in pattern:
        raise InputError(
            f"{len(sample_ids)} samples but the output pattern {pattern!r} has no {{sample_id}}",
            hint="add {sample_id}, e.g. --outputs 'out/{sample_id}_{tensor_id}.tif'",
        )
    if len(output_ids) > 1 and not ({"{tensor_id}", "{output_id}"} & _placeholders(pattern)):
        raise InputError(
            f"the model has {len(output_ids)} outputs ({', '.join(output_ids)}) but the output "
            f"pattern {pattern!r} has no {{tensor_id}}",
            hint="add {tensor_id}, e.g. --outputs 'out/{sample_id}_{tensor_id}.tif'",
        )
    paths: dict[tuple[str, str], Path] = {}
    seen: dict[Path, tuple[str, str]] = {}
    for sid in sample_ids:
        for oid in output_ids:
            try:
                path = Path(pattern.format(sample_id=sid, tensor_id=oid, output_id=oid))
            except (KeyError, IndexError, ValueError) as e:
                raise InputError(
                    f"output pattern {pattern!r} is not valid ({type(e).__name__}: {e})",
                    hint="only {sample_id} and {tensor_id} are replaced; double other braces",
                ) from None
            if path in seen:
                raise InputError(
                    f"outputs {seen[path]} and {(sid, oid)} would both be written to {path}"
                )
            seen[path] = (sid, oid)
            paths[(sid, oid)] = path
    return paths


def _placeholders(pattern: str) -> set[str]:
    return set(re.findall(r"\{[a-z_]+\}", pattern))


def check_not_existing(paths: Sequence[Path], overwrite: bool) -> None:
    """Refuse to replace existing outputs unless ``overwrite`` (``OutputExistsError``).

    Outputs an interrupted run left incomplete are not refused: writing replaces them.
    """
    from bioimageio_core.io import check_outputs

    check_outputs(paths, overwrite)


# ---------------------------------------------------------------------------------------------
# shared steps


def _load_model(source: str) -> ModelDescr:
    from bioimageio_core.pipeline import as_model_description

    return as_model_description(source)


def _files(
    descr: ModelDescr, input_patterns: Sequence[str], output_pattern: str, overwrite: bool
) -> tuple[list[SampleFiles], dict[tuple[str, str], Path]]:
    """The input files of each sample and the output file of each (sample, output); existing
    output files are refused unless ``overwrite``."""
    from bioimageio_core.chain import chain_inputs

    # a chained model (output_of) takes its upstream models' inputs too
    input_ids, optional = chain_inputs(descr)
    samples = match_inputs(input_patterns, input_ids, optional)
    paths = output_paths(output_pattern, [s.id for s in samples], [t.id for t in descr.outputs])
    check_not_existing(list(paths.values()), overwrite)
    return samples, paths


def _pipeline(
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
        from bioimageio_core.remote import model_reference

        if model_reference(source, descr) is not None:
            model = source
    return create_prediction_pipeline(
        model,
        devices=None if device is None else [device],
        weights_format=weights_format,
        batch_size=batch_size,
        server=server,
    )


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


def _device_choice(value: str | None) -> str | None:
    # the backend knows its devices (cpu, cuda, cuda:1, mps, …) and explains a wrong one
    if value is not None and not value.strip():
        raise click.BadParameter("give a device name such as cpu or cuda", param_hint="--device")
    return None if value is None else value.strip()


_device_option = click.option(
    "--device",
    default=None,
    metavar="DEVICE",
    callback=lambda ctx, param, value: _device_choice(value),
    help="Device to run on (cpu, cuda, cuda:1, mps …, as the backend names them); default: GPU "
    "if the backend finds one, else CPU.",
)


def _parse_axes(
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


_axes_option = click.option(
    "--axes",
    default=None,
    metavar="LETTERS|ID=LETTERS,...",
    callback=_parse_axes,
    help="Axes of the input files when they do not record them, e.g. yx or cyx "
    "(b c t i x y z) for every input, or per input tensor id: raw=cyx,mask=yx; default: from "
    "the file, else guessed from the shape.",
)


# ---------------------------------------------------------------------------------------------
# predict


@main.command("predict")
@click.argument("source")
@click.option(
    "--inputs",
    "-i",
    "input_patterns",
    multiple=True,
    metavar="PATTERN",
    help="Input files: a path or glob; use {tensor_id} for models with several inputs. Repeat "
    "for more patterns.",
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
@_device_option
@weights_format_option
@_axes_option
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
      bioimageio-run predict rdf.yaml --example
      bioimageio-run predict affable-shark -i 'images/*.png' -o 'out/{sample_id}.tif'
      bioimageio-run predict rdf.yaml -i 'images/*.tif' --server http://gpu-box:8000
    """
    try:
        descr = _load_model(source)
        if example:
            if input_patterns:
                raise InputError("--example runs the model's test inputs; leave out --inputs")
            folder = Path(f"{_slug(descr.name)}_example")
            input_patterns = tuple(_example_inputs(descr, folder))
            output_pattern = output_pattern or str(
                folder / "outputs" / "{sample_id}_{tensor_id}.npy"
            )
        output_pattern = output_pattern or DEFAULT_OUTPUTS
        samples, paths = _files(descr, input_patterns, output_pattern, overwrite)
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
    """Predict every sample; outputs are written (block by block where the format allows)
    under temporary names and appear complete once their sample is done."""
    from bioimageio_core.prediction import predict

    written: list[Path] = []
    with (
        _pipeline(descr, weights_format, device, batch_size, server, source) as pipeline,
        Progress(len(samples), "predicting", enabled=show_progress(quiet)) as bar,
    ):
        pipeline = _with_dataset_statistics(
            pipeline, samples, stats_path, blocksize, batch_size, axes, quiet
        )
        for sample in samples:
            result = predict(
                model=pipeline,
                inputs=dict(sample.inputs),
                sample_id=sample.id,
                blocksize_parameter=blocksize,
                batch_size=batch_size,
                axes=axes,
                on_progress=lambda done, total: bar.note(f"block {done}/{total}"),
                save_output_path=output_pattern,
                overwrite=overwrite,
            )
            written.extend(paths[(sample.id, oid)] for oid in result.members)
            bar.update()
    return written


def _with_dataset_statistics(
    pipeline: PredictionPipeline,
    samples: Sequence[SampleFiles],
    stats_path: Path | None,
    blocksize: int | None,
    batch_size: int,
    axes: str | dict[str, str] | None,
    quiet: bool,
) -> PredictionPipeline:
    """The pipeline with dataset statistics over every sample (or from ``stats_path``)."""
    from bioimageio_core.dataset_stats import prepare_dataset_statistics
    from bioimageio_core.prediction import predict

    if not pipeline.running_dataset_measures:
        if stats_path is not None:
            info(f"--stats {stats_path}: the model needs no dataset statistics", quiet)
        return pipeline
    if stats_path is None or not stats_path.exists():
        info(f"computing dataset statistics over {len(samples)} sample(s)", quiet)

    def digested() -> Iterator[Sample]:
        for s in samples:
            yield pipeline.digest(dict(s.inputs), axes=axes, sample_id=s.id)

    def predict_raw(pp: PredictionPipeline, sample: Sample) -> Sample:
        return predict(
            model=pp, inputs=sample, sample_id=sample.id, blocksize_parameter=blocksize,
            batch_size=batch_size, skip_postprocessing=True,
        )

    prepared, report = prepare_dataset_statistics(
        pipeline, digested, predict_raw=predict_raw, path=stats_path
    )
    info(report.describe(), quiet)
    return prepared


# ---------------------------------------------------------------------------------------------
# block-artifacts


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
@click.option(
    "--inputs",
    "-i",
    "input_patterns",
    multiple=True,
    required=True,
    metavar="PATTERN",
    help="Input files, as for `predict` (globs, {tensor_id}).",
)
@click.option(
    "--outputs",
    "-o",
    "output_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the difference images <sample_id>_<output id><suffix>.",
)
@click.option(
    "--blocksize",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="N",
    help="Blocksize parameter of the blockwise run (small blocks show artifacts best).",
)
@click.option("--suffix", default=".npy", show_default=True, help="File format of the differences.")
@click.option(
    "--fail-above",
    type=float,
    default=None,
    metavar="DIFF",
    help="Exit with 1 when any difference exceeds DIFF.",
)
@_device_option
@weights_format_option
@_axes_option
@overwrite_option
@quiet_option
@allow_remote_code_option
@offline_option
@debug_option
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

        descr = _load_model(source)
        suffix = suffix if suffix.startswith(".") else f".{suffix}"
        pattern = str(output_dir / ("{sample_id}_{tensor_id}" + suffix)).replace("\\", "/")
        samples, paths = _files(descr, input_patterns, pattern, overwrite)
        results: list[Artifact] = []
        with (
            _pipeline(descr, weights_format, device, 1) as pipeline,
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
