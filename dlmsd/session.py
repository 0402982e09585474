"""A DLMS session with one meter: transport + link + client.

Transport: TCP, or a serial line (shared as a bus, optionally opened with the IEC
62056-21 mode E sign-on). Link: HDLC or the wrapper. Client: LN (with HLS and
ciphering) or SN. This is I/O glue: every protocol decision is made by the pure layers
(:mod:`dlmsd.protocol`); this module moves their bytes, arms their timeouts
(``timeout_ms`` per exchange, ``retry_counter`` resends), draws the HLS challenge,
keeps the invocation counters, traces every frame, and turns attribute values into
published signal values (:mod:`dlmsd.protocol.values`).

Per association it reads the association's object list once (only when a signal has
no ``class_id``) and each register's scaler_unit once. A meter that refuses
GET-with-list is remembered (in the device memory the poller keeps) and read with
single GETs from then on.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from dlmsd.config import Auth, DeviceConfig, Mode, Referencing
from dlmsd.counters import MAX_COUNTER, CounterStore
from dlmsd.errors import (
    AssociationRejected,
    DataAccessError,
    DecodeError,
    DlmsdError,
    DlmsTimeout,
    RemoteProtocolError,
    TransportError,
)
from dlmsd.poller import DeviceMemory, ReadRequest, ReadResult, register_session_factory
from dlmsd.protocol import hdlc, wrapper
from dlmsd.protocol import iec62056_21 as iec
from dlmsd.protocol.acse import MechanismName
from dlmsd.protocol.apdu import describe_apdu
from dlmsd.protocol.axdr import Data, DataType
from dlmsd.protocol.client import (
    ASSOCIATION_LN,
    ASSOCIATION_LN_CLASS,
    Associated,
    Authenticate,
    Ciphering,
    ClientEvent,
    ClientState,
    GetComplete,
    LnClient,
    Released,
    SendApdu,
    StaleResponse,
    WithListRefused,
)
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.security import (
    AUTHENTICATED_ENCRYPTION,
    AUTHENTICATION_ONLY,
    ENCRYPTION_ONLY,
    SUITE_0,
    is_ciphered,
)
from dlmsd.protocol.security import describe as security_describe
from dlmsd.protocol.security_hls import HlsKeys, ec_private_key, ec_public_key, ecdsa_suite
from dlmsd.protocol.sn import (
    attribute_short_name,
    base_name_of,
    describe_sn_apdu,
    parse_sn_object_list,
)
from dlmsd.protocol.sn_client import SnClient
from dlmsd.protocol.units import unit_symbol
from dlmsd.protocol.values import parse_scaler_unit, render, scale, scaler_unit_attribute
from dlmsd.protocol.xdlms import CosemAttributeDescriptor, DataAccessResult
from dlmsd.trace import FrameTracer
from dlmsd.transport.bus import BusTransport, SerialBus
from dlmsd.transport.serial import SerialSettings, SerialTransport
from dlmsd.transport.tcp import TcpTransport

__all__ = ["DlmsSession", "make_session", "parse_object_list", "serial_settings"]

# What one signal reads: an LN attribute descriptor, or an SN short name.
Target = CosemAttributeDescriptor | int

OBJECT_LIST_ATTRIBUTE = 2
# Release on the way out gets one short try: many meters never answer an RLRQ.
RELEASE_TIMEOUT_S = 2.0


class Transport(Protocol):
    async def open(self, timeout: float) -> None: ...
    async def write(self, data: bytes) -> None: ...
    async def read(self, timeout: float) -> bytes: ...
    async def close(self) -> None: ...


# ---------------------------------------------------------------------------- links

@dataclass(frozen=True)
class _LinkUp:
    pass


@dataclass(frozen=True)
class _Apdu:
    apdu: bytes


@dataclass(frozen=True)
class _LinkDown:
    reason: str


_LinkEvent = _LinkUp | _Apdu | _LinkDown


class _HdlcLink:
    """Adapts HdlcClientConnection to the session's needs."""

    name = "HDLC"

    def __init__(self, device: DeviceConfig, tracer: FrameTracer) -> None:
        self.tracer = tracer
        self.conn = hdlc.HdlcClientConnection(
            device.client_address, device.server.to_bytes(), trace=self._trace)

    def _trace(self, item: hdlc.FrameTrace) -> None:
        if item.direction == "tx":
            self.tracer.sent(item.raw, item.summary())
        else:
            self.tracer.received(item.raw, item.summary())

    @property
    def idle(self) -> bool:
        """No exchange under way: an APDU may be sent (after a timeout it may not)."""
        return self.conn.state is hdlc.ClientState.IDLE

    def opening(self) -> bytes | None:
        return self.conn.connect()

    def send(self, apdu: bytes) -> bytes:
        return self.conn.send_apdu(apdu)

    def retry(self) -> bytes:
        return self.conn.retransmit()

    def outgoing(self) -> bytes:
        return self.conn.data_to_send()

    def closing(self) -> bytes | None:
        if self.conn.state in (hdlc.ClientState.DISCONNECTED,):
            return None
        return self.conn.disconnect()

    def feed(self, data: bytes) -> list[_LinkEvent]:
        self.conn.receive_data(data)
        events: list[_LinkEvent] = []
        while True:
            event = self.conn.next_event()
            if event is hdlc.NEED_DATA:
                return events
            if isinstance(event, hdlc.Connected):
                events.append(_LinkUp())
            elif isinstance(event, hdlc.ApduReceived):
                events.append(_Apdu(event.apdu))
            elif isinstance(event, hdlc.Disconnected):
                events.append(_LinkDown(f"HDLC disconnected ({event.reason})"))
            elif isinstance(event, hdlc.FrameRejected):
                raise RemoteProtocolError(f"meter rejected a frame (FRMR): "
                                          f"{', '.join(event.reasons) or 'no reason given'}")
            # PeerBusy: keep waiting; the timeout polls with RR


