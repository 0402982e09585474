"""The ``dlms-sim`` command: serve the simulated meter over TCP (the asyncio I/O shell).

Every protocol decision is made by the pure layers (:mod:`dlmsd.protocol.link` for HDLC
and the wrapper, :mod:`dlmsd.sim.server` for the application layer,
:mod:`dlmsd.sim.model` for the values); this module accepts connections, moves their
bytes, passes the wall-clock time in, logs and traces.  One
:class:`~dlmsd.sim.server.MeterServer` and one link per TCP connection; all share one
:class:`~dlmsd.sim.model.Meter`.  A connection that misbehaves is closed, never the
simulator.

With ``--serial DEVICE`` or ``--pty`` it also (or only) serves HDLC on a serial line,
one meter per ``--physical`` address, optionally after the IEC 62056-21 mode E opening
(``--mode-e``); see :mod:`dlmsd.sim.line` and :mod:`dlmsd.sim.serve_serial`.

``--fault SPEC`` makes the meter misbehave (a noisy line, or a hostile meter): the
decisions are :mod:`dlmsd.sim.fault`'s pure plan, one per connection; this module
carries them out (holds, trickles, floods, closes) in a reply task per connection, so
that reading goes on meanwhile.

When it listens it prints exactly one line on stdout (then flushes), e.g.
``dlms-sim listening hdlc=127.0.0.1:4061 wrapper=127.0.0.1:4059 serial=/dev/pts/5``
with the real ports (also for port 0) and line; SIGTERM and SIGINT stop it cleanly
(exit 0).  Exit 2: bad command line or model; 1: cannot listen or open the line.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from dlmsd import __version__
from dlmsd.errors import ConfigError, DecodeError, LocalProtocolError, TransportError
from dlmsd.keys import KeyFileError, load_private_key, load_public_key
from dlmsd.logsetup import configure_logging, get_logger, get_trace_logger, notice
from dlmsd.protocol import iec62056_21 as iec
from dlmsd.protocol.acse import MechanismName
from dlmsd.protocol.actions import Summary, text_of
from dlmsd.protocol.apdu import describe_apdu
from dlmsd.protocol.hdlc_frame import NEED_DATA, encode_server_address
from dlmsd.protocol.link import ApduReceived, Connected, HdlcLink, WrapperLink
from dlmsd.protocol.sn import describe_sn_apdu
from dlmsd.secret import Secret
from dlmsd.sim.auth import (
    DEFAULT_AUTHENTICATION_KEY,
    DEFAULT_BLOCK_CIPHER_KEY,
    DEFAULT_SYSTEM_TITLE,
    SECURITY_POLICIES,
    SimSecurity,
)
from dlmsd.sim.fault import (
    FAULT_HELP,
    STALL_MAX_INFO,
    STALL_MAX_PDU,
    Close,
    Fault,
    FaultPlan,
    FaultyServer,
    Flood,
    Hold,
    Kind,
    Trickle,
    Write,
    check_faults,
    parse_fault,
)
from dlmsd.sim.fault import Action as FaultAction
from dlmsd.sim.line import SerialLine
from dlmsd.sim.model import Meter, MeterModel, bundled_model_path, load_model
from dlmsd.sim.profile import ProfileQuirks, parse_quirk
from dlmsd.sim.serve_serial import SerialSimulator, open_port
from dlmsd.sim.server import MeterServer, Referencing, ServerOptions

__all__ = ["SimSettings", "Simulator", "main"]

EXIT_OK, EXIT_LISTEN, EXIT_USAGE = 0, 1, 2
_READ_SIZE: Final = 4096
# Requests before the association (AARQ) are not bounded by the negotiated PDU size.
_MIN_LINK_APDU: Final = 2048


#: The public client (Green Book: client SAP 16, lowest security, always present).
PUBLIC_CLIENT_SAP: Final = 16

@dataclass(frozen=True)
class SimSettings:
    """The command line, checked."""

    host: str = "127.0.0.1"
    hdlc_port: int | None = None
    wrapper_port: int | None = None
    logical: int = 1
    physical: int = 1
    address_size: int = 2
    client_address: int = 16
    max_pdu: int = 1024
    max_info: int = 128
    get_with_list: bool = True
    referencing: Referencing = Referencing.LN
    live: bool = False
    trace: bool = False
    #: Serial line: a device path or pyserial URL, or "pty" for a new pty pair.
    serial: str | None = None
    #: More meters on the serial line (their physical addresses after ``physical``).
    more_physicals: tuple[int, ...] = ()
    baudrate: int = 9600
    mode_e: bool = False
    manufacturer: str = "SIM"
    #: pty only: hold every chunk for its time on the wire (see serve_serial).
    pace: bool = False
    #: The authentication the meter requires (default none).
    security: SimSecurity = field(default_factory=SimSecurity)
    #: ``--fault``: how the meter misbehaves (see :mod:`dlmsd.sim.fault`).
    faults: tuple[Fault, ...] = ()

    @property
    def physicals(self) -> tuple[int, ...]:
        return (self.physical, *self.more_physicals)

    @property
    def identification(self) -> iec.IdentificationMessage | None:
        """What the meters answer in the mode E opening (None without it)."""
        if not self.mode_e:
            return None
        char = next(c for c, rate in iec.BAUD_RATES_MODE_C.items() if rate == self.baudrate)
        return iec.IdentificationMessage(self.manufacturer, char, "dlms-sim",
                                         iec.ENHANCED_HDLC)

    @property
    def server_address(self) -> bytes:
        """The encoded HDLC server address; LocalProtocolError when out of range."""
        physical = None if self.address_size == 1 else self.physical
        return encode_server_address(self.logical, physical, self.address_size)

    @property
    def options(self) -> ServerOptions:
        return ServerOptions(max_pdu=self.max_pdu, get_with_list=self.get_with_list,
                             client_sap=self.client_address, server_sap=self.logical,
                             referencing=self.referencing, security=self.security)

    @property
    def public_sap(self) -> int | None:
        """The public client's SAP, served over TCP besides ``client_address`` (None
        when that is the public client itself)."""
        return None if self.client_address == PUBLIC_CLIENT_SAP else PUBLIC_CLIENT_SAP

    def options_for(self, client_sap: int) -> ServerOptions:
        """The association of ``client_sap``: the configured one, or the public
        client's (no authentication, no ciphering; it may read 0.0.43.1.0.255)."""
        if client_sap == self.client_address:
            return self.options
        return replace(self.options, client_sap=client_sap, security=self.security.public())


