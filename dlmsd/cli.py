"""The ``dlms`` command (WCC Lite compatible: ``dlms -c /etc/dlms/dlms.json -d7 --dlms``).

Exit codes: 0 success; 1 ``--once`` with a signal that is not ok, or the daemon failed
(logged as ``dlms_failed``); 2 configuration or command-line error (nothing started);
130 ``--once`` interrupted (Ctrl-C).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from dlmsd import __version__
from dlmsd.config import DEFAULT_STATE_DIR, Config, DeviceConfig, Mode, load_config
from dlmsd.errors import ConfigError
from dlmsd.logsetup import configure_logging, get_logger, json_line, notice, port_matches
from dlmsd.signals import SignalStatus, SignalTable, Snapshot

__all__ = ["main", "table_json"]

DEFAULT_CONFIG = "/etc/dlms/dlms.json"
EXIT_OK, EXIT_NOT_OK, EXIT_CONFIG = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it


def _print_config_error(exc: ConfigError, log_format: str = "text") -> None:
    """The problems (in path order), then the warnings found beside them."""
    if log_format == "json":
        click.echo(json_line("error", "config_error", error=str(exc),
                             problems=list(exc.problems)), err=True)
    elif exc.problems == [str(exc)]:  # one problem with the file itself: say it once
        click.echo(f"dlms: {exc}; the protocol does not start", err=True)
    else:
        click.echo(f"dlms: {exc}; the protocol does not start:", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
    _print_warnings(exc.warnings, log_format)


def _warn(text: str, log_format: str, event: str = "config_warning") -> None:
    """A warning said before logging runs: ``dlms: warning: ...`` or a JSON line."""
    if log_format == "json":
        click.echo(json_line("warning", event, warning=text), err=True)
    else:
        click.echo(f"dlms: warning: {text}", err=True)


def _print_warnings(warnings: Sequence[str], log_format: str = "text") -> None:
    for warning in warnings:
        _warn(warning, log_format)


def _check_port(config: Config, given: str, log_format: str) -> str:
    """``-p`` must name a port of the configuration (``PORT1`` through the ``ports``
    table); a port whose devices are all disabled is said so (its output would be
    silent).  Returns the port as the devices name it."""
    port = config.port_path(given)  # -p PORT1: the path it stands for
    ports = sorted({d.port_name for d in config.devices})
    if not any(port_matches(port, p) for p in ports):
        shown = repr(given) if port == given else f"{given!r} ({port})"
        raise click.BadParameter(
            f"{shown}: no device uses this port (ports: {', '.join(ports) or 'none'})",
            param_hint="'-p' / '--port'",
        )
    devices = [d for d in config.devices if port_matches(port, d.port_name)]
    if not any(d.enable for d in devices):
        names = ", ".join(d.device_alias for d in devices)
        _warn(f"-p {given}: every device on this port is disabled ({names}): nothing on "
              "it is read, so nothing is shown for it", log_format, event="port_disabled")
    return port


def _port_text(dev: DeviceConfig) -> str:
    return f"{dev.port_name} ({dev.port_alias})" if dev.port_alias else dev.port_name


def _summary(config: Config) -> str:
    lines = [f"configuration {config.source}: OK, {len(config.devices)} device(s), "
             f"{len(config.signals)} signal(s)", "", "devices:"]
    for dev in config.devices:
        state = "enabled" if dev.enable else "disabled"
        count = len(config.signals_of(dev.device_alias))
        server = (f"wPort {dev.server.logical}" if dev.mode is Mode.WRAPPER
                  else dev.server.describe())
        lines.append(
            f"  {dev.device_alias} ({dev.name}) {state}: {_port_text(dev)} {dev.mode.value} "
            f"{dev.referencing.value} auth={dev.auth.value} client=0x{dev.client_address:02X} "
            f"server={server}, {count} signal(s)"
        )
    outputs = []
    if config.http is not None:
        token = ", bearer token" if config.http.token is not None else ""
        outputs.append(f"http: {config.http.listen}{token}")
    if config.mqtt is not None:
        m = config.mqtt
        extras = [f"user {m.username}" if m.username else "",
                  "password" if m.password is not None else "",
                  ("TLS (insecure)" if m.tls.insecure else "TLS") if m.tls else ""]
        outputs.append(f"mqtt: {m.host}:{m.port} client_id={m.client_id} "
                       f"topics={m.topic_prefix}/... format={m.format} publish={m.publish} "
                       f"qos={m.qos} retain={str(m.retain).lower()} queue={m.queue_size}"
                       + "".join(f", {e}" for e in extras if e))
    if outputs:
        lines += ["", *outputs]
    lines += ["", "signals:"]
    for sig in config.signals:
        state = "" if sig.enable else " (disabled)"
        cls = f" class {sig.class_id}" if sig.class_id is not None else ""
        short = f" sn 0x{sig.address:04X}" if sig.address else ""
        lines.append(f"  {sig.signal_alias} [{sig.device_alias}] {sig.obis}:{sig.attribute}"
                     f"{cls}{short} {sig.signal_name!r}{state}")
    if config.profiles:
        lines += ["", "profiles:"]
    for prof in config.profiles:
        state = "" if prof.enable else " (disabled)"
        every = ("every capture_period" if prof.interval_ms is None
                 else f"every {prof.interval_ms} ms")
        kept = "all columns" if prof.columns is None else f"{len(prof.columns)} column(s)"
        lines.append(f"  {prof.profile_alias} [{prof.device_alias}] {prof.obis} by "
                     f"{prof.access}, {every}, backfill {prof.backfill_hours} h, {kept}{state}")
    return "\n".join(lines)


#: A table cell wider than this (a long hex string, a structure) wraps onto more lines.
MAX_CELL = 40
#: The narrowest the value and the last (error) column get on a narrow terminal.
MIN_VALUE_CELL, MIN_LAST_CELL = 20, 24
#: The table's width when stdout is not a terminal (a pipe, a file).
DEFAULT_TABLE_WIDTH = 100
MIN_TABLE_WIDTH = 60


def _table_width() -> int:
    import shutil  # here: only --once draws a table (shutil costs 0.6 MB)

    return max(MIN_TABLE_WIDTH,
               shutil.get_terminal_size((DEFAULT_TABLE_WIDTH, 24)).columns)


def _wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` (long words such as hex cut)."""
    if len(text) <= width:
        return [text]
    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def _table_text(snapshot: Snapshot, width: int | None = None) -> str:
    """The signal table: a cell longer than :data:`MAX_CELL` wraps within its column,
    the last column (the error) within ``width`` (the terminal's; the value column
    narrows to make room), continuation lines indented under their column."""
    total = _table_width() if width is None else width
    rows = [("DEVICE", "SIGNAL", "OBIS", "VALUE", "UNIT", "STATUS", "ERROR")]
    for s in snapshot.signals:
        rows.append((s.device_alias, s.signal_alias, f"{s.obis}:{s.attribute}",
                     "" if s.value is None else str(s.value), s.unit, s.status.value,
                     s.error or ""))
    widths = [min(MAX_CELL, max(len(r[i]) for r in rows)) for i in range(len(rows[0]) - 1)]
    room = total - sum(w + 2 for w in widths)
    if room < MIN_LAST_CELL:  # narrow: the value column gives way first
        widths[3] = max(MIN_VALUE_CELL, widths[3] - (MIN_LAST_CELL - room))
    last = max(MIN_LAST_CELL, total - sum(w + 2 for w in widths))
    out = []
    for row in rows:
        cells = [_wrap(cell, w) for cell, w in zip(row, widths, strict=False)]
        cells.append(_wrap(row[-1], last))
        for n in range(max(len(c) for c in cells)):
            parts = [(c[n] if n < len(c) else "").ljust(w)
                     for c, w in zip(cells, [*widths, last], strict=True)]
            out.append("  ".join(parts).rstrip())
    out.append("")
    for d in snapshot.devices:
        error = f" ({d.error})" if d.error else ""
        out.extend(textwrap.wrap(f"device {d.device_alias} {d.port}: {d.status.value}{error}",
                                 total, subsequent_indent="    ", break_on_hyphens=False))
    for alias, read in (snapshot.profiles or {}).items():
        span = f": {read[0]['ts']} .. {read[-1]['ts']}" if read else ""
        out.append(f"profile {alias}: {len(read)} row{'' if len(read) == 1 else 's'}{span}"
                   " (--json shows them)")
    return "\n".join(out)


