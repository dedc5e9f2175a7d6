"""Options and helpers shared by the commands.

Errors are reported in one or two lines a user can act on (the traceback only with ``--debug``);
progress bars appear on a terminal and stay quiet when output is piped or with ``--quiet``.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from bioimageio_core._closing import Closing
from bioimageio_core.errors import BioimageioError, ValidationError

if TYPE_CHECKING:
    from bioimageio_core.summary import ValidationSummary

F = TypeVar("F", bound=Callable[..., Any])

debug_option = click.option(
    "--debug", is_flag=True, help="Show the full traceback of unexpected errors."
)
quiet_option = click.option(
    "--quiet", "-q", is_flag=True, help="No progress bar and no summary lines on standard error."
)
weights_format_option = click.option(
    "--weights-format",
    "--weight-format",
    "weights_format",
    default=None,
    metavar="FORMAT",
    help="Weight format to run (e.g. onnx, torchscript); default: the best one usable here.",
)

overwrite_option = click.option(
    "--overwrite",
    is_flag=True,
    help="Replace outputs that exist already (without it, existing outputs are never replaced).",
)

summary_format_option = click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "md", "html"]),
    default="text",
    show_default=True,
    help="How to print the summary (json: the shape of bioimageio.spec's validation summary).",
)
summary_paths_option = click.option(
    "--summary",
    "summary_paths",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the summary to this file: .json, .md, .html, or text otherwise "
    "(repeatable).",
)


def save_summaries(summary: ValidationSummary, paths: Iterable[Path], debug: bool) -> None:
    """Write ``summary`` to each path (format by suffix); a failure to write is reported."""
    for path in paths:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            summary.save(path)
        except OSError as e:
            fail(e, debug)


def _allow_remote_code(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        # settings are read from the environment when used, so this reaches every loader; the
        # previous value comes back when the command ends (several commands in one process)
        name = "BIOIMAGEIO_ALLOW_REMOTE_CODE"
        previous = os.environ.get(name)
        os.environ[name] = "1"
        ctx.call_on_close(lambda: _restore_environment(name, previous))
    return value


def _restore_environment(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


allow_remote_code_option = click.option(
    "--allow-remote-code",
    is_flag=True,
    expose_value=False,
    callback=_allow_remote_code,
    help="Run code that comes with a model fetched from a URL (architecture code, TensorFlow "
    "graphs with file or other side effects); sets BIOIMAGEIO_ALLOW_REMOTE_CODE=1 for this "
    "command. Only for models you trust.",
)


def _offline(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        # read from the environment wherever settings are used (downloads, resolvers)
        os.environ["BIOIMAGEIO_OFFLINE"] = "1"
    return value


offline_option = click.option(
    "--offline",
    is_flag=True,
    expose_value=False,
    callback=_offline,
    help="Never use the network: ids, URLs and files come from the cache, and a missing one is "
    "an error naming it (sets BIOIMAGEIO_OFFLINE=1).",
)

server_option = click.option(
    "--server",
    default=None,
    metavar="URL",
    help="Run the model's forward calls on this `bioimageio-run serve` server (token from "
    "BIOIMAGEIO_SERVER_TOKEN); reading, processing, tiling and writing stay here.",
)


def options(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Several options as one decorator; ``--help`` lists them in the order given."""

    def apply(function: F) -> F:
        for decorate in reversed(decorators):
            function = decorate(function)
        return function

    return apply


running_options = options(quiet_option, allow_remote_code_option, offline_option, debug_option)
"""How a command that runs a model behaves: ``--quiet``, ``--allow-remote-code``, ``--offline``,
``--debug``."""


def device_names(
    ctx: click.Context, param: click.Parameter, value: str | tuple[str, ...] | None
) -> str | tuple[str, ...] | None:
    """Callback of ``--device`` options: each name read with the one device parser
    (:func:`bioimageio_core.backend_utils.parse_device`; the backend then checks that it knows
    the device); a malformed name is reported like other errors (exit status 1)."""
    from bioimageio_core.backend_utils import parse_device
    from bioimageio_core.errors import PluginError

    if value is None:
        return None
    names = (value,) if isinstance(value, str) else value
    if any(not name.strip() for name in names):
        raise click.BadParameter("give a device name such as cpu or cuda", param_hint="--device")
    try:
        parsed = tuple(str(parse_device(name)) for name in names)
    except PluginError as e:
        fail(e, bool(ctx.params.get("debug", False)))
    return parsed[0] if isinstance(value, str) else parsed


def fail(error: BaseException, debug: bool) -> NoReturn:
    """Report ``error`` in one or two lines and exit with status 1 (re-raise under ``--debug``)."""
    if debug:
        raise error
    click.echo(f"error: {error_text(error)}", err=True)
    sys.exit(1)


def error_text(error: BaseException) -> str:
    """What went wrong, for a user: our own errors as they are, others with their type."""
    if isinstance(error, ValidationError):
        return (
            f"{error.summary.first_error_text()}\n"
            "  hint: run `bioimageio-run validate SOURCE` for the full report"
        )
    if isinstance(error, BioimageioError):
        return str(error)
    if isinstance(error, OSError) and error.filename:
        return f"{error.strerror or error}: {error.filename}"
    return f"{type(error).__name__}: {error}\n  (run again with --debug for the traceback)"


def show_notices() -> None:
    """Print notices about outputs (:class:`~bioimageio_core.io.staging.OutputNotice`, e.g. an
    interrupted run's leftover removed) as one ``note:`` line on standard error; other warnings
    are shown as Python shows them."""
    original = warnings.showwarning
    if getattr(original, "bioimageio_run_notices", False):
        return

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        from bioimageio_core.io.staging import OutputNotice

        if issubclass(category, OutputNotice):
            click.echo(f"note: {message}", err=True)
        else:
            original(message, category, filename, lineno, file, line)

    show.bioimageio_run_notices = True  # type: ignore[attr-defined]
    warnings.showwarning = show


def show_progress(quiet: bool) -> bool:
    """Whether to draw progress bars: on a terminal and not ``--quiet``."""
    return not quiet and sys.stderr.isatty()


class Progress(Closing):
    """A tqdm bar on a terminal, nothing otherwise; use as a context manager."""

    def __init__(self, total: int, desc: str, *, enabled: bool, unit: str = "sample") -> None:
        self._bar: Any = None
        if enabled:
            from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False)

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def note(self, text: str) -> None:
        """Show ``text`` next to the bar (e.g. the current block)."""
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def info(message: str, quiet: bool) -> None:
    """A status line on standard error (suppressed by ``--quiet``)."""
    if not quiet:
        click.echo(message, err=True)