class Simulator:
    """The listening sockets and their connections.  ``start()`` binds (raises
    OSError), ``addresses`` then holds ``{"hdlc": (host, port), ...}``, ``stop()``
    closes everything and waits for the connection tasks to end."""

    def __init__(self, meter: Meter, settings: SimSettings, log: Any | None = None) -> None:
        self.meter = meter
        self.settings = settings
        self.log = log if log is not None else get_logger(component="dlms-sim")
        self._trace_log = get_trace_logger(component="dlms-sim") if settings.trace else None
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.addresses: dict[str, tuple[str, int]] = {}
        self.connections = 0

    async def start(self) -> None:
        wanted = (("hdlc", self.settings.hdlc_port), ("wrapper", self.settings.wrapper_port))
        try:
            for kind, port in wanted:
                if port is None:
                    continue
                server = await asyncio.start_server(
                    functools.partial(self._serve, kind), self.settings.host, port)
                self._servers.append(server)
                bound = server.sockets[0].getsockname()[1]
                self.addresses[kind] = (self.settings.host, int(bound))
        except BaseException:
            await self.stop()
            raise

    def ready_line(self, *more: str) -> str:
        parts = [f"{kind}={host}:{port}" for kind, (host, port) in self.addresses.items()]
        return "dlms-sim listening " + " ".join([*parts, *more])

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        tasks = list(self._tasks)
        # Close the connections so that each handler sees EOF and ends by itself;
        # cancelling a stream handler makes Python 3.11's asyncio print a traceback.
        for writer in list(self._writers):
            writer.close()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=2)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ connections
    def _make_link(self, kind: str, peer: str) -> HdlcLink | WrapperLink:
        settings = self.settings
        max_apdu = max(settings.max_pdu, _MIN_LINK_APDU)
        trace = None
        if self._trace_log is not None:
            trace_log = self._trace_log

            def trace(direction: str, data: bytes, summary: Summary) -> None:
                trace_log.info(f"frame_{direction}", peer=peer, hex=data.hex(" ").upper(),
                               summary=text_of(summary))
        if kind == "hdlc":
            return HdlcLink.meter(settings.server_address, settings.client_address,
                                  max_info=settings.max_info, max_apdu_size=max_apdu,
                                  trace=trace, public_sap=settings.public_sap)
        return WrapperLink.meter(settings.logical, settings.client_address,
                                 max_apdu_size=max_apdu, trace=trace,
                                 public_sap=settings.public_sap)

    def _plan(self, kind: str) -> FaultPlan:
        return FaultPlan(self.settings.faults, kind, random.Random(self.connections))

    async def _serve(self, kind: str, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.connections += 1
        self._writers.add(writer)
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        log = self.log.bind(link=kind, peer=peer)
        log.info("client_connected")
        link = self._make_link(kind, peer)
        servers: dict[int, MeterServer] = {}  # by client SAP: the link serves one
        plan = self._plan(kind)
        # With faults, the replies go through a queue to their own task, so that a
        # delay, a trickle or a flood never stops this loop from seeing the client go.
        queue: asyncio.Queue[list[FaultAction]] = asyncio.Queue()
        sender = (asyncio.create_task(_send_faulty(queue, writer, plan, log),
                                      name=f"dlms-sim fault {peer}")
                  if plan.active else None)

        def server_for(sap: int) -> MeterServer:
            if sap not in servers:
                servers[sap] = MeterServer(self.meter, self.settings.options_for(sap))
            return servers[sap]

        describe = (describe_sn_apdu if self.settings.referencing is Referencing.SN
                    else describe_apdu)
        try:
            while True:
                data = await reader.read(_READ_SIZE)
                if not data:
                    log.info("client_closed", ignored_frames=link.ignored_frames)
                    break
                if sender is not None and sender.done():
                    break  # the fault closed the connection
                dropped = plan.dropped_requests()
                link.receive_data(plan.incoming(data))
                if plan.dropped_requests() != dropped:
                    log.debug("fault", fault=_names(plan), action="request dropped",
                              count=plan.dropped_requests())
                out = bytearray()
                while (event := link.next_event()) is not NEED_DATA:
                    out += link.data_to_send()
                    server = server_for(link.client_sap)
                    if isinstance(event, ApduReceived):
                        response = server.handle(event.apdu, datetime.now(UTC))
                        log.debug("apdu", request=describe(event.apdu),
                                  response=describe(response) if response else "none")
                        if plan.active:
                            response = plan.on_apdu(event.apdu, response,
                                                    server.response_limit)
                            if plan.note:
                                log.debug("fault", fault=_names(plan), action=plan.note)
                        # b"": an unconfirmed service, answered by the link alone
                        out += link.send_apdu(response) if response else link.acknowledge()
                    else:
                        # HDLC SNRM or DISC: the association does not outlive the link.
                        server.reset()
                        log.debug("link_up" if isinstance(event, Connected) else "link_down",
                                  detail=str(event))
                out += link.data_to_send()
                if out and sender is not None:
                    queue.put_nowait(plan.outgoing(bytes(out)))
                elif out:
                    writer.write(bytes(out))
                    await writer.drain()
        except DecodeError as exc:
            log.warning("stream_broken", error=str(exc))  # wrapper out of step: close
        except (ConnectionError, TimeoutError) as exc:
            log.info("connection_lost", error=str(exc) or type(exc).__name__)
        except Exception:  # a bug must cost one connection, never the simulator
            log.exception("connection_failed")
        finally:
            if sender is not None:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await sender
            if task is not None:
                self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _send_faulty(queue: asyncio.Queue[list[FaultAction]], writer: asyncio.StreamWriter,
                       plan: FaultPlan, log: Any) -> None:
    """Carry out the fault plan's actions in order (the connection's reply task)."""
    try:
        while True:
            for action in await queue.get():
                if isinstance(action, Close):
                    log.debug("fault", fault=_names(plan), action=action.note)
                    writer.close()
                    return
                await _act(action, writer, plan, log)
    except (ConnectionError, OSError) as exc:
        log.info("connection_lost", error=str(exc) or type(exc).__name__)


def _names(plan: FaultPlan) -> str:
    return ",".join(str(fault) for fault in plan.faults)


async def _act(action: FaultAction, writer: asyncio.StreamWriter, plan: FaultPlan,
               log: Any) -> None:
    if action.note:
        log.debug("fault", fault=_names(plan), action=action.note)
    if isinstance(action, Write):
        if action.data:
            writer.write(action.data)
            await writer.drain()
    elif isinstance(action, Hold):
        await asyncio.sleep(action.seconds)
    elif isinstance(action, Trickle):
        for octet in action.data:
            writer.write(bytes([octet]))
            await writer.drain()
            await asyncio.sleep(action.interval)
    elif isinstance(action, Flood):
        sent = 0
        try:
            while not writer.is_closing():
                writer.write(action.unit)
                await writer.drain()  # the client's back-pressure bounds the flood
                sent += 1
                low, high = action.interval
                await asyncio.sleep(plan.rng.uniform(low, high))
        finally:
            log.debug("fault_flood_end", units=sent, octets=sent * len(action.unit))


# ====================================================================== serial line
def serial_simulator(meter: Meter, settings: SimSettings) -> SerialSimulator:
    """The meters of ``settings.physicals`` on the line ``settings.serial`` (not yet
    opened: ``start()`` opens it).  Each meter has its own association and live state
    over the shared meter (the same values)."""
    assert settings.serial is not None
    trace_log = get_trace_logger(component="dlms-sim") if settings.trace else None
    describe = describe_sn_apdu if settings.referencing is Referencing.SN else describe_apdu
    plan = FaultPlan(settings.faults, "hdlc", random.Random(0))
    servers: dict[int, MeterServer] = {
        p: FaultyServer(plan, meter, settings.options) if plan.active
        else MeterServer(meter, settings.options) for p in settings.physicals}
    holder: list[SerialSimulator] = []
    line = SerialLine(
        servers, logical=settings.logical, address_size=settings.address_size,
        client_sap=settings.client_address, max_info=settings.max_info,
        max_apdu_size=max(settings.max_pdu, _MIN_LINK_APDU), baudrate=settings.baudrate,
        identification=settings.identification,
        trace=(lambda *item: holder[0].trace(*item)) if settings.trace
        else None)
    device = None if settings.serial == "pty" else settings.serial
    simulator = SerialSimulator(line, open_port(device, line.initial_settings,
                                                pace=settings.pace),
                                trace_log=trace_log, describe=describe, plan=plan)
    holder.append(simulator)
    return simulator


# ====================================================================== command line
async def _run(meter: Meter, settings: SimSettings) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    simulator = Simulator(meter, settings)
    line: SerialSimulator | None = None
    try:
        try:
            await simulator.start()
        except OSError as exc:
            click.echo(f"dlms-sim: cannot listen on {settings.host}: {exc}", err=True)
            return EXIT_LISTEN
        more = []
        if settings.serial is not None:
            try:
                line = serial_simulator(meter, settings)
                await line.start()
            except (TransportError, OSError) as exc:
                click.echo(f"dlms-sim: cannot open the serial line: {exc}", err=True)
                return EXIT_LISTEN
            more.append(f"serial={line.port.peer}")
        click.echo(simulator.ready_line(*more))
        sys.stdout.flush()
        await stop.wait()
        notice(simulator.log, "stopping", connections=simulator.connections)
        return EXIT_OK
    finally:
        if line is not None:
            await line.stop()
        await simulator.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _load(path: str | None) -> MeterModel:
    try:
        return load_model(Path(path) if path is not None else bundled_model_path())
    except ConfigError as exc:
        if exc.problems == [str(exc)]:
            click.echo(f"dlms-sim: {exc}", err=True)
        else:
            click.echo(f"dlms-sim: {exc}:", err=True)
            for problem in exc.problems:
                click.echo(f"  - {problem}", err=True)
        sys.exit(EXIT_USAGE)


_PORT = click.IntRange(0, 65535)
#: ``--auth`` -> the mechanism (the daemon's ``auth`` spellings, case-insensitive).
AUTH_MECHANISMS: Final = {
    "none": MechanismName.LOWEST, "low": MechanismName.LOW, "high": MechanismName.HIGH,
    "highmd5": MechanismName.HIGH_MD5, "highsha1": MechanismName.HIGH_SHA1,
    "highsha256": MechanismName.HIGH_SHA256, "highgmac": MechanismName.HIGH_GMAC,
    "highecdsa": MechanismName.HIGH_ECDSA,
}
#: The meter's invocation counter starts at 10 per second since 2024 (so that a
#: restarted simulator continues above what a client saw before, at up to 10 ciphered
#: APDUs per second of uptime; the 32-bit counter lasts until 2037).
_COUNTER_EPOCH: Final = datetime(2024, 1, 1, tzinfo=UTC)
_COUNTER_RATE: Final = 10


def _hex(*sizes: int) -> Any:
    """A click callback: the option's hex text as one of ``sizes`` octets."""
    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> bytes:
        try:
            raw = bytes.fromhex(value or "")
        except ValueError:
            raise click.BadParameter("not hexadecimal") from None
        if len(raw) not in sizes:
            expected = " or ".join(str(size) for size in sizes)
            raise click.BadParameter(f"{len(raw)} octets, expected {expected}")
        return raw
    return convert


_F = TypeVar("_F", bound=Callable[..., Any])


def _ciphering_key_option(name: str, default: bytes, what: str,
                          note: str = "") -> Callable[[_F], _F]:
    """The option ``--name`` for a key of the ciphered mechanisms: 16 or 32 octets in
    hex, also from $DLMS_SIM_NAME, by default the Green Book's example key."""
    envvar = "DLMS_SIM_" + name.upper().replace("-", "_")
    return click.option(f"--{name}", callback=_hex(16, 32), metavar="HEX", envvar=envvar,
                        default=default.hex().upper(),
                        help=f"HighGmac, ciphered HighEcdsa: {what} ({note}default: the Green "
                             f"Book's example key). Also ${envvar}.")


def _key_file(public: bool) -> Any:
    """A click callback: an ECDSA key file read with :mod:`dlmsd.keys`."""
    def convert(ctx: click.Context, param: click.Parameter,
                value: str | None) -> Secret | bytes | None:
        if value is None:
            return None
        try:
            return load_public_key(Path(value)) if public else load_private_key(Path(value))
        except KeyFileError as exc:
            raise click.BadParameter(str(exc)) from None
    return convert


def sim_security(auth: str, password: str | None, system_title: bytes,
                 block_cipher_key: bytes, authentication_key: bytes, security: str,
                 counter_start: int, signing_key: Secret | None = None,
                 client_public_key: bytes | None = None,
                 ecdsa_ciphering: bool = False) -> SimSecurity:
    """The ``--auth ...`` options, checked (click.UsageError naming what is wrong)."""
    mechanism = AUTH_MECHANISMS[auth.lower()]
    counter = iter(range(counter_start, 1 << 32))
    needs_password = mechanism not in (MechanismName.LOWEST, MechanismName.HIGH_GMAC,
                                       MechanismName.HIGH_ECDSA)
    if needs_password and not password:
        raise click.UsageError(f"--auth {auth} needs --password (or $DLMS_SIM_PASSWORD)")
    if mechanism is MechanismName.HIGH_ECDSA:
        for option, given in (("--signing-key", signing_key),
                              ("--client-public-key", client_public_key)):
            if given is None:
                raise click.UsageError(f"--auth {auth} needs {option}")
    elif signing_key is not None or client_public_key is not None or ecdsa_ciphering:
        raise click.UsageError("--signing-key, --client-public-key and --ecdsa-ciphering "
                               "go with --auth HighEcdsa")
    try:
        return SimSecurity(mechanism, Secret(password) if password else None,
                           system_title=system_title,
                           block_cipher_key=Secret(block_cipher_key),
                           authentication_key=Secret(authentication_key),
                           security=security.lower(), signing_key=signing_key,
                           client_public_key=client_public_key,
                           ecdsa_ciphering=ecdsa_ciphering,
                           next_counter=lambda: next(counter))
    except LocalProtocolError as exc:
        raise click.UsageError(f"--auth {auth}: {exc}") from None


def _faults(ctx: click.Context, param: click.Parameter,
            value: tuple[str, ...]) -> tuple[Fault, ...]:
    try:
        faults = tuple(parse_fault(spec) for spec in value)
        check_faults(faults)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None
    return faults


def _quirks(ctx: click.Context, param: click.Parameter,
            value: tuple[str, ...]) -> ProfileQuirks:
    quirks = ProfileQuirks()
    try:
        for spec in value:
            quirks = parse_quirk(spec, quirks)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return quirks


def _version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"dlms-sim (dlmsd) {__version__}")
        ctx.exit(0)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="Object model (JSON, see dlmsd/sim/README.md). Default: the bundled "
                   "meter.json.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--hdlc-port", type=_PORT, help="Serve HDLC over TCP on this port (0: any).")