def table_json(snapshot: Snapshot) -> str:
    """The signal table as ``--once --json`` prints it (also the HTTP API's
    /api/v1/signals)."""
    return json.dumps(snapshot.to_json(), indent=2, default=str)


def _all_ok(snapshot: Snapshot) -> bool:
    return all(s.status is not SignalStatus.ERROR for s in snapshot.signals)


# The supervisor (the protocol stack) and the MQTT output are imported by the commands
# that run them: --check needs neither (issue 16).
async def _run_daemon(config_path: str, config: Config, trace: bool) -> int:
    from dlmsd.outputs.mqtt import MQTT_SPOOL, MqttOutput
    from dlmsd.supervisor import Supervisor

    log = get_logger()
    table = SignalTable.from_config(config)
    supervisor = Supervisor(config, table=table, trace=trace, log=log)
    mqtt = MqttOutput(table, log, spool=Path(config.state_directory(os.environ))
                      / MQTT_SPOOL)
    stop = asyncio.Event()
    reloads: list[asyncio.Task[None]] = []
    loop = asyncio.get_running_loop()
    http: Any = None  # the HTTP API (dlmsd.outputs.http), when configured

    async def reload() -> None:
        try:
            new = load_config(config_path)
        except ConfigError as exc:
            log.error("reload_rejected", error=str(exc), problems=exc.problems,
                      warnings=exc.warnings)
            return
        for warning in new.warnings:
            log.warning("config_warning", warning=warning)
        await supervisor.reload(new)
        await mqtt.apply(new)  # restarts the publisher if the mqtt section changed

    def on_hup() -> None:
        notice(log, "reload_requested", signal="SIGHUP")
        reloads.append(loop.create_task(reload(), name="reload"))

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    try:
        notice(log, "dlms_starting", version=__version__, config=config_path,
               devices=sum(1 for d in config.devices if d.enable))
        await supervisor.start()
        if config.http is not None:
            from dlmsd.outputs.http import HttpServer  # aiohttp: loaded only when used

            http = HttpServer(config.http, table, lambda: supervisor.stats, log)
            try:
                await http.start()
            except OSError as exc:
                log.error("http_failed", error=str(exc))
                return EXIT_NOT_OK
        await mqtt.apply(config)
        await stop.wait()
        notice(log, "dlms_stopping")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        for task in reloads:
            if not task.done():
                await task
        if http is not None:
            await http.stop()
        await mqtt.stop()  # <prefix>/status offline
        await supervisor.stop()
    notice(log, "dlms_stopped")
    return EXIT_OK


