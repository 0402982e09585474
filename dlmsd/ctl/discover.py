"""``dlmsctl discover``: read a meter's object list and values, print them as a table,
and write a ready configuration (``-o``).

The session is the daemon's own (:mod:`dlmsd.session`, the reader of
:mod:`dlmsd.protocol.reader`); what is read and how the configuration is made is the
pure :mod:`dlmsd.ctl.plan`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from dlmsd.config import Referencing, parse_config
from dlmsd.ctl.connect import Target, connection_options, device_settings, open_session, validate
from dlmsd.ctl.plan import Discover, Discovery, access_text, generate_config, signal_objects
from dlmsd.errors import ConfigError, DlmsdError
from dlmsd.logsetup import configure_logging, get_logger
from dlmsd.protocol.obis_names import class_name

__all__ = ["discover", "render_table"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_VALUE_WIDTH = 40
#: Key files of a device: relative to the configuration they came from.
_KEY_FILES = ("client_private_key", "server_public_key")


def _short(value: object) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= _VALUE_WIDTH else text[:_VALUE_WIDTH - 1] + "…"


def render_table(discovery: Discovery) -> str:
    """The table ``discover`` prints: OBIS, class, standard name, value, unit, access."""
    rows = [("OBIS", "class", "name", "value", "unit", "access")]
    for item in discovery.objects:
        obj = item.obj
        value = _short(item.value) if item.read else f"({item.error})"
        if item.read and item.error:
            value += f" ({item.error})"
        rows.append((str(obj.obis), f"{obj.class_id} {class_name(obj.class_id)}",
                     item.name, value, item.unit, access_text(obj)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
             + "  " + row[-1] for row in rows]
    if discovery.sap_assignment:
        lines.append("")
        lines.append("SAP assignment (0.0.41.0.0.255): " + ", ".join(
            f"{sap} {name}" for sap, name in discovery.sap_assignment))
    elif discovery.sap_error:
        lines.append("")
        lines.append(f"SAP assignment: {discovery.sap_error}")
    return "\n".join(line.rstrip() for line in lines)


async def _read(target: Target, trace: bool, log: Any) -> Discovery:
    session = open_session(target, log, trace=trace)
    try:
        await session.open()
        discovery: Discovery = await session.run(
            Discover(short_names=target.device.referencing is Referencing.SN))
        return discovery
    finally:
        await session.close()


def _portable(settings: dict[str, Any], base: Path) -> dict[str, Any]:
    """Key file paths made absolute, so the written file works from anywhere."""
    out = dict(settings)
    for key in _KEY_FILES:
        if isinstance(out.get(key), str):
            out[key] = str((base / out[key]).resolve())
    return out


def _write(path: str, doc: dict[str, Any], secret: bool, force: bool) -> None:
    file = Path(path)
    if file.exists() and not force:
        raise click.UsageError(f"-o {path}: the file exists (--force to replace it)")
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    # a password or key in it: readable by its owner only
    fd = os.open(file, flags, 0o600 if secret else 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


@click.command("discover")
@connection_options()
@click.option("--alias", metavar="ALIAS",
              help="device_alias (and name) of the device in the written configuration.")
@click.option("-o", "--output", metavar="FILE",
              help="Write a ready configuration: the device and one signal per register, "
                   "extended and demand register and numeric data object.")
@click.option("--all", "include_all", is_flag=True,
              help="With -o: a signal for every object whose attribute 2 was read.")
@click.option("--force", is_flag=True, help="With -o: replace an existing file.")
@click.option("--dlms", "trace", is_flag=True, help="Show the DLMS traffic on stderr.")
@click.option("-d", "--debug", type=click.IntRange(0, 7), default=4, show_default=True,
              help="Log level 0..7 (syslog style), on stderr.")
def discover(config_path: str | None, device_alias: str | None, alias: str | None,
             output: str | None, include_all: bool, force: bool, trace: bool, debug: int,
             **options: Any) -> None:
    """Read a meter's object list and every readable value; print them as a table and
    (with -o) write a configuration that reads them."""
    if include_all and output is None:
        raise click.UsageError("--all goes with -o FILE")
    if force and output is None:
        raise click.UsageError("--force goes with -o FILE")
    settings, top = device_settings(config_path, device_alias, options, alias=alias)
    if alias is not None and config_path is None:
        settings["name"] = alias
    base = Path(config_path).resolve().parent if config_path else Path.cwd()
    try:
        target = validate(settings, top, base, from_options=True)
    except ConfigError as exc:
        click.echo(f"dlmsctl discover: {exc}:", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        sys.exit(EXIT_USAGE)
    if output is not None and Path(output).exists() and not force:
        raise click.UsageError(f"-o {output}: the file exists (--force to replace it)")
    configure_logging(debug)
    log = get_logger(device=target.device.device_alias, port=target.device.port_name)
    try:
        discovery = asyncio.run(_read(target, trace, log))
    except DlmsdError as exc:
        click.echo(f"dlmsctl discover: {target.device.port_name}: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        click.echo("dlmsctl discover: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    click.echo(render_table(discovery))
    if output is None:
        return
    doc = {**top, **generate_config(_portable(target.settings, base), discovery,
                                    include_all=include_all)}
    try:
        parse_config(doc, output, Path(output).resolve().parent)  # what dlms --check says
    except ConfigError as exc:  # a bug of ours: say it rather than write a broken file
        raise DlmsdError(f"the generated configuration is invalid: {exc.problems}") from exc
    secret = any(k in target.settings for k in ("password", "block_cipher_key",
                                                "authentication_key", "dedicated_key"))
    _write(output, doc, secret, force)
    count = len(signal_objects(discovery, include_all=include_all))
    click.echo(f"\nwrote {output}: 1 device, {count} signals"
               + (" (it holds the password or keys: mode 600)" if secret else ""), err=True)
