"""``dlmsctl probe``: find the link, addresses and client a meter answers to.

Each combination of :func:`dlmsd.ctl.plan.probe_plan` is one session of the daemon's
own (a new connection, link and association, released at once), bounded in time;
between two attempts the probe waits (``--wait-ms``), as meters do not like to be
hurried.  No password or key is sent unless ``--auth`` asks for it (meters lock out
after wrong passwords).  What each attempt got is reported: the HDLC parameters of
the UA, the AARE's result and diagnostic, the meter's system title, the negotiated
conformance and max PDU, its COSEM logical device name (0.0.42.0.0.255); the settings
that worked are printed as a configuration snippet.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from dlmsd.ctl.connect import connection_options, device_settings, open_session, validate
from dlmsd.ctl.plan import PROBE_CLIENTS, Attempt, probe_plan
from dlmsd.errors import AssociationRejected, ConfigError, DlmsdError
from dlmsd.logsetup import configure_logging, get_logger
from dlmsd.protocol.link import HdlcLink
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.reader import DATA_CLASS, AttributeRequest

__all__ = ["Answer", "probe", "snippet"]

EXIT_FOUND, EXIT_NOT_FOUND, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
#: The reply timeout of an exchange unless --timeout-ms says otherwise.
DEFAULT_TIMEOUT_MS = 1500
LOGICAL_DEVICE_NAME = Obis(0, 0, 42, 0, 0, 255)
#: Exchanges in one attempt (SNRM, AARQ, HLS pass 3, GET, RLRQ, DISC): its time bound
#: is this many timeouts, plus the IEC 62056-21 opening at 300 Bd.
_EXCHANGES = 6
_IEC_OPENING_S = 10.0


class _Notes:
    """A logger that keeps what the reader notes (and passes it on)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.events: dict[str, dict[str, Any]] = {}

    def bind(self, **_fields: Any) -> _Notes:
        return self

    def __getattr__(self, level: str) -> Any:
        def log(event: str, **fields: Any) -> None:
            self.events.setdefault(event, fields)
            getattr(self.inner, level)(event, **fields)
        return log


@dataclass
class Answer:
    """What one attempt got."""

    attempt: Attempt
    ok: bool = False
    error: str | None = None
    details: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    #: mode E: the meter sent its identification (None: no mode E opening)
    identified: bool | None = None


async def _try(attempt: Attempt, base: dict[str, Any], top: dict[str, Any], *,
               trace: bool, log: Any) -> Answer:
    settings = {**base, **attempt.settings}
    answer = Answer(attempt, settings=settings)
    try:
        target = validate(settings, top, Path.cwd(), from_options=True)
    except ConfigError as exc:  # a combination these settings cannot make
        answer.error = "; ".join(exc.problems)
        return answer
    notes = _Notes(log)
    session = open_session(target, notes, trace=trace)
    budget = target.device.timeout_ms / 1000 * _EXCHANGES + (
        _IEC_OPENING_S if settings["mode"] == "IEC" else 1.0)
    try:
        async with asyncio.timeout(budget):
            try:
                await session.open()
                answer.ok = True
                name = (await session.read([AttributeRequest(
                    "name", LOGICAL_DEVICE_NAME, 2, DATA_CLASS)]))[0]
                answer.details.append("logical device name (0.0.42.0.0.255): " + (
                    str(name.value) if name.error is None else f"not read: {name.error}"))
            except AssociationRejected as exc:
                answer.error = f"AARE {exc} (result {exc.result}, diagnostic {exc.diagnostic})"
            except DlmsdError as exc:
                answer.error = str(exc)
            finally:
                _describe(session.reader, notes, answer)
                await session.close()
    except TimeoutError:
        answer.error = f"no complete answer within {budget:.1f} s"
    return answer


def _describe(reader: Any, notes: _Notes, answer: Answer) -> None:
    """What the meter said, from the reader (before it is closed) and its notes."""
    found: list[str] = []
    iec = notes.events.get("iec_identified")
    if answer.settings.get("mode") == "IEC":
        answer.identified = iec is not None
    if iec is not None:
        found.append(f"IEC 62056-21 identification: {iec.get('manufacturer')} "
                     f"{iec.get('identification')!r}, {iec.get('baud_rate')} Bd")
    if reader is not None:
        link = reader.link
        if isinstance(link, HdlcLink) and link.params is not None:
            p = link.params
            found.append(f"UA: max info field tx {p.max_info_tx} rx {p.max_info_rx}, "
                         f"window tx {p.window_tx} rx {p.window_rx}")
        assoc = reader.associated
        if assoc is not None:
            aare = assoc.aare
            title = aare.responding_ap_title
            found.append(f"AARE: {aare.result.label}, diagnostic {aare.diagnostic.label}; "
                         f"application context {aare.application_context_name.short}")
            found.append("system title: " + (title.hex().upper() if title else "none"))
            found.append(f"conformance: {assoc.conformance.describe()}")
            found.append(f"max PDU: {assoc.server_max_receive_pdu_size}")
    answer.details[:0] = found


