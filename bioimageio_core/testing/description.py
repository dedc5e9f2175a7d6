"""Testing a description: validate its format and the files a test needs, then, for a model, run
it (:class:`~bioimageio_core.testing.runner.ModelTest`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bioimageio_core._compat import weights_format_keyword
from bioimageio_core.errors import ValidationError
from bioimageio_core.loading import (
    check_files,
    describe_checked,
    load_description,
    validate_format,
)
from bioimageio_core.remote import ServerClient
from bioimageio_core.sources import Source
from bioimageio_core.spec import ModelDescr
from bioimageio_core.summary import ValidationDetail, ValidationSummary
from bioimageio_core.testing.determinism import Determinism
from bioimageio_core.testing.report import detail_of, error_at, one_line
from bioimageio_core.testing.runner import ModelTest


def test_model(
    source: Source | ModelDescr,
    weights_format: str | None = None,
    devices: Sequence[str] | None = None,
    determinism: Determinism = "seed_only",
    *,
    stop_early: bool = False,
    save_failing_outputs: str | os.PathLike[str] | None = None,
    weight_format: str | None = None,
    server: str | None = None,
) -> ValidationSummary:
    """Test a model description; see :func:`test_description` (this one expects a model)."""
    return test_description(
        source,
        weights_format=weights_format_keyword(weights_format, weight_format),
        devices=devices,
        determinism=determinism,
        stop_early=stop_early,
        save_failing_outputs=save_failing_outputs,
        expected_type="model",
        server=server,
    )


def test_description(
    source: Source | ModelDescr,
    *,
    weights_format: str | None = None,
    devices: Sequence[str] | None = None,
    determinism: Determinism = "seed_only",
    stop_early: bool = False,
    save_failing_outputs: str | os.PathLike[str] | None = None,
    expected_type: str | None = None,
    weight_format: str | None = None,
    server: str | None = None,
) -> ValidationSummary:
    """Validate a description and, for a model, test it; returns the summary (never raises for a
    bad model).

    ``weights_format``: test only this format (default: every present format whose plugin can run
    here; the others are reported as skipped with what to install). ``devices``: e.g.
    ``["cuda"]``. ``stop_early``: stop at the first failed check. A description of another type
    than a model has nothing to run: its format and referenced files are checked (files such as
    covers and a dataset's data only for existence, never downloaded). ``save_failing_outputs``: a
    folder where outputs that do not reproduce their test output are written as
    ``<weights format>/<output id>.npy``. Only the files a test needs are fetched: the test
    tensors and the weights of the formats that run.

    ``server``: the URL of a ``bioimageio-run serve`` server that runs the forward calls (the
    formats tested are those the server can run); everything else runs here. Raises
    :class:`~bioimageio_core.errors.ServerError` when the server cannot be reached or refuses
    the token (before anything is tested).
    """
    weights_format = weights_format_keyword(weights_format, weight_format)
    server_info = None
    if server is not None:
        with ServerClient(server) as client:
            server_info = client.info()
    summary, descr = _validate(source)
    if descr is None:
        return summary
    if expected_type is not None and getattr(descr, "type", None) != expected_type:
        summary.add_detail(
            detail_of(
                f"has type {expected_type}",
                [
                    error_at(
                        ("type",),
                        f"expected a {expected_type}, got a {getattr(descr, 'type', '?')}",
                    )
                ],
            )
        )
        return summary
    if not isinstance(descr, ModelDescr):
        kind = getattr(descr, "type", None) or "resource"
        summary.add_detail(
            ValidationDetail(
                f"test the {kind}",
                "passed",
                note=f"its format and referenced files; a {kind} has nothing to run",
            )
        )
        return summary
    runner = ModelTest(
        descr,
        summary,
        devices=devices,
        stop_early=stop_early,
        save_dir=None if save_failing_outputs is None else Path(save_failing_outputs),
        server=server_info,
        source=source,
    )
    try:
        runner.run(weights_format, determinism)
    except Exception as e:  # a bug or a malformed config must not turn a report into a crash
        summary.add_detail(
            detail_of(
                "test the model",
                [error_at((), f"internal error while testing: {one_line(e)} (please report this)")],
            )
        )
    return summary


def _validate(source: Any) -> tuple[ValidationSummary, Any]:
    """Format validation without io checks, then the io check of the test tensors."""
    if isinstance(source, ModelDescr):
        name = source.name
        summary = ValidationSummary(
            name=name,
            source=name,
            type="model",
            id=getattr(source, "id", None),
            format_version=source.format_version,
            converted_format_version=source.format_version,
        )
        summary.add_detail(ValidationDetail("format", "passed", kind="format"))
        descr: Any = source
    else:
        summary = validate_format(source, perform_io_checks=False)
        if not summary.is_valid:
            return summary, None
        try:
            descr = load_description(source, perform_io_checks=False)
        except ValidationError as e:  # the source changed between the two reads
            return e.summary, None
    if isinstance(descr, ModelDescr):
        kinds: tuple[str, ...] = ("test_tensor",)
        name = "io checks (test tensors)"
    else:
        kinds, name = (), "io checks"
    checked: list[tuple[str, str]] = []
    issues = list(check_files(descr, kinds or None, checked=checked))
    summary.add_detail(
        ValidationDetail.from_issues(name, issues, kind="format", note=describe_checked(checked))
    )
    return summary, None if issues else descr


test_resource = test_description
"""bioimageio.core's other name of :func:`test_description`."""

# these are library functions, not tests for pytest to collect when a test module imports them
test_model.__test__ = False  # type: ignore[attr-defined]
test_description.__test__ = False  # type: ignore[attr-defined]
