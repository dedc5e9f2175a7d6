"""``bioimageio-run serve``: run models for clients over HTTP (needs the ``server`` extra)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from bioimageio_core.cli import main
from bioimageio_core.cli._common import F, allow_remote_code_option, debug_option, fail
from bioimageio_core.settings import get_settings


def _megabytes_option(flag: str, default: float, help: str) -> Callable[[F], F]:
    """A size limit in MB (> 0)."""
    return click.option(
        flag,
        type=click.FloatRange(min=0, min_open=True),
        default=default,
        show_default=True,
        help=help,
    )


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on (0: a free port; the address is printed).",
)
@click.option(
    "--token",
    default=None,
    metavar="TOKEN",
    help="Bearer token clients must send (at least 16 characters); default: "
    "BIOIMAGEIO_SERVER_TOKEN. "
    "Prefer the environment variable: a command line is visible to other users. Required "
    "for any host other than a loopback address.",
)
@click.option(
    "--device",
    "devices",
    multiple=True,
    metavar="DEVICE",
    help="Device models run on (cpu, cuda, cuda:1 …); default: each backend's choice (a GPU "
    "when it finds one). Clients may not ask for other devices.",
)
@click.option(
    "--max-models",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Models kept loaded; the least recently used one is unloaded beyond this.",
)
@_megabytes_option(
    "--max-request-mb", 512, "Largest request body accepted (arrays of one forward call, JSON)."
)
@_megabytes_option("--max-upload-mb", 4096, "Largest model package accepted.")
@click.option(
    "--store",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for uploaded packages (kept by sha256); default: a folder in the user's "
    "data directory.",
)
@click.option(
    "--shutdown-timeout",
    type=click.FloatRange(min=0),
    default=60,
    show_default=True,
    help="Seconds SIGTERM waits for requests in flight before closing connections.",
)
@click.option("--access-log", is_flag=True, help="Log every request.")
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
)
@click.option(
    "--ssl-certfile",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="Serve HTTPS with this certificate (and --ssl-keyfile).",
)
@click.option("--ssl-keyfile", type=click.Path(dir_okay=False, exists=True), default=None)
@allow_remote_code_option
@debug_option
def serve_command(
    host: str,
    port: int,
    token: str | None,
    devices: tuple[str, ...],
    max_models: int,
    max_request_mb: float,
    max_upload_mb: float,
    store: Path | None,
    shutdown_timeout: float,
    access_log: bool,
    log_level: str,
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
    debug: bool,
) -> None:
    """Serve models over HTTP: clients run `predict --server URL` or `test --server URL`.

    Clients name a model by URL or id (the server fetches it) or upload its package once
    (kept by sha256). Loaded models are kept (--max-models) and shared by all clients; forward
    calls to one model run one at a time, different models in parallel. Code that comes with
    a model (e.g. a pytorch_state_dict architecture) runs only with --allow-remote-code, as every
    model a client names counts as fetched. Stop with Ctrl-C or SIGTERM: requests in flight
    finish, then every model is unloaded.

    \b
    Examples:
      bioimageio-run serve
      BIOIMAGEIO_SERVER_TOKEN=$(python -c "import secrets; print(secrets.token_urlsafe(32))") \\
          bioimageio-run serve --host 0.0.0.0 --device cuda --max-models 4
    """
    try:
        from bioimageio_core.io._deps import require
        from bioimageio_core.server.config import MB, ServerConfig, default_store

        for module in ("starlette", "uvicorn"):
            require(module, "server", "bioimageio-run serve")
        from bioimageio_core.server.run import serve

        if bool(ssl_certfile) != bool(ssl_keyfile):
            raise click.UsageError("give both --ssl-certfile and --ssl-keyfile, or neither")
        config = ServerConfig(
            host=host,
            port=port,
            token=token if token is not None else get_settings().server_token,
            devices=devices or None,
            max_models=max_models,
            max_request_bytes=int(max_request_mb * MB),
            max_upload_bytes=int(max_upload_mb * MB),
            store=store if store is not None else default_store(),
            shutdown_timeout_s=shutdown_timeout,
            access_log=access_log,
            log_level=log_level,
        ).check()
        serve(config, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)
    except click.UsageError:
        raise
    except Exception as e:
        fail(e, debug)