@click.option("--wrapper-port", type=_PORT,
              help="Serve the IEC 62056-47 wrapper on this port (0: any).")
@click.option("--logical", type=click.IntRange(0, 0x3FFF), default=1, show_default=True,
              help="Logical device address (HDLC upper address, wrapper wPort).")
@click.option("--physical", type=click.IntRange(0, 0x3FFF), multiple=True,
              help="Physical device address (HDLC lower address; not with size 1). "
                   "Default 1. Repeat it for several meters on the serial line.")
@click.option("--address-size", type=click.Choice(["1", "2", "4"]), default="2",
              show_default=True, help="HDLC server address size in bytes.")
@click.option("--client-address", type=click.IntRange(0, 127), default=16, show_default=True,
              help="The client SAP served with --auth (HDLC client address, wrapper "
                   "wPort). Over TCP the public client, 16, is served besides it "
                   "without authentication.")
@click.option("--max-pdu", type=click.IntRange(12, 65535), default=1024, show_default=True,
              help="Server max receive PDU size, also the cap on every response.")
@click.option("--max-info", type=click.IntRange(32, 2030), default=128, show_default=True,
              help="HDLC max information field length offered (both directions).")
@click.option("--no-get-with-list", is_flag=True,
              help="Do not offer GET-with-list (multiple-references); refuse it. With SN: "
                   "refuse a READ of several variables.")
