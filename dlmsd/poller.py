"""One poller per device: connect, scan every ``scan_rate_ms``, publish, reconnect.

The poller owns time and I/O policy; the protocol work is done by a
:class:`MeterSession` (one association with one meter) that a session factory builds
for the device's mode. The poller supervises itself with a :class:`Phase` and a
bounded back-off: a network failure waits ``reconnect_time``; a rejected association
(wrong password or key) waits much longer and grows, because meters lock out after
repeated bad passwords. A session is always closed (RLRQ, DISC) in ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dlmsd.config import DeviceConfig, Mode, SignalConfig
from dlmsd.errors import AssociationRejected, DlmsdError, DlmsTimeout, TransportError
from dlmsd.protocol.obis import Obis
from dlmsd.signals import SignalTable, Value
from dlmsd.trace import FrameTracer
from dlmsd.transport.bus import SerialBus

__all__ = [
    "AUTH_BACKOFF_MAX_S",
    "AUTH_BACKOFF_MIN_S",
    "SESSION_FACTORIES",
    "DeviceMemory",
    "MeterSession",
    "Phase",
    "Poller",
    "ReadRequest",
    "ReadResult",
    "SessionFactory",
    "register_session_factory",
]

# A rejected association backs off at least this long, doubling up to the maximum.
AUTH_BACKOFF_MIN_S = 60.0
AUTH_BACKOFF_MAX_S = 900.0
# Releasing an association on the way out may not take longer than this.
CLOSE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ReadRequest:
    """One attribute to read for one signal."""

    signal_alias: str
    obis: Obis
    attribute: int
    class_id: int | None
    short_name: int  # SN referencing: the attribute's short name, 0 = resolve


@dataclass(frozen=True)
class ReadResult:
    """The outcome of one ReadRequest: a value, or a per-signal error."""

    signal_alias: str
    value: Value = None
    raw: Any = None
    unit: str = ""
    error: str | None = None


class MeterSession(Protocol):
    """One association with one meter, driven by the poller.

    ``open`` connects and associates; ``read`` reads a scan's attributes (a failure of
    one attribute is a per-result error; a failure of the exchange raises a
    :class:`~dlmsd.errors.DlmsdError`); ``close`` releases and disconnects, never
    raises, and is safe to call after a failed ``open``.
    """

    async def open(self) -> None: ...

    async def read(self, requests: Sequence[ReadRequest]) -> list[ReadResult]: ...

    async def close(self) -> None: ...


@dataclass
class DeviceMemory:
    """What a device's poller keeps across associations: quirks learnt on the way, and
    the serial bus the device shares with others (None for TCP devices)."""

    no_get_with_list: bool = False
    bus: SerialBus | None = None


SessionFactory = Callable[[DeviceConfig, FrameTracer, Any, DeviceMemory], MeterSession]
SESSION_FACTORIES: dict[Mode, SessionFactory] = {}


def register_session_factory(mode: Mode, factory: SessionFactory) -> None:
    """Register the session factory for a mode (the protocol stack plugs in here)."""
    SESSION_FACTORIES[mode] = factory


class _Unsupported:
    """The session of a mode no protocol stack has registered for: fails clearly."""

    def __init__(self, device: DeviceConfig) -> None:
        self.device = device

    async def open(self) -> None:
        raise DlmsdError(f"mode {self.device.mode.value} is not supported by this build")

    async def read(self, requests: Sequence[ReadRequest]) -> list[ReadResult]:
        raise DlmsdError("not connected")

    async def close(self) -> None:
        return None


def _dropped_link(error: BaseException) -> bool:
    """A connection the meter closed or reset (not a timeout, not a protocol error)."""
    return isinstance(error, TransportError) and not isinstance(error, DlmsTimeout)


def default_session_factory(device: DeviceConfig, tracer: FrameTracer, log: Any,
                            memory: DeviceMemory) -> MeterSession:
    factory = SESSION_FACTORIES.get(device.mode)
    if factory is None:
        return _Unsupported(device)
    return factory(device, tracer, log, memory)


class Phase(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    POLLING = "polling"
    BACKING_OFF = "backing-off"
    STOPPED = "stopped"


class Poller:
    """Polls one device until cancelled (or once, with ``once=True``)."""

    def __init__(
        self,
        device: DeviceConfig,
        signals: Sequence[SignalConfig],
        table: SignalTable,
        log: Any,
        tracer: FrameTracer,
        session_factory: SessionFactory = default_session_factory,
        clock: Callable[[], float] = time.time,
        bus: SerialBus | None = None,
    ) -> None:
        self.device = device
        self.signals = [s for s in signals if s.enable]
        self.table = table
        self.log = log
        self.tracer = tracer
        self.session_factory = session_factory
        self.clock = clock
        self.phase = Phase.IDLE
        self.requests = [
            ReadRequest(s.signal_alias, s.obis, s.attribute, s.class_id, s.address)
            for s in self.signals
        ]
        self._by_alias = {s.signal_alias: s for s in self.signals}
        self._rejections = 0
        self.memory = DeviceMemory(bus=bus)

    async def run(self, once: bool = False) -> None:
        """Connect, scan, publish; on failure back off and reconnect. ``once``: one scan."""
        try:
            while True:
                error, scans = await self._session_round(once)
                if error is not None and scans and not once and _dropped_link(error):
                    # The meter closed a connection that was working (an idle or
                    # inactivity timeout): associate again at once, without going
                    # offline. Needs a good scan in between, so it cannot loop.
                    self.log.info("reconnect_now", reason=str(error))
                    continue
                if error is not None:
                    self._offline(error)
                if once:
                    return
                delay = self._backoff(error)
                self.phase = Phase.BACKING_OFF
                self.log.info("reconnect_wait", seconds=round(delay, 3))
                await asyncio.sleep(delay)
        finally:
            self.phase = Phase.STOPPED

    def _backoff(self, error: BaseException | None) -> float:
        base = self.device.reconnect_time / 1000
        if isinstance(error, AssociationRejected):
            self._rejections += 1
            growth = 2.0 ** min(self._rejections - 1, 16)
            delay = min(max(base, AUTH_BACKOFF_MIN_S) * growth, AUTH_BACKOFF_MAX_S)
            return max(delay, base)
        self._rejections = 0
        return base

    async def _session_round(self, once: bool) -> tuple[BaseException | None, int]:
        """One association: open, scan until failure.

        Returns the error that ended it (None after the one scan of ``once``) and the
        number of scans that succeeded.
        """
        scans = 0
        alias = self.device.device_alias
        session: MeterSession | None = None
        try:
            session = self.session_factory(self.device, self.tracer, self.log, self.memory)
            self.phase = Phase.CONNECTING
            self.log.debug("connecting")
            async with self._turn():
                await session.open()
            self.table.device_connected(alias)
            self.log.info("connected")
            loop = asyncio.get_running_loop()
            period = self.device.scan_rate_ms / 1000
            next_scan = loop.time()
            while True:
                self.phase = Phase.POLLING
                async with self._turn():
                    await self._scan(session)
                scans += 1
                if once:
                    return None, scans
                next_scan += period
                now = loop.time()
                if next_scan < now:  # the scan overran: skip the missed ticks
                    missed = int((now - next_scan) // period) + 1
                    self.log.warning("scan_overrun", missed=missed,
                                     scan_rate_ms=self.device.scan_rate_ms)
                    next_scan += missed * period
                await asyncio.sleep(next_scan - now)
        except asyncio.CancelledError:
            raise
        except DlmsdError as exc:
            return exc, scans
        except Exception as exc:  # a bug: report it, keep the daemon and other meters going
            self.log.exception("poller_bug", error=repr(exc))
            return exc, scans
        finally:
            try:
                if session is not None:
                    # Bounded, and not shielded: a release that cannot finish is
                    # abandoned (the transport is still closed in its finally) rather
                    # than left running behind a stopped poller.
                    async with asyncio.timeout(CLOSE_TIMEOUT_S):
                        await self._close(session)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.log.warning("close_failed", error=str(exc))

    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """Hold the shared bus (if any) for one step: nobody else talks meanwhile."""
        if self.memory.bus is None:
            yield
            return
        async with self.memory.bus.turn(self.device.device_alias):
            yield

    async def _close(self, session: MeterSession) -> None:
        async with self._turn():
            await session.close()

    def _offline(self, exc: BaseException) -> None:
        message = str(exc) or type(exc).__name__
        self.log.error("device_offline", error=message, kind=type(exc).__name__)
        self.tracer.dump(message)
        self.table.device_offline(self.device.device_alias, message,
                                  [s.signal_alias for s in self.signals])

    async def _scan(self, session: MeterSession) -> None:
        if not self.requests:
            self.table.device_online(self.device.device_alias, now=self.clock())
            return
        results = await session.read(self.requests)
        now = self.clock()
        for result in results:
            self._publish(result, now)
        self.table.device_online(self.device.device_alias, now=now)

    def _publish(self, result: ReadResult, now: float) -> None:
        signal = self._by_alias.get(result.signal_alias)
        if signal is None:
            return
        before = self.table.signal(result.signal_alias)
        if result.error is not None:
            state = self.table.fail_signal(result.signal_alias, result.error)
            if before.error != result.error:
                self.log.warning("signal_error", signal=result.signal_alias,
                                 error=result.error)
        else:
            state = self.table.update_signal(result.signal_alias, value=result.value,
                                             raw=result.raw, unit=result.unit, now=now)
        if (before.value, before.status) != (state.value, state.status):
            self.log.info("signal_update", signal=signal.signal_alias, value=str(state.value),
                          unit=state.unit, status=state.status.value)
            if signal.log:
                # log: 1 asks for every change on record: warning level, so that it
                # shows at the service's default -d4.
                self.log.warning("signal_event", signal=signal.signal_alias,
                             name=signal.signal_name, value=str(state.value),
                             unit=state.unit, status=state.status.value)
