"""``dlms-top``: a live table of a running daemon's devices and signals.

It reads the daemon's HTTP API (``GET /api/v1/signals``; the ``http`` object of the
configuration must be set) and draws the table of ``dlms --once`` again every
``--interval`` seconds (ANSI clear and redraw), until Ctrl-C. ``--once`` prints one
frame and exits (0 every signal ok, 1 a signal not ok, 2 the API could not be read).
A separate command rather than a ``dlms`` subcommand: ``dlms`` is one command with the
WCC Lite's options (``dlms -c FILE -d7 --dlms``), which a subcommand would change.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any

import click

from dlmsd.cli import _all_ok, _table_text
from dlmsd.signals import DeviceState, DeviceStatus, SignalState, SignalStatus, Snapshot

__all__ = ["main", "snapshot_from_json"]

DEFAULT_URL = "http://127.0.0.1:8080"
TOKEN_ENV = "DLMS_HTTP_TOKEN"
#: ANSI: cursor home, clear the screen.
CLEAR = "\x1b[H\x1b[2J"
EXIT_OK, EXIT_NOT_OK, EXIT_UNREACHABLE = 0, 1, 2


def snapshot_from_json(doc: Any) -> Snapshot:
    """The :class:`Snapshot` that ``/api/v1/signals`` (``dlms --once --json``) shows."""
    try:
        devices = tuple(
            DeviceState(d["device_alias"], d["port"], DeviceStatus(d["status"]), d["error"],
                        d["last_ok"], d["connects"], d["scans"], d["failures"])
            for d in doc["devices"])
        signals = tuple(
            SignalState(s["device_alias"], s["signal_alias"], s["signal_name"], s["obis"],
                        s["attribute"], s["value"], s["raw"], s["unit"],
                        SignalStatus(s["status"]), s["error"], s["timestamp"], s["stale"])
            for s in doc["signals"])
    except (KeyError, TypeError, ValueError) as exc:
        raise click.ClickException(f"not a signal table: {exc!r}") from None
    return Snapshot(devices, signals)


def fetch(url: str, token: str | None, timeout: float = 5.0) -> Snapshot:
    request = urllib.request.Request(url.rstrip("/") + "/api/v1/signals")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = answer.read()
    except urllib.error.HTTPError as exc:
        exc.close()
        hint = f" (set ${TOKEN_ENV})" if exc.code == 401 else ""
        raise click.ClickException(f"{url}: HTTP {exc.code} {exc.reason}{hint}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise click.ClickException(f"{url}: cannot connect: {reason}") from None
    try:
        doc = json.loads(body, parse_float=Decimal)  # decimals as the daemon wrote them
    except ValueError:
        raise click.ClickException(f"{url}: the answer is not JSON") from None
    return snapshot_from_json(doc)


def frame(url: str, snapshot: Snapshot, width: int | None = None) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"dlms-top {url}  {stamp}\n\n{_table_text(snapshot, width)}"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", default=DEFAULT_URL, show_default=True,
              help="The daemon's HTTP API (the configuration's http.listen).")
@click.option("--token", envvar=TOKEN_ENV, show_envvar=True, metavar="TOKEN",
              help=f"Bearer token (http.token); better from ${TOKEN_ENV} than on the "
              "command line, where other users see it.")
@click.option("--interval", type=click.FloatRange(min=0.2), default=2.0, show_default=True,
              help="Seconds between redraws.")
@click.option("--once", is_flag=True, help="Print one frame and exit (0 all ok, 1 a "
              "signal not ok, 2 the API could not be read).")
def main(url: str, token: str | None, interval: float, once: bool) -> None:
    """A live table of the devices and signals of a running dlms daemon."""
    if once:
        try:
            snapshot = fetch(url, token)
        except click.ClickException as exc:
            click.echo(f"dlms-top: {exc.message}", err=True)
            sys.exit(EXIT_UNREACHABLE)
        click.echo(frame(url, snapshot))
        sys.exit(EXIT_OK if _all_ok(snapshot) else EXIT_NOT_OK)
    try:
        while True:
            try:
                text = frame(url, fetch(url, token))
            except click.ClickException as exc:
                text = f"dlms-top {url}  {time.strftime('%H:%M:%S')}\n\n{exc.message}"
            # not click.echo: it drops ANSI codes when stdout is not a terminal
            sys.stdout.write(CLEAR + text + "\n")
            sys.stdout.flush()
            time.sleep(interval)
    except KeyboardInterrupt:
        sys.exit(EXIT_OK)