@click.option("--referencing", type=click.Choice(["LN", "SN"], case_sensitive=False),
              default="LN", show_default=True,
              help="Object referencing: LN (GET/SET/ACTION) or SN (READ/WRITE, short names).")
@click.option("--serial", "serial_device", metavar="DEVICE",
              help="Serve HDLC on this serial port (a path or a pyserial URL).")
@click.option("--pty", is_flag=True,
              help="Serve HDLC on a new pseudo-terminal; its path is printed as serial=...")
@click.option("--baudrate", type=click.Choice([str(r) for r in iec.BAUD_RATES_MODE_C.values()]),
              default="9600", show_default=True,
              help="Serial line rate (with --mode-e: the highest rate offered).")
@click.option("--pace", is_flag=True,
              help="With --pty: deliver bytes at the line's baud rate, as a real line "
                   "would (a pty alone moves them at memory speed).")
@click.option("--mode-e", is_flag=True,
              help="Serial line: IEC 62056-21 mode E opening at 300 Bd 7E1 before HDLC.")
@click.option("--manufacturer", default="SIM", show_default=True,
              help="Mode E: the three letters of the identification (a lower-case third "
                   "letter announces the 20 ms reaction time).")
@click.option("--auth", type=click.Choice(list(AUTH_MECHANISMS), case_sensitive=False),
              default="none", show_default=True,
              help="Authentication the meter requires (the daemon's auth names).")
