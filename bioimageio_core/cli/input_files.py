"""Input files of ``predict`` and ``block-artifacts``: patterns matched and grouped into samples.

Each ``--inputs`` value is a path or a glob (``*``, ``?``, ``[..]``, ``**``), optionally with an
array inside a container after ``:`` (``data.zarr:raw``, ``'runs/*.h5:/raw'``,
``image.ome.zarr:1`` for a resolution level), or the URL of a zarr store. For a model with
several inputs, write ``{tensor_id}`` where the input's id goes (``data/{tensor_id}/*.tif``) or
give one pattern per input in the model's order. The text a glob's wildcards matched is the sample id
(``raw/*.tif`` matching ``raw/img01.tif`` → ``img01``); files of different inputs with the same
sample id form one sample.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from bioimageio_core.errors import InputError
from bioimageio_core.io._location import CONTAINER_SUFFIXES, is_url, is_zarr_dir, parse_location

TENSOR_ID = "{tensor_id}"


@attrs.frozen
class SampleFiles:
    """The files of one sample: input tensor id → path."""

    id: str
    inputs: Mapping[str, Path | str]
    """Input tensor id → a local path (a container member after ``:``) or a URL."""


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


def split_member(pattern: str) -> tuple[str, str]:
    """``pattern`` as (files, ``:member`` or ``""``): ``'runs/*.h5:/raw'`` →
    ``('runs/*.h5', ':/raw')``. A member follows a container suffix (``.zarr``, ``.h5``, …) or
    an existing file or zarr folder."""
    if ":" not in pattern or Path(pattern).exists():
        return pattern, ""
    left, member = pattern.rsplit(":", 1)
    left_path = Path(left)
    if left and (
        left_path.suffix.lower() in CONTAINER_SUFFIXES
        or (not _WILDCARD.search(left) and (left_path.is_file() or is_zarr_dir(left_path)))
    ):
        return left, f":{member}"
    return pattern, ""


def _expand(pattern: str) -> dict[str, Path | str]:
    """sample id → path for every file ``pattern`` matches (a plain path must exist); a
    container member (``data.zarr:raw``) stays on each path, a URL is taken as it is."""
    if is_url(pattern):
        return {_stem(parse_location(pattern).path): pattern}
    files, member = split_member(pattern)
    if not _WILDCARD.search(files):
        path = Path(files)
        if not path.exists():
            raise InputError(f"input file not found: {files}")
        return {_stem(path): Path(f"{files}{member}") if member else path}
    matches = sorted(glob.glob(files, recursive=True))
    if not matches:
        raise InputError(
            f"no file matches the input pattern {pattern!r}",
            hint="check the pattern (quote it so that the shell does not expand it)",
        )
    found: dict[str, Path | str] = {}
    for match in matches:
        sid = sample_id_of(files, match)
        if sid in found:
            raise InputError(
                f"{found[sid]} and {match} both give sample id {sid!r} for pattern {pattern!r}"
            )
        found[sid] = Path(f"{match}{member}")
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
    per_input: dict[str, dict[str, Path | str]] = {tid: {} for tid in input_ids}
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


def _merge(target: dict[str, Path | str], new: Mapping[str, Path | str], pattern: str) -> None:
    for sid, path in new.items():
        if sid in target and target[sid] != path:
            raise InputError(
                f"{target[sid]} and {path} both give sample id {sid!r} (pattern {pattern!r})",
                hint="use patterns whose wildcard parts differ between samples",
            )
        target[sid] = path