class _WrapperLink:
    name = "wrapper"

    def __init__(self, device: DeviceConfig, tracer: FrameTracer) -> None:
        self.tracer = tracer
        self.conn = wrapper.WrapperConnection(device.client_address, device.server.logical)
        self._last = b""

    idle = True  # every request stands alone on the wrapper

    def opening(self) -> bytes | None:
        return None

    def send(self, apdu: bytes) -> bytes:
        self._last = self.conn.send_apdu(apdu)
        self.tracer.sent(self._last, wrapper.describe(self._last))
        return self._last

    def retry(self) -> bytes:
        self.tracer.sent(self._last, "resend " + wrapper.describe(self._last))
        return self._last

    def outgoing(self) -> bytes:
        return b""

    def closing(self) -> bytes | None:
        return None

    def feed(self, data: bytes) -> list[_LinkEvent]:
        self.conn.receive_data(data)
        events: list[_LinkEvent] = []
        while True:
            event = self.conn.next_event()
            if isinstance(event, wrapper.ApduReceived):
                raw = wrapper.WrapperHeader(event.source, event.destination,
                                            len(event.apdu)).to_bytes() + event.apdu
                self.tracer.received(raw, wrapper.describe(raw))
                events.append(_Apdu(event.apdu))
            else:
                return events


_Link = _HdlcLink | _WrapperLink

_MECHANISMS: dict[Auth, MechanismName | None] = {
    Auth.NONE: None,
    Auth.LOW: MechanismName.LOW,
    Auth.HIGH: MechanismName.HIGH,
    Auth.HIGH_MD5: MechanismName.HIGH_MD5,
    Auth.HIGH_SHA1: MechanismName.HIGH_SHA1,
    Auth.HIGH_SHA256: MechanismName.HIGH_SHA256,
    Auth.HIGH_GMAC: MechanismName.HIGH_GMAC,
    Auth.HIGH_ECDSA: MechanismName.HIGH_ECDSA,
}
# HLS mechanisms keyed by the password (the HLS secret), HighSha256 also by the system
# titles; HighGmac and HighEcdsa have keys of their own.
_SECRET_HLS = frozenset({Auth.HIGH, Auth.HIGH_MD5, Auth.HIGH_SHA1, Auth.HIGH_SHA256})
HLS_CHALLENGE_SIZE = 16  # every meter accepts 16 octets; some accept nothing else
# HLS-ECDSA: the Green Book asks for 32..64 octets (gurux's meter takes 32 as well).
ECDSA_CHALLENGE_SIZE = 32
DATA_CLASS = 1  # Blue Book: the Data interface class (the invocation counter object's)
# Invocation counters persist here (DLMS_STATE_DIR overrides it, e.g. for tests).
DEFAULT_STATE_DIR = "/var/lib/dlmsd"
_SECURITY_CONTROL = {"authentication": AUTHENTICATION_ONLY, "encryption": ENCRYPTION_ONLY,
                     "both": AUTHENTICATED_ENCRYPTION}