@click.option("--password", envvar="DLMS_SIM_PASSWORD", metavar="TEXT",
              help="Low: the password; High: the HLS secret of up to 16 bytes (a shorter "
                   "one is padded with zero bytes to 16, as gurux does); HighMd5, "
                   "HighSha1, HighSha256: the HLS secret. Also $DLMS_SIM_PASSWORD.")
@click.option("--system-title", callback=_hex(8), metavar="HEX",
              default=DEFAULT_SYSTEM_TITLE.hex().upper(), show_default=True,
              help="The meter's system title (HighGmac, HighSha256), 8 octets in hex.")
@_ciphering_key_option("block-cipher-key", DEFAULT_BLOCK_CIPHER_KEY,
                       "the global block cipher key in hex, 16 octets",
                       "32 for HighEcdsa on P-384; ")
@_ciphering_key_option("authentication-key", DEFAULT_AUTHENTICATION_KEY,
                       "the authentication key in hex, the size of the block cipher key")
@click.option("--security", type=click.Choice(list(SECURITY_POLICIES), case_sensitive=False),
              default="both", show_default=True,
              help="HighGmac, ciphered HighEcdsa: the protection every APDU must carry.")
@click.option("--signing-key", callback=_key_file(public=False), metavar="FILE",
              help="HighEcdsa: the meter's private signing key (PEM or DER, P-256 or "
                   "P-384).")
