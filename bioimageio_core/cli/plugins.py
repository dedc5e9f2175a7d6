"""``bioimageio-run plugins``: what each plugin provides and whether it is usable here."""

from __future__ import annotations

import json

import click

from bioimageio_core import plugins as plugin_registry
from bioimageio_core.cli import main


@main.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def plugins_command(as_json: bool) -> None:
    """List plugin distributions, what they provide and whether it can run here.

    Frameworks are never imported: availability checks only look for installed packages.

    \b
    Examples:
      bioimageio-run plugins
      BIOIMAGEIO_DISABLE_PLUGINS=torch bioimageio-run plugins --json
    """
    registry = plugin_registry.get_registry()
    formats = registry.weight_formats.specs
    ops = registry.ops.specs
    convs = registry.converters.specs
    rows = []
    for info in registry.infos:
        unavailable: dict[str, str] = {}
        for name in info.weight_formats:
            reason = plugin_registry.unavailable_reason(formats[name])
            if reason is not None:
                unavailable[f"weight format {name}"] = reason
        for name in info.ops:
            reason = plugin_registry.unavailable_reason(ops[name])
            if reason is not None:
                unavailable[f"op {name}"] = reason
        for conv in convs.values():
            key = f"{conv.source_format}->{conv.target_format}"
            if key in info.converters:
                reason = plugin_registry.unavailable_reason(conv)
                if reason is not None:
                    unavailable[f"converter {key}"] = reason
        rows.append((info, unavailable))

    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": info.name,
                        "distribution": info.distribution,
                        "version": info.version,
                        "status": info.status,
                        "error": info.error,
                        "builtin": info.builtin,
                        "weight_formats": list(info.weight_formats),
                        "ops": list(info.ops),
                        "converters": list(info.converters),
                        "usable": info.status == "loaded" and not unavailable,
                        "unavailable": unavailable,
                    }
                    for info, unavailable in rows
                ],
                indent=2,
            )
        )
        return

    for info, unavailable in rows:
        header = f"{info.name}  ({info.distribution} {info.version})"
        if info.builtin:
            header += "  [built-in]"
        click.echo(header)
        if info.status == "disabled":
            click.echo("  disabled (BIOIMAGEIO_LOAD_PLUGINS / BIOIMAGEIO_DISABLE_PLUGINS)")
        elif info.status == "failed":
            click.echo(f"  BROKEN: {info.error}")
        for label, values in (
            ("weight formats", info.weight_formats),
            ("ops", info.ops),
            ("converters", info.converters),
            ("source resolvers", info.source_resolvers),
            ("image io", info.image_io),
        ):
            if values:
                click.echo(f"  {label}: {', '.join(values)}")
        if info.status == "loaded":
            if unavailable:
                for what, reason in unavailable.items():
                    click.echo(f"  not usable here: {what}: {reason}")
            else:
                click.echo("  usable here: yes")