_STORES: dict[str, CounterStore] = {}


def counter_store() -> CounterStore:
    """The process's invocation counter store (one per state directory)."""
    directory = os.path.join(os.environ.get("DLMS_STATE_DIR", DEFAULT_STATE_DIR), "counters")
    store = _STORES.get(directory)
    if store is None:
        store = _STORES[directory] = CounterStore(directory)
    return store


# -------------------------------------------------------------------------- session

class DlmsSession:
    """One association with one meter (TCP or serial; LN or SN referencing)."""

    def __init__(self, device: DeviceConfig, tracer: FrameTracer, log: Any,
                 memory: DeviceMemory | None = None,
                 transport: Transport | None = None) -> None:
        self.device = device
        self.tracer = tracer
        self.log = log
        self.memory = memory if memory is not None else DeviceMemory()
        if transport is None:
            if device.ip is not None and device.port is not None:
                transport = TcpTransport(device.ip, device.port)
            else:
                bus = self.memory.bus
                if bus is None:  # a serial device on its own line
                    port, settings = device.device or "", serial_settings(device)
                    bus = SerialBus(port, lambda: SerialTransport(port, settings))
                    self.memory.bus = bus
                transport = BusTransport(bus)
        self.transport = transport
        self.timeout = device.timeout_ms / 1000
        self.link: _Link = (_WrapperLink(device, tracer) if device.mode is Mode.WRAPPER
                            else _HdlcLink(device, tracer))
        self.client: LnClient | SnClient | None = None
        self.short_names = device.referencing is Referencing.SN
        self._describe = describe_sn_apdu if self.short_names else describe_apdu
        # SN has no invoke-id: over the wrapper a resent request could be answered twice
        # and the late answer taken for the next one, so SN reads there are not resent
        # (a timeout ends the association instead; HDLC sequence numbers prevent this).
        self._resend = not (self.short_names and device.mode is Mode.WRAPPER)
        self._link_up = False
        self._classes: dict[Obis, int] | None = None  # LN object list
        self._sn_objects: dict[Obis, tuple[int, int]] | None = None  # SN: (base, class)
        self._scalers: dict[tuple[Obis, int], tuple[int, int] | str] = {}
        self.round_trips = 0

    # -- exchanges ----------------------------------------------------------------

    async def _write(self, data: bytes) -> None:
        if data:
            await self.transport.write(data)

    async def _wait(self, first: bytes, accept: Callable[[_LinkEvent], bool], what: str,
                    attempts: int | None = None, timeout: float | None = None
                    ) -> _LinkEvent:
        """Send ``first`` and wait for a link event ``accept`` takes; resend on timeout."""
        loop = asyncio.get_running_loop()
        timeout = self.timeout if timeout is None else timeout
        attempts = self.device.retry_counter + 1 if attempts is None else attempts
        self.round_trips += 1
        await self._write(first)
        for attempt in range(1, attempts + 1):
            deadline = loop.time() + timeout
            while (remaining := deadline - loop.time()) > 0:
                try:
                    data = await self.transport.read(remaining)
                except DlmsTimeout:
                    break
                for event in self.link.feed(data):
                    if accept(event):
                        await self._write(self.link.outgoing())
                        return event
                    if isinstance(event, _LinkDown):
                        raise TransportError(f"{event.reason} while waiting for {what}")
                pending = self.link.outgoing()
                if pending:  # RR for a segment, our next segment: progress
                    self.round_trips += 1
                    await self._write(pending)
                    deadline = loop.time() + timeout
            if attempt < attempts:
                self.log.warning("retry", waiting_for=what, attempt=attempt + 1,
                                 of=attempts, timeout_ms=round(timeout * 1000))
                await self._write(self.link.retry())
        raise DlmsTimeout(f"no answer to {what} from {self.device.port_name} "
                          f"({attempts} attempt{'s' if attempts > 1 else ''} of "
                          f"{round(timeout * 1000)} ms)")

    def _summary(self, apdu: bytes, plain: bytes = b"") -> str:
        """A ciphered APDU is traced by its clear header and, once known, the
        decrypted APDU's summary (never the keys)."""
        if is_ciphered(apdu):
            text = security_describe(apdu)
            return f"{text}; decrypted: {self._describe(plain)}" if plain else text
        return self._describe(apdu)

    async def _request(self, apdu: bytes, what: str) -> ClientEvent:
        """Send one APDU and return the client's event for the answer."""
        assert self.client is not None
        self.tracer.apdu("tx", self._summary(apdu, self.client.last_plain_tx))
        frame = self.link.send(apdu)
        attempts = None if self._resend else 1
        while True:
            event = await self._wait(frame, lambda e: isinstance(e, _Apdu), what,
                                     attempts=attempts)
            assert isinstance(event, _Apdu)
            try:
                result = self.client.receive_apdu(event.apdu)
            finally:
                self.tracer.apdu("rx", self._summary(event.apdu, self.client.last_plain_rx))
            if isinstance(result, StaleResponse):
                self.log.info("stale_response", invoke_id=result.invoke_id,
                              note="repeated block or unsolicited report"
                              if self.short_names else "late answer to a resent request")
                frame = b""  # nothing to send: keep waiting for the right answer
                continue
            return result

    # -- MeterSession --------------------------------------------------------------

    async def open(self) -> None:
        device = self.device
        if device.auth not in _MECHANISMS:
            raise DlmsdError(f"authentication {device.auth.value} is not supported by this "
                             "build yet")
        if device.read_invocation_counter and device.ciphered:
            await self._read_invocation_counter()
        await self.transport.open(self.timeout)
        if device.mode is Mode.IEC:
            await self._mode_e()
        opening = self.link.opening()
        if opening is not None:
            await self._wait(opening, lambda e: isinstance(e, _LinkUp | _LinkDown), "SNRM")
            if not isinstance(self.link, _HdlcLink) or self.link.conn.params is None:
                raise RemoteProtocolError("the meter refused the HDLC connection (DM)")
            params = self.link.conn.params
            self.log.debug("hdlc_connected", max_info_tx=params.max_info_tx,
                           max_info_rx=params.max_info_rx)
        self._link_up = True
        self.client = self._new_client()
        size = ECDSA_CHALLENGE_SIZE if device.auth is Auth.HIGH_ECDSA else HLS_CHALLENGE_SIZE
        aarq = self.client.associate(os.urandom(size))  # CtoS, if HLS
        event = await self._request(aarq, "AARQ")
        if isinstance(event, Authenticate):
            event = await self._request(event.apdu, "reply_to_HLS_authentication")
        assert isinstance(event, Associated)
        self.log.info("associated", conformance=event.conformance.describe(),
                      server_max_pdu=event.server_max_receive_pdu_size)

    async def _read_invocation_counter(self) -> None:
        """read_invocation_counter: a separate association of the public client (no
        authentication, no ciphering; its own link, released and disconnected) reads
        the counter object (class 1, attribute 2), and the device's counters go on
        above it, as the meter refuses a counter not above the last it accepted."""
        device = self.device
        obis, address = device.invocation_counter_obis, device.public_client_address
        public = replace(device, client_address=address, auth=Auth.NONE, password=None,
                         block_cipher_key=None, authentication_key=None,
                         dedicated_key=None, signing_key=None, server_public_key=None,
                         read_invocation_counter=False)
        what = f"reading the invocation counter {obis} through the public client {address}"
        session = DlmsSession(public, self.tracer, self.log.bind(client=address),
                              DeviceMemory(self.memory.no_get_with_list, self.memory.bus),
                              transport=self.transport)
        try:
            await session.open()
            result = (await session.read([ReadRequest("invocation_counter", obis, 2,
                                                      DATA_CLASS, 0)]))[0]
        except AssociationRejected as exc:  # keeps the longer back-off of a rejection
            raise AssociationRejected(f"{what}: {exc}", exc.result, exc.diagnostic,
                                      exc.source) from None
        except DlmsdError as exc:
            raise DlmsdError(f"{what}: {exc}") from None
        finally:
            await session.close()
            self.round_trips += session.round_trips
        value = result.raw
        if result.error is not None:
            raise DlmsdError(f"{what}: {result.error}")
        if not isinstance(value, int) or isinstance(value, bool) or not (
                0 <= value <= MAX_COUNTER):
            raise DlmsdError(f"{what}: the meter's value {value!r} is not an invocation "
                             "counter (an integer 0..2**32-1)")
        store, alias = counter_store(), device.device_alias
        before = store.peek(alias)
        store.advance_to(alias, value + 1)  # 2**32 at most: then exhausted, keys renewed
        after = store.peek(alias)
        self.log.info("invocation_counter_read", obis=str(obis), meter_value=value,
                      next_counter=after, advanced=after > before)

    def _new_client(self) -> LnClient | SnClient:
        """The client for the device's referencing, mechanism and keys."""
        device = self.device
        client_class = SnClient if self.short_names else LnClient
        if device.auth is Auth.HIGH_GMAC:
            if not device.ciphered:
                raise DlmsdError("HighGmac needs security authentication, encryption or both")
            assert device.block_cipher_key is not None and device.authentication_key is not None
            hls = HlsKeys(MechanismName.HIGH_GMAC, system_title=device.system_title,
                          block_cipher_key=device.block_cipher_key.reveal(),
                          authentication_key=device.authentication_key.reveal())
            return client_class(hls=hls, ciphering=self._ciphering(SUITE_0))
        if device.auth is Auth.HIGH_ECDSA:
            assert device.signing_key is not None and device.server_public_key is not None
            signing_key = ec_private_key(device.signing_key)
            hls = HlsKeys(MechanismName.HIGH_ECDSA, system_title=device.system_title,
                          signing_key=signing_key,
                          server_public_key=ec_public_key(device.server_public_key))
            ciphering = (self._ciphering(ecdsa_suite(signing_key)) if device.ciphered
                         else None)
            return client_class(hls=hls, ciphering=ciphering)
        if device.auth in _SECRET_HLS:
            assert device.password is not None  # the configuration checks it
            return client_class(hls=HlsKeys(_MECHANISMS[device.auth] or MechanismName.HIGH,
                                            secret=device.password.reveal(),
                                            system_title=device.system_title))
        password = device.password.reveal() if device.password is not None else None
        return client_class(mechanism=_MECHANISMS[device.auth],
                            authentication_value=password if device.auth is Auth.LOW else None)

    def _ciphering(self, suite: int) -> Ciphering:
        """Glo-ciphering of every APDU with the device's keys, in security ``suite``;
        the invocation counters persist in the counter store."""
        device = self.device
        assert (device.system_title is not None and device.block_cipher_key is not None
                and device.authentication_key is not None)  # the configuration checks it
        store, alias = counter_store(), device.device_alias
        policy = _SECURITY_CONTROL[device.security]
        return Ciphering(
            security_control=replace(policy, suite=suite),
            system_title=device.system_title,
            block_cipher_key=device.block_cipher_key.reveal(),
            authentication_key=device.authentication_key.reveal(),
            dedicated_key=(device.dedicated_key.reveal() if device.dedicated_key is not None
                           else None),
            next_counter=lambda: store.next(alias),
            accept_counter=lambda counter: store.check_received(alias, counter))

    async def _mode_e(self) -> None:
        """IEC 62056-21 mode E: sign on at 300 Bd 7E1, then switch the line to HDLC.

        The pure ModeEOpening decides; this moves its bytes and keeps its times: the
        reaction time before the ACK, the ACK on the wire before the switch.
        """
        transport = self.transport
        port = transport.port if isinstance(transport, BusTransport) else None
        if not isinstance(port, SerialTransport):
            raise TransportError("mode IEC needs a serial line")
        await port.reconfigure(iec.OPENING_BAUD, iec.OPENING_BYTESIZE, iec.OPENING_PARITY,
                               iec.OPENING_STOPBITS)
        opening = iec.ModeEOpening(max_baud=self.device.baudrate, echo=True)
        request = opening.start()
        self.tracer.sent(request, "IEC 62056-21 request " + repr(request))
        await transport.write(request)
        while True:
            event = opening.next_event()
            if event is iec.NEED_DATA:
                try:
                    data = await transport.read(opening.timeout())
                except DlmsTimeout:
                    raise opening.timeout_error() from None
                self.tracer.received(data, f"IEC 62056-21 {opening.step}")
                opening.receive_data(data)
            elif isinstance(event, iec.Identified):
                self.log.info("iec_identified", manufacturer=event.manufacturer,
                              identification=event.identification,
                              baud_rate=event.baud_rate, hdlc=event.hdlc_capable)
                await asyncio.sleep(event.min_reaction_time)
                ack = opening.acknowledge()
                self.tracer.sent(ack, "IEC 62056-21 option select " + repr(ack))
                await transport.write(ack)
            else:
                await port.reconfigure(event.baud_rate, event.bytesize, event.parity,
                                       event.stopbits)
                self.log.info("iec_switched", baud_rate=event.baud_rate)
                if event.trailing:  # bytes of the next layer: not one is lost
                    for item in self.link.feed(event.trailing):
                        self.log.debug("early_link_event", event=str(item))
                return

    async def close(self) -> None:
        try:
            client = self.client
            if (client is not None and client.state is ClientState.ASSOCIATED
                    and self.link.idle):
                try:
                    self.tracer.apdu("tx", "RLRQ")
                    frame = self.link.send(client.release())
                    event = await self._wait(frame, lambda e: isinstance(e, _Apdu), "RLRQ",
                                             attempts=1, timeout=min(self.timeout,
                                                                     RELEASE_TIMEOUT_S))
                    if isinstance(event, _Apdu) and isinstance(
                            client.receive_apdu(event.apdu), Released):
                        self.log.debug("released")
                except (DlmsdError, OSError) as exc:
                    self.log.info("release_unanswered", error=str(exc))
            closing = self.link.closing() if self._link_up else None
            if closing is not None:
                try:
                    await self._wait(closing, lambda e: isinstance(e, _LinkDown), "DISC",
                                     attempts=1, timeout=min(self.timeout, RELEASE_TIMEOUT_S))
                except (DlmsdError, OSError) as exc:
                    self.log.info("disconnect_unanswered", error=str(exc))
        finally:
            self._link_up = False
            if self.client is not None:
                self.client.abort()
            await self.transport.close()

    async def read(self, requests: Sequence[ReadRequest]) -> list[ReadResult]:
        results: dict[str, ReadResult] = {}
        # signal -> (class_id, what to read: an LN descriptor or an SN short name)
        targets: dict[str, tuple[int, Target]] = {}
        resolve = self._resolve_sn if self.short_names else self._resolve_ln
        for req, outcome in zip(requests, await resolve(requests), strict=True):
            if isinstance(outcome, str):
                results[req.signal_alias] = ReadResult(req.signal_alias, error=outcome)
            else:
                targets[req.signal_alias] = outcome
        todo = [r for r in requests if r.signal_alias in targets]

        # scaler_unit of every register attribute not known yet (once per association)
        wanted: dict[tuple[Obis, int], Target] = {}
        for req in todo:
            class_id, target = targets[req.signal_alias]
            su = scaler_unit_attribute(class_id, req.attribute)
            if su is not None and (req.obis, su) not in self._scalers:
                wanted.setdefault((req.obis, su), self._sibling(target, req.attribute, su))
        if wanted:
            for key, value in zip(wanted, await self._fetch(list(wanted.values())),
                                  strict=True):
                self._scalers[key] = self._scaler_of(value)

        values = await self._fetch([targets[r.signal_alias][1] for r in todo]) if todo else []
        for req, value in zip(todo, values, strict=True):
            results[req.signal_alias] = self._convert(req, targets[req.signal_alias][0], value)
        return [results[r.signal_alias] for r in requests]

    def _sibling(self, target: Target, attribute: int, other: int) -> Target:
        """The same object's attribute ``other`` (e.g. the scaler_unit of a value)."""
        if isinstance(target, int):
            return attribute_short_name(base_name_of(target, attribute), other)
        return CosemAttributeDescriptor(target.class_id, target.instance_id, other)

    async def _resolve_ln(self, requests: Sequence[ReadRequest]
                          ) -> list[tuple[int, Target] | str]:
        known = (await self._object_list()
                 if any(r.class_id is None for r in requests) else {})
        out: list[tuple[int, Target] | str] = []
        for req in requests:
            class_id = req.class_id if req.class_id is not None else known.get(req.obis)
            if class_id is None:
                out.append(f"OBIS {req.obis} is not in the meter's object list")
            else:
                out.append((class_id, CosemAttributeDescriptor(class_id, req.obis,
                                                               req.attribute)))
        return out

    async def _resolve_sn(self, requests: Sequence[ReadRequest]
                          ) -> list[tuple[int, Target] | str]:
        need_list = any(not r.short_name or r.class_id is None for r in requests)
        objects = await self._sn_object_list() if need_list else {}
        out: list[tuple[int, Target] | str] = []
        for req in requests:
            entry = objects.get(req.obis)
            class_id = req.class_id if req.class_id is not None else (
                entry[1] if entry else None)
            if req.short_name and class_id is not None:
                out.append((class_id, req.short_name))
            elif entry is None or class_id is None:
                out.append(f"OBIS {req.obis} is not in the meter's object list "
                           "(set address and class_id on the signal)")
            else:
                out.append((class_id, attribute_short_name(entry[0], req.attribute)))
        return out

    # -- reading helpers -------------------------------------------------------------

    @staticmethod
    def _scaler_of(value: Data | DataAccessResult) -> tuple[int, int] | str:
        if isinstance(value, DataAccessResult):
            return f"scaler_unit not readable: {value.describe()}"
        try:
            return parse_scaler_unit(value)
        except DecodeError as exc:
            return str(exc)

    def _convert(self, req: ReadRequest, class_id: int,
                 value: Data | DataAccessResult) -> ReadResult:
        alias = req.signal_alias
        if isinstance(value, DataAccessResult):
            return ReadResult(alias, error=f"{req.obis}:{req.attribute}: {value.describe()}")
        su_attr = scaler_unit_attribute(class_id, req.attribute)
        if su_attr is None:
            return ReadResult(alias, value=render(value, class_id, req.attribute),
                              raw=_raw(value))
        scaler_unit = self._scalers.get((req.obis, su_attr))
        if isinstance(scaler_unit, str) or scaler_unit is None:
            return ReadResult(alias, raw=_raw(value),
                              error=scaler_unit or "scaler_unit missing")
        scaler, unit = scaler_unit
        try:
            scaled = scale(value, scaler)
        except DecodeError as exc:
            return ReadResult(alias, raw=_raw(value), error=str(exc))
        return ReadResult(alias, value=scaled, raw=_raw(value), unit=unit_symbol(unit))

    async def _object_list(self) -> dict[Obis, int]:
        if self._classes is not None:
            return self._classes
        desc = CosemAttributeDescriptor(ASSOCIATION_LN_CLASS, ASSOCIATION_LN,
                                        OBJECT_LIST_ATTRIBUTE)
        value = (await self._fetch([desc]))[0]
        if isinstance(value, DataAccessResult):
            raise DataAccessError(f"cannot read the object list (0.0.40.0.0.255:2): "
                                  f"{value.describe()}; set class_id on the signals",
                                  int(value))
        self._classes = parse_object_list(value)
        self.log.debug("object_list", objects=len(self._classes))
        return self._classes

    async def _sn_object_list(self) -> dict[Obis, tuple[int, int]]:
        if self._sn_objects is not None:
            return self._sn_objects
        assert isinstance(self.client, SnClient)
        name = attribute_short_name(self.client.vaa_name, OBJECT_LIST_ATTRIBUTE)
        value = (await self._fetch([name]))[0]
        if isinstance(value, DataAccessResult):
            raise DataAccessError(f"cannot read the object list (0x{name:04X}): "
                                  f"{value.describe()}; set address and class_id on the "
                                  "signals", int(value))
        self._sn_objects = parse_sn_object_list(value)
        self.log.debug("object_list", objects=len(self._sn_objects))
        return self._sn_objects

    async def _fetch(self, targets: Sequence[Target]) -> list[Data | DataAccessResult]:
        """Read attributes, ``max_list_size`` per request (GET-with-list or a multi-
        variable READ); falls back to one per request for good if the meter refuses."""
        assert self.client is not None
        out: list[Data | DataAccessResult] = []
        size = 1 if self.memory.no_get_with_list else self.device.max_list_size
        i = 0
        while i < len(targets):
            if not self.client.supports_with_list:
                size = 1
            chunk = list(targets[i:i + size])
            event = await self._exchange(chunk)
            if isinstance(event, WithListRefused):
                self.memory.no_get_with_list = True
                self.log.warning("get_with_list_refused", reason=event.reason,
                                 fallback="one attribute per request from now on")
                size = 1
                continue
            out.extend(event.results)
            i += len(chunk)
        return out

    async def _exchange(self, chunk: list[Target]) -> GetComplete | WithListRefused:
        client = self.client
        assert client is not None
        if isinstance(client, SnClient):
            names = [t for t in chunk if isinstance(t, int)]
            what = "READ " + ", ".join(f"0x{n:04X}" for n in names[:3]) + (
                f" +{len(names) - 3}" if len(names) > 3 else "")
            apdu = client.read(names)
        else:
            descs = [t for t in chunk if isinstance(t, CosemAttributeDescriptor)]
            what = f"GET {descs[0].describe()}" + (
                f" +{len(descs) - 1}" if len(descs) > 1 else "")
            apdu = client.get(descs)
        try:
            event = await self._request(apdu, what)
            while isinstance(event, SendApdu):
                event = await self._request(event.apdu, f"{what} block {event.block_number}")
        except BaseException:
            client.cancel_request()
            raise
        if not isinstance(event, GetComplete | WithListRefused):
            raise RemoteProtocolError(f"unexpected answer to {what}: {event}")
        return event