@click.option("--client-public-key", callback=_key_file(public=True), metavar="FILE",
              help="HighEcdsa: the client's public key or certificate (PEM or DER).")
@click.option("--ecdsa-ciphering", is_flag=True,
              help="HighEcdsa: also cipher every APDU (security suite 1 or 2, by the keys' "
                   "curve) with --block-cipher-key and --authentication-key.")
@click.option("--invocation-counter", type=click.IntRange(0, 0xFFFFFFFF), default=None,
              help="HighGmac: the meter's first invocation counter (default: 10 per "
                   "second since 2024, so a restart continues above the last one).")
@click.option("--fault", "fault_specs", multiple=True, metavar="SPEC",
              callback=_faults,
              help="Misbehave (repeatable; at most one hostile meter): " + FAULT_HELP)
@click.option("--live", is_flag=True,
              help="Values change with time (deterministic); the clock shows real time.")
@click.option("--clock-drift", type=click.FloatRange(-86400 * 366, 86400 * 366), default=0.0,
              metavar="SECONDS",
              help="With --live: the clock runs this many seconds ahead (negative: behind) "
                   "of the real time, until a client sets it.")
@click.option("--profile-quirk", "profile_quirks", multiple=True, metavar="QUIRK",
              callback=_quirks,
              help="Answer range reads of the profiles as some meters do (repeatable): "
                   "refuse-range[:RESULT], refuse-deviation[:RESULT] (RESULT a "
                   "data-access-result, default other-reason), clock-not-first, "
                   "empty-range.")
