"""A DLMS session with one meter: the I/O loop around a pure meter reader.

Every protocol decision is the reader's (:class:`~dlmsd.protocol.reader.MeterReader`,
built for the device by :func:`dlmsd.readers.build_reader`).  This module moves bytes
between the transport (TCP, or a serial line shared as a bus) and the reader, arms the
reader's one timer on the event loop's clock, carries out its actions (send, switch the
serial line, trace, log), draws the HLS challenge, and reads the meter's invocation counter
through the public client first when the device asks for it.

A call of the reader that may decode a large answer at once (the last block of a long
GET, the last segment of a large APDU: :attr:`MeterReader.pending_octets` plus the new
octets reach ``offload_octets``) runs in the one decode thread, so that the event loop,
and the other meters on it, go on meanwhile (see docs/architecture.md, "The session
loop").  The reader is not thread-safe: one call at a time, and the session awaits
each call before the next, also when it is cancelled.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final, Protocol, TypeVar

from dlmsd.config import ClockSyncConfig, DeviceConfig
from dlmsd.errors import DlmsdError, DlmsTimeout, TransportError, with_context
from dlmsd.poller import SessionContext
from dlmsd.protocol.actions import Action, Note, Send, Trace
from dlmsd.protocol.clock import ClockSyncResult, SyncClock
from dlmsd.protocol.reader import (
    DATA_CLASS,
    AttributeRequest,
    Job,
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

T = TypeVar("T")

__all__ = ["DECODE_THREAD", "OFFLOAD_OCTETS", "DlmsSession", "Transport", "make_session"]

#: A reader call that may decode this many octets at once runs in the decode thread
#: (A-XDR decodes about 2 MB/s here: some 15 ms of CPU at most stay on the loop).
OFFLOAD_OCTETS: Final = 32 * 1024
#: The decode thread's name (a prefix: ``dlmsd-decode_0``).
DECODE_THREAD: Final = "dlmsd-decode"
#: How long a cancelled session waits for its reader call in the decode thread to end
#: before it gives the reader up (a decode is bounded by max_response_size: ~0.5 s).
OFFLOAD_WAIT_S: Final = 5.0

_executor: ThreadPoolExecutor | None = None


def _decode_executor() -> ThreadPoolExecutor:
    """One thread for every session of the process: decodes hold the GIL, so more
    threads would not decode faster, only take more turns from the event loop."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=DECODE_THREAD)
    return _executor


class Transport(Protocol):
    async def open(self, timeout: float) -> None: ...
    async def write(self, data: bytes) -> None: ...
    async def read(self, timeout: float) -> bytes: ...
    async def close(self) -> None: ...


class DlmsSession:
    """One association with one meter (a :class:`dlmsd.poller.MeterSession`)."""

    def __init__(self, device: DeviceConfig, transport: Transport,
                 context: SessionContext, *,
                 offload_octets: int | None = OFFLOAD_OCTETS) -> None:
        """``offload_octets``: see :data:`OFFLOAD_OCTETS`; None decodes everything on
        the event loop."""
        self.device = device
        self.transport = transport
        self.context = context
        self.log = context.log
        self.offload_octets = offload_octets
        #: Reader calls run in the decode thread (for tests and benchmarks).
        self.offloaded = 0
        self._round_trips = 0  # of readers done with
        self._resends_counted = 0  # of the reader, added to context.stats.resends
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
        self._resends_counted = 0
        await self.transport.open(device.timeout_ms / 1000)
        reader = self.reader
        reader.open(self._now(), os.urandom(reader.settings.challenge_size))
        await self._drive(lambda: reader.state is ReaderState.READY)

    async def read(self, requests: Sequence[AttributeRequest]) -> list[ReadResult]:
        results: list[ReadResult] = await self.run(ReadAttributes(tuple(requests)))
        return results

    async def run(self, job: Job[T]) -> T:
        """Run any reader job in this association and return its result (``read``
        runs :class:`ReadAttributes`; the poller :class:`ReadProfile`, dlmsctl its
        discover job)."""
        reader = self.reader
        if reader is None:
            raise DlmsdError("not connected")
        reader.submit(job, self._now())
        await self._drive(lambda: reader.state is not ReaderState.BUSY)
        result: T = reader.result
        return result

    async def sync_clock(self, settings: ClockSyncConfig) -> ClockSyncResult:
        """Run the clock sync job (:mod:`dlmsd.protocol.clock`) on this association.
        The job gets the gateway's wall clock as an offset from the reader's clock,
        taken here, where the I/O layer owns time."""
        job = SyncClock(settings.max_drift_s,
                        "adjust" if settings.method == "adjust" else "set", settings.zone,
                        wall_offset=time.time() - self._now())
        return await self.run(job)

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
                reader.abandon()
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
        try:
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
                await self._receive(reader, data)
        finally:
            if self.reader is reader:
                resends = reader.resends
                self.context.stats.resends += resends - self._resends_counted
                self._resends_counted = resends

    async def _receive(self, reader: MeterReader, data: bytes) -> None:
        """``reader.receive_data``: in the decode thread when it may decode a lot."""
        limit = self.offload_octets
        if limit is None or reader.pending_octets + len(data) < limit:
            reader.receive_data(data, self._now())
            return
        self.offloaded += 1
        job = _decode_executor().submit(reader.receive_data, data, self._now())
        done = asyncio.wrap_future(job)
        try:
            # shielded: a cancellation of this task must not cancel ``done``, which
            # says when the thread has let go of the reader
            await asyncio.shield(done)
        except asyncio.CancelledError:
            await self._settle(job, done, reader)
            raise

    async def _settle(self, job: Future[None], done: asyncio.Future[None],
                      reader: MeterReader) -> None:
        """Cancelled while ``job`` may be running the reader in the decode thread: wait
        for it (bounded), so that nothing (close()) calls the reader meanwhile; a job
        still running after that keeps the reader, and the session lets go of it."""
        if job.cancel():  # still queued behind another session's decode: never ran
            return
        deadline = self._now() + OFFLOAD_WAIT_S
        while not job.done() and (left := deadline - self._now()) > 0:
            try:
                await asyncio.wait({done}, timeout=left)
            except asyncio.CancelledError:
                continue  # cancelled again: the caller re-raises the first one
        if done.done() and not done.cancelled():
            done.exception()  # retrieved: the session is cancelled, not failed
        if not job.done() and self.reader is reader:
            self.log.warning("decode_abandoned", waited_s=OFFLOAD_WAIT_S,
                             state=reader.state.value)
            self._round_trips += reader.round_trips
            self.reader = None  # close() closes the transport only

    async def _act(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                await self.transport.write(action.data)
            elif isinstance(action, Trace):
                if action.data is None:
                    self.context.tracer.apdu(action.direction, action.describe)
                else:
                    self.context.tracer.frame(action.direction, action.data, action.describe)
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
                                 MeterQuirks(self.context.quirks.no_get_with_list),
                                 stats=self.context.stats)
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