def _raw(value: Data) -> Any:
    if value.type in (DataType.ARRAY, DataType.STRUCTURE):
        return None
    raw = value.value
    return raw.hex() if isinstance(raw, bytes) else raw if isinstance(
        raw, int | float | str | bool) else str(raw)


def parse_object_list(value: Data) -> dict[Obis, int]:
    """object_list (Blue Book 4.4.3, class 15 attribute 2): array of structure
    {class_id long-unsigned, version unsigned, logical_name octet-string(6),
    access_rights} -> {OBIS: class_id}."""
    if value.type is not DataType.ARRAY or not isinstance(value.value, tuple):
        raise DecodeError("object_list is not an array")
    classes: dict[Obis, int] = {}
    for index, item in enumerate(value.value):
        fields = item.value
        if (item.type is not DataType.STRUCTURE or not isinstance(fields, tuple)
                or len(fields) < 3 or not isinstance(fields[0].value, int)
                or not isinstance(fields[2].value, bytes)):
            raise DecodeError(f"object_list element {index} is not "
                              "structure{class_id, version, logical_name, ...}")
        classes.setdefault(Obis.from_bytes(fields[2].value), fields[0].value)
    return classes


def serial_settings(device: DeviceConfig) -> SerialSettings:
    """The line settings of a serial device's configuration."""
    return SerialSettings(baudrate=device.baudrate, databits=device.databits,
                          parity=device.parity, stopbits=device.stopbits,
                          flowcontrol=device.flowcontrol)


def make_session(device: DeviceConfig, tracer: FrameTracer, log: Any,
                 memory: DeviceMemory) -> DlmsSession:
    """The session factory for TCP meters (HDLC and wrapper)."""
    return DlmsSession(device, tracer, log, memory)


register_session_factory(Mode.HDLC, make_session)
register_session_factory(Mode.WRAPPER, make_session)
register_session_factory(Mode.IEC, make_session)