@click.option("-d", "--debug", type=click.IntRange(0, 7), default=4, show_default=True,
              help="Log level 0..7, syslog style; a level shows its lines and all more "
              "severe ones: 0 emerg, 1 alert, 2 crit (0..2: critical lines only), 3 err "
              "(a serial line failing), 4 warning (a broken stream), 5 notice (stopping), "
              "6 info (connections), 7 debug (every APDU, every --fault action).")
@click.option("--trace", is_flag=True, help="Hex trace of every frame on stderr.")
@click.option("-V", "--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_version, help="Show the version and exit.")
def main(model_path: str | None, host: str, hdlc_port: int | None, wrapper_port: int | None,
         logical: int, physical: tuple[int, ...], address_size: str, client_address: int,
         max_pdu: int, max_info: int, no_get_with_list: bool, referencing: str,
         serial_device: str | None, pty: bool, baudrate: str, pace: bool, mode_e: bool,
         manufacturer: str, auth: str, password: str | None, system_title: bytes,
         block_cipher_key: bytes, authentication_key: bytes, security: str,
         signing_key: Secret | None, client_public_key: bytes | None, ecdsa_ciphering: bool,
         invocation_counter: int | None, fault_specs: tuple[Fault, ...], live: bool,
         profile_quirks: ProfileQuirks, clock_drift: float, debug: int,
         trace: bool) -> None:
    """DLMS/COSEM meter simulator: serves an object model over HDLC and/or the wrapper
    on TCP, and HDLC on a serial line or a pty."""
    if serial_device is not None and pty:
        raise click.UsageError("give --serial or --pty, not both")
    serial = "pty" if pty else serial_device
    if hdlc_port is None and wrapper_port is None and serial is None:
        raise click.UsageError("give --hdlc-port, --wrapper-port, --serial or --pty")
    if hdlc_port is not None and hdlc_port == wrapper_port and hdlc_port != 0:
        raise click.UsageError("--hdlc-port and --wrapper-port must differ")
    physicals = physical or (1,)
    if len(set(physicals)) != len(physicals):
        raise click.UsageError(f"--physical: an address given twice in {list(physicals)}")
    if len(physicals) > 1 and (serial is None or address_size == "1"):
        raise click.UsageError("several --physical need a serial line (--serial or --pty) "
                               "and an address size of 2 or 4")
    if clock_drift and not live:
        raise click.UsageError("--clock-drift needs --live (a fixed clock does not run)")
    if pace and not pty:
        raise click.UsageError("--pace needs --pty (a real line keeps its own pace)")
    if mode_e and serial is None:
        raise click.UsageError("--mode-e needs a serial line (--serial or --pty)")
    if not (len(manufacturer) == 3 and manufacturer.isascii() and manufacturer.isalpha()):
        raise click.UsageError(f"--manufacturer {manufacturer!r}: three letters")
    faults = fault_specs
    if serial is not None:
        try:
            check_faults(faults, serial=True)
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None
    if any(fault.kind is Kind.STALL_MID_BLOCK for fault in faults):
        # answers long enough to come in blocks, and in HDLC segments
        max_pdu, max_info = min(max_pdu, STALL_MAX_PDU), min(max_info, STALL_MAX_INFO)
    now = datetime.now(UTC)
    if invocation_counter is None:
        elapsed = int((now - _COUNTER_EPOCH).total_seconds())
        invocation_counter = min(max(elapsed, 0) * _COUNTER_RATE, 0xFFFFFFFF)
    meter_security = sim_security(auth, password, system_title, block_cipher_key,
                                  authentication_key, security, invocation_counter,
                                  signing_key, client_public_key, ecdsa_ciphering)
    settings = SimSettings(
        host=host, hdlc_port=hdlc_port, wrapper_port=wrapper_port, logical=logical,
        physical=physicals[0], more_physicals=tuple(physicals[1:]),
        address_size=int(address_size), client_address=client_address,
        max_pdu=max_pdu, max_info=max_info, get_with_list=not no_get_with_list,
        referencing=Referencing(referencing.upper()), live=live, trace=trace,
        serial=serial, baudrate=int(baudrate), pace=pace, mode_e=mode_e,
        manufacturer=manufacturer, security=meter_security, faults=faults)
    if hdlc_port is not None or serial is not None:
        try:
            settings.server_address  # noqa: B018 - validates the address
        except LocalProtocolError as exc:
            raise click.UsageError(f"HDLC server address: {exc}") from None
    model = _load(model_path)
    configure_logging(debug)
    meter = Meter(model, live=live, started=now, quirks=profile_quirks)
    meter.clock_offset = clock_drift
    sys.exit(asyncio.run(_run(meter, settings)))


if __name__ == "__main__":
    main()