async def _run_once(config: Config, trace: bool) -> Snapshot:
    from dlmsd.supervisor import Supervisor

    supervisor = Supervisor(config, trace=trace)
    return await supervisor.run_once()


def _version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"dlms (dlmsd) {__version__}")
        ctx.exit(0)


DEFAULT_DEBUG = 5

_EPILOG = (
    "Without --check or --once the daemon runs until SIGTERM or SIGINT. SIGHUP reloads the "
    "configuration: an invalid one is rejected with its errors logged and the running one "
    "is kept.\n\n"
    "State kept across restarts (the invocation counters of ciphered devices) lives in the "
    f"state directory: the configuration's state_dir key (default {DEFAULT_STATE_DIR}), or "
    "$DLMS_STATE_DIR when set."
)


@click.command(context_settings={"help_option_names": ["-h", "--help"]}, epilog=_EPILOG)
@click.option("-c", "--config", "config_path", default=DEFAULT_CONFIG, show_default=True,
              metavar="PATH", help="Configuration file (JSON with devices and signals).")
@click.option("-d", "--debug", type=click.IntRange(0, 7), default=DEFAULT_DEBUG,
              show_default=True, metavar="LEVEL",
              help="Log level 0..7, syslog style; a level shows its lines and all more "
              "severe ones: 0 emerg, 1 alert, 2 crit (0..2: critical lines only), 3 err "
              "(a device offline, a rejected reload), 4 warning (signal errors, scan "
              "overruns), 5 notice (start, stop, reload), 6 info (connections, every "
              "signal change), 7 debug.")