def snippet(answer: Answer, alias: str, drop: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The device of a working attempt as configuration keys, without the probe's own
    settings (``drop``: what it filled in) and with no password: a placeholder says
    where it goes."""
    settings = {k: v for k, v in answer.settings.items()
                if k not in ("retry_counter", "name", "device_alias", *drop)}
    out: dict[str, Any] = {"name": alias, "device_alias": alias, **settings}
    if "password" in out:
        out["password"] = "<the password you gave>"
    return out


@click.command("probe")
@connection_options(probe=True)
@click.option("--mode", "modes", multiple=True,
              type=click.Choice(["hdlc", "wrapper", "iec"], case_sensitive=False),
              help="Try only these links (repeatable); default: wrapper and hdlc over TCP, "
                   "iec and hdlc on a serial port.")
@click.option("--client", "clients", multiple=True, type=click.IntRange(0, 0xFFFF),
              help="Try these client addresses (repeatable); default 16, 1, 32.")
@click.option("--wait-ms", type=click.IntRange(0, 600000), default=1000, show_default=True,
              help="Wait between two attempts.")
@click.option("--all", "try_all", is_flag=True,
              help="Go on after a working combination: try them all.")
@click.option("--alias", metavar="ALIAS", default="meter", show_default=True,
              help="device_alias (and name) in the printed snippet.")
@click.option("--dlms", "trace", is_flag=True, help="Show the DLMS traffic on stderr.")
@click.option("-d", "--debug", type=click.IntRange(0, 7), default=3, show_default=True,
              help="Log level 0..7 (syslog style), on stderr.")
def probe(modes: tuple[str, ...], clients: tuple[int, ...], wait_ms: int, try_all: bool,
          alias: str, trace: bool, debug: int, **options: Any) -> None:
    """Find the settings of a meter whose link, addresses and client are unknown."""
    if options.get("password") is not None and options.get("auth") is None:
        raise click.UsageError("--password goes with --auth (no password is sent unless "
                               "asked)")
    filled = frozenset(k for k in ("auth", "timeout_ms") if options.get(k) is None)
    if options.get("auth") is None:
        options["auth"] = "None"
    if options.get("timeout_ms") is None:
        options["timeout_ms"] = DEFAULT_TIMEOUT_MS
    base, top = device_settings(None, None, options, alias=alias)
    base["name"] = alias
    base["retry_counter"] = 0  # one try per exchange: the attempt is bounded
    tcp = "ip" in base
    mode_names = {"hdlc": "DLMS-HDLC", "wrapper": "DLMS-WRAPPER", "iec": "IEC"}
    wanted = [mode_names[m.lower()] for m in modes] or None
    if tcp and wanted is not None and "IEC" in wanted:
        raise click.UsageError("--mode iec needs a serial port (--serial-port)")
    if not tcp and wanted is not None and "DLMS-WRAPPER" in wanted:
        raise click.UsageError("--mode wrapper needs TCP (--ip, --port)")
    try:  # the fixed settings first: a bad option is said once, not per attempt
        validate({**base, "mode": "DLMS-HDLC"}, top, Path.cwd())
    except ConfigError as exc:
        click.echo(f"dlmsctl probe: {exc}:", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        sys.exit(EXIT_USAGE)
    plan = probe_plan(tcp=tcp, serial_number=int(base.get("serial_number") or 0),
                      modes=wanted, clients=clients or PROBE_CLIENTS)
    configure_logging(debug)
    try:
        code = asyncio.run(_run(plan, base, top, wait_ms / 1000, try_all, trace, alias,
                                filled))
    except KeyboardInterrupt:
        click.echo("dlmsctl probe: interrupted", err=True)
        code = EXIT_INTERRUPTED
    sys.exit(code)


async def _run(plan: list[Attempt], base: dict[str, Any], top: dict[str, Any],
               wait: float, try_all: bool, trace: bool, alias: str,
               filled: frozenset[str]) -> int:
    log = get_logger(tool="probe")
    where = f"{base['ip']}:{base['port']}" if "ip" in base else base["device"]
    click.echo(f"probing {where}: {len(plan)} combinations, {wait * 1000:.0f} ms apart"
               f"{'' if try_all else ', stopping at the first that works'}")
    working: list[Answer] = []
    no_mode_e = False
    for number, attempt in enumerate(plan, 1):
        if no_mode_e and attempt.settings["mode"] == "IEC":
            continue  # said once, below
        if number > 1 and wait:
            await asyncio.sleep(wait)
        answer = await _try(attempt, base, top, trace=trace, log=log)
        status = "OK" if answer.ok else f"no: {answer.error}"
        click.echo(f"[{number}/{len(plan)}] {attempt.describe()}: {status}")
        for line in answer.details:
            click.echo(f"      {line}")
        if answer.identified is False:
            # the sign-on "/?!" names no address: no other combination gets an answer
            no_mode_e = True
            skipped = sum(1 for a in plan[number:] if a.settings["mode"] == "IEC")
            if skipped:
                click.echo(f"      no IEC 62056-21 identification: the other {skipped} IEC "
                           "combinations are skipped")
        if answer.ok:
            working.append(answer)
            if not try_all:
                break
    if not working:
        click.echo("no combination worked")
        return EXIT_NOT_FOUND
    click.echo(f"\n{len(working)} working combination{'s' if len(working) > 1 else ''}; "
               "the device for the configuration:")
    for answer in working:
        click.echo(json.dumps(snippet(answer, alias, filled), indent=2))
    return EXIT_FOUND
