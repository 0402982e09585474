"""A DLMS session with one meter: the I/O loop around a pure meter reader.

Every protocol decision is the reader's (:class:`~dlmsd.protocol.reader.MeterReader`,
built for the device by :func:`dlmsd.readers.build_reader`).  This module moves bytes
between the transport (TCP, or a serial line shared as a bus) and the reader, arms the
reader's one timer on the event loop's clock, carries out its actions (send, switch the
serial line, trace, log), draws the HLS challenge, and reads the meter's invocation counter
through the public client first when the device asks for it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from dlmsd.config import DeviceConfig
from dlmsd.errors import DlmsdError, DlmsTimeout, TransportError, with_context
from dlmsd.poller import SessionContext
from dlmsd.protocol.actions import Action, Note, Send, Trace
from dlmsd.protocol.reader import (
    DATA_CLASS,
    AttributeRequest,
    MeterQuirks,
    MeterReader,
    ReadAttributes,
    ReaderState,
    ReadResult,
    counter_from,
)
from dlmsd.readers import build_reader, public_device
from dlmsd.transport.bus import BusTransport
from dlmsd.transport.serial import SerialTransport
from dlmsd.transport.tcp import TcpTransport

__all__ = ["DlmsSession", "Transport", "make_session"]


class Transport(Protocol):
    async def open(self, timeout: float) -> None: ...
    async def write(self, data: bytes) -> None: ...
    async def read(self, timeout: float) -> bytes: ...
    async def close(self) -> None: ...


class DlmsSession:
    """One association with one meter (a :class:`dlmsd.poller.MeterSession`)."""

    def __init__(self, device: DeviceConfig, transport: Transport,
                 context: SessionContext) -> None:
        self.device = device
        self.transport = transport
        self.context = context
        self.log = context.log
        self._round_trips = 0  # of readers done with
        self.reader: MeterReader | None = None

    @property
    def round_trips(self) -> int:
        """Requests sent that wait for an answer (resends not counted)."""
        return self._round_trips + (self.reader.round_trips if self.reader else 0)

    async def open(self) -> None:
        device = self.device
        if device.read_invocation_counter and device.ciphered:
            await self._read_invocation_counter()
        self.reader = build_reader(device, quirks=self.context.quirks,
                                   counters=self.context.counters, cache=self.context.cache)
        await self.transport.open(device.timeout_ms / 1000)
        reader = self.reader
        reader.open(self._now(), os.urandom(reader.settings.challenge_size))
        await self._drive(lambda: reader.state is ReaderState.READY)

    async def read(self, requests: Sequence[AttributeRequest]) -> list[ReadResult]:
        reader = self.reader
        if reader is None:
            raise DlmsdError("not connected")
        reader.submit(ReadAttributes(tuple(requests)), self._now())
        await self._drive(lambda: reader.state is not ReaderState.BUSY)
        results: list[ReadResult] = reader.result
        return results

    async def close(self) -> None:
        reader = self.reader
        try:
            if reader is not None:
                reader.close(self._now())
                await self._drive(lambda: reader.state is ReaderState.CLOSED)
        except Exception as exc:  # close never raises (CancelledError still does)
            self.log.info("close_failed", error=str(exc))
        finally:
            if reader is not None:
                self._round_trips += reader.round_trips
                self.reader = None
            await self.transport.close()

    # -- the loop ------------------------------------------------------------------

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def _drive(self, done: Callable[[], bool]) -> None:
        """Carry out the reader's actions and feed it bytes and timer expiries until
        ``done()``; the reader raises what ends the session."""
        reader = self.reader
        assert reader is not None
        while True:
            await self._act(reader.actions())
            if done():
                return
            timer = reader.get_timer()
            if timer is None:  # a reader that waits for nothing cannot get anywhere
                raise DlmsdError(f"the reader is stuck {reader.state.value}")
            try:
                data = await self.transport.read(max(timer - self._now(), 0.0))
            except DlmsTimeout:
                reader.handle_timer(self._now())
                continue
            reader.receive_data(data, self._now())

    async def _act(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                await self.transport.write(action.data)
            elif isinstance(action, Trace):
                if action.data is None:
                    self.context.tracer.apdu(action.direction, action.summary)
                else:
                    self.context.tracer.frame(action.direction, action.data, action.summary)
            elif isinstance(action, Note):
                # "notice" falls back to info on a logger without it (logsetup.notice)
                (getattr(self.log, action.level, None) or self.log.info)(action.event,
                                                                         **action.fields)
            else:  # SetLine: IEC 62056-21 mode E
                port = self.transport.port if isinstance(self.transport,
                                                         BusTransport) else None
                if not isinstance(port, SerialTransport):
                    raise TransportError("mode IEC needs a serial line")
                await port.reconfigure(*action.settings)

    async def _read_invocation_counter(self) -> None:
        """read_invocation_counter: a separate association of the public client (no
        authentication, no ciphering; its own link, released and disconnected) reads
        the counter object (class 1, attribute 2), and the device's counters go on
        above it, as the meter refuses a counter not above the last it accepted."""
        device = self.device
        obis, address = device.invocation_counter_obis, device.public_client_address
        context = SessionContext(self.context.tracer, self.log.bind(client=address),
                                 MeterQuirks(self.context.quirks.no_get_with_list))
        public = DlmsSession(public_device(device), self.transport, context)
        try:
            await public.open()
            value = counter_from((await public.read(
                [AttributeRequest("invocation_counter", obis, 2, DATA_CLASS)]))[0])
        except DlmsdError as exc:  # the same type: a rejection keeps its back-off
            raise with_context(exc, f"reading the invocation counter {obis} through the "
                               f"public client {address}") from exc
        finally:
            await public.close()
            self._round_trips += public.round_trips
        store, alias = self.context.counters(), device.device_alias
        before = store.peek(alias)
        store.advance_to(alias, value + 1)  # 2**32 at most: then exhausted, keys renewed
        after = store.peek(alias)
        self.log.info("invocation_counter_read", obis=str(obis), meter_value=value,
                      next_counter=after, advanced=after > before)


def make_session(device: DeviceConfig, context: SessionContext) -> DlmsSession:
    """The session factory: TCP for a device with ``ip``, its serial bus otherwise."""
    transport: Any
    if device.ip is not None and device.port is not None:
        transport = TcpTransport(device.ip, device.port)
    else:
        if context.bus is None:
            raise DlmsdError(f"no serial bus was made for {device.device}: a serial device's "
                             "SessionContext needs its bus (the supervisor makes one per port)")
        transport = BusTransport(context.bus)
    return DlmsSession(device, transport, context)