@click.option("--dlms", "trace", is_flag=True,
              help="Show the DLMS traffic: every frame in hex with a decoded summary.")
@click.option("-p", "--port", metavar="NAME",
              help="Show output for one communication port only (PORT1, /dev/ttyS1, ip:port).")
@click.option("--check", is_flag=True,
              help="Validate the configuration, print a summary and exit (0 ok, 2 errors).")
@click.option("--once", is_flag=True,
              help="Poll every enabled device once, print the signal table and exit "
              "(0 all ok, 1 a signal not ok, 2 configuration error).")
@click.option("--json", "as_json", is_flag=True, help="With --once: print the table as JSON.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Log lines as key=value text or one JSON object each.")
@click.option("-V", "--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_version, help="Show the version and exit.")
def main(config_path: str, debug: int, trace: bool, port: str | None, check: bool,
         once: bool, as_json: bool, log_format: str) -> None:
    """DLMS/COSEM master: reads meters and publishes their values to the signal table."""
    if as_json and not once:
        raise click.UsageError("--json goes with --once")
    if check and once:
        raise click.UsageError("--check and --once exclude each other")
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        _print_config_error(exc, log_format)
        sys.exit(EXIT_CONFIG)
    _print_warnings(config.warnings, log_format)
    if port is not None:
        port = _check_port(config, port, log_format)
    if check:
        click.echo(_summary(config))
        sys.exit(EXIT_OK)

    configure_logging(debug, log_format, port)
    if log_format == "json":
        logging.captureWarnings(True)  # a Python warning is a log line too
    try:
        if once:
            snapshot = asyncio.run(_run_once(config, trace))
            if port is not None:
                snapshot = _filter(snapshot, port, config)
            if as_json:
                click.echo(table_json(snapshot))
            else:
                click.echo(_table_text(snapshot))
            code = EXIT_OK if _all_ok(snapshot) else EXIT_NOT_OK
        else:
            code = asyncio.run(_run_daemon(config_path, config, trace))
    except KeyboardInterrupt:
        notice(get_logger(), "dlms_interrupted")
        code = EXIT_INTERRUPTED
    except Exception:  # logged in the chosen format rather than a bare traceback
        get_logger().critical("dlms_failed", exc_info=True)
        code = EXIT_NOT_OK
    sys.exit(code)


def _filter(snapshot: Snapshot, port: str, config: Config) -> Snapshot:
    devices = tuple(d for d in snapshot.devices if port_matches(port, d.port))
    aliases = {d.device_alias for d in devices}
    profiles = snapshot.profiles
    if profiles is not None:
        kept = {p.profile_alias for p in config.profiles if p.device_alias in aliases}
        profiles = {alias: rows for alias, rows in profiles.items() if alias in kept}
    return Snapshot(devices, tuple(s for s in snapshot.signals if s.device_alias in aliases),
                    profiles)


def run(argv: list[str] | None = None) -> Any:  # pragma: no cover - convenience
    return main.main(args=argv, prog_name="dlms")
