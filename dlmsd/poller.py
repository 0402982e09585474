"""One poller per device: connect, scan every ``scan_rate_ms``, publish, reconnect.

The poller owns the policy of time (its clock and sleep come from outside, so that
tests run it on a fake clock); the protocol work is done by a :class:`MeterSession`
(one association with one meter) that the session factory it is given builds.  The
poller supervises itself with a :class:`Phase` and a bounded back-off: a network
failure waits ``reconnect_time``; a rejected association (wrong password or key) waits
much longer and grows, because meters lock out after repeated bad passwords.  A session
is always closed (RLRQ, DISC) in ``finally``.

Scan timing.  A device's first scan of an association starts as soon as it is
associated; the scans after it fall on the device's own grid of ticks, one every
``scan_rate_ms``, shifted by a phase taken from its alias (:func:`scan_phase`), so
that the devices of a large configuration spread their scans over the period instead
of scanning in one burst.  A scan that starts more than :func:`late_bound` after its
tick is *late* (``PollStats.late_scans``); a scan that ends after its next tick skips
the ticks it overran, which are *missed* (``PollStats.missed_scans``).  Opening an
association waits for one of the supervisor's ``max_connecting`` places (an
:class:`asyncio.Semaphore` shared by the pollers), which bounds the start-up storm.

A device with ``clock_sync`` gets its meter's clock checked after a scan, at most once
per ``min_interval_s`` (the first time after the first scan), and never while the
gateway's own clock is unsynchronised (:mod:`dlmsd.ntp`; unknown counts as
unsynchronised, unless ``require_ntp_sync`` is 0): the check then waits
:data:`NTP_RECHECK_S` and nothing is sent to the meter.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from dlmsd.config import ClockSyncConfig, DeviceConfig, ProfileConfig, SignalConfig
from dlmsd.counters import CounterStore
from dlmsd.errors import (
    AnswerLost,
    AssociationRejected,
    ConfigError,
    DlmsdError,
    DlmsTimeout,
    LinkOutOfStep,
    TransportError,
)
from dlmsd.ntp import GatewayClock, gateway_clock_state
from dlmsd.profile_state import ProfileStateError, ProfileStateStore
from dlmsd.protocol.axdr import DateTime
from dlmsd.protocol.clock import ClockReading, ClockSyncResult
from dlmsd.protocol.reader import (
    AttributeRequest,
    Job,
    MeterCache,
    MeterQuirks,
    ProfileResult,
    ReadProfile,
    ReadResult,
)
from dlmsd.signals import SignalTable
from dlmsd.trace import FrameTracer
from dlmsd.transport.bus import SerialBus

__all__ = [
    "AUTH_BACKOFF_MAX_S",
    "AUTH_BACKOFF_MIN_S",
    "SCAN_BUCKETS_S",
    "MeterSession",
    "Phase",
    "PollStats",
    "Poller",
    "SessionContext",
    "SessionFactory",
    "late_bound",
    "next_tick",
    "scan_phase",
]

# A rejected association backs off at least this long, doubling up to the maximum.
AUTH_BACKOFF_MIN_S = 60.0
AUTH_BACKOFF_MAX_S = 900.0
# Releasing an association on the way out may not take longer than this.
CLOSE_TIMEOUT_S = 10.0
#: A clock sync put off because the gateway's clock is unsynchronised is tried again
#: after this long (or min_interval_s, if shorter); nothing was sent to the meter.
NTP_RECHECK_S = 60.0
#: How often a profile without interval_ms and without a capture period (an event log)
#: is read.
DEFAULT_PROFILE_INTERVAL_S = 900.0

T = TypeVar("T")


class MeterSession(Protocol):
    """One association with one meter, driven by the poller.

    ``open`` connects and associates; ``read`` reads a scan's attributes (a failure of
    one attribute is a per-result error; a failure of the exchange raises a
    :class:`~dlmsd.errors.DlmsdError`); ``close`` releases and disconnects, never
    raises, and is safe to call after a failed ``open``.
    """

    async def open(self) -> None: ...

    async def read(self, requests: Sequence[AttributeRequest]) -> list[ReadResult]: ...

    async def run(self, job: Job[T]) -> T:
        """Run another reader job (a profile read) in the same association."""
        ...

    async def close(self) -> None: ...

    async def sync_clock(self, settings: ClockSyncConfig) -> ClockSyncResult:
        """Check (and set) the meter's clock: see :mod:`dlmsd.protocol.clock`.  Only
        called for a device with ``clock_sync``."""
        ...


#: A scan is late when it starts more than this fraction of the period after its tick...
LATE_FRACTION = 0.1
#: ... or more than this many seconds, whichever is less.
LATE_MAX_S = 1.0


def late_bound(period: float) -> float:
    """How long after its tick a scan may start without being late: 10% of the
    period, at most 1 s."""
    return min(period * LATE_FRACTION, LATE_MAX_S)


def scan_phase(alias: str) -> float:
    """The device's phase: where in the period its ticks fall, as a fraction in [0, 1)
    taken from its alias (CRC-32), the same at every start and on every gateway."""
    return zlib.crc32(alias.encode("utf-8")) / 2**32


def next_tick(now: float, period: float, phase: float) -> float:
    """The first tick strictly after ``now`` of the grid ``phase * period + k * period``
    (on the poller's monotonic clock)."""
    offset = phase * period
    tick = offset + math.ceil((now - offset) / period) * period
    return tick if tick > now else tick + period


#: Upper bounds (seconds) of the scan duration histogram of :class:`PollStats`.
SCAN_BUCKETS_S: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class PollStats:
    """What a device's pollers counted (kept by the supervisor across a poller's
    restarts, read by the HTTP API's /metrics): attribute reads that gave a value or an
    error, sessions ended by a timeout, scans redone at once on a new association
    (``reconnect_now``), association attempts after the first, frames sent again by
    the link (``resends``: after a timeout, or asked for again by an HDLC RR), the
    scans that started late (more than :func:`late_bound` after their tick) and the
    ticks skipped because a scan overran (``missed_scans``), when the first scan was
    complete (``first_scan_at``, wall clock; None: not yet), and the scan durations
    as a cumulative histogram over :data:`SCAN_BUCKETS_S`."""

    reads: int = 0
    read_errors: int = 0
    timeouts: int = 0
    retries: int = 0
    reconnects: int = 0
    attempts: int = 0
    resends: int = 0
    late_scans: int = 0
    missed_scans: int = 0
    first_scan_at: float | None = None
    scan_count: int = 0
    scan_seconds: float = 0.0
    scan_buckets: list[int] = field(default_factory=lambda: [0] * len(SCAN_BUCKETS_S))

    def scan_done(self, seconds: float) -> None:
        self.scan_count += 1
        self.scan_seconds += seconds
        for n, bound in enumerate(SCAN_BUCKETS_S):
            if seconds <= bound:
                self.scan_buckets[n] += 1


def _no_counter_store() -> CounterStore:
    raise ConfigError("no invocation counter store was given to this poller")


@dataclass
class SessionContext:
    """What a device's sessions get from its poller and the supervisor: the trace and
    log bound to the device, the quirks learnt and the meter's object list and
    scaler_units read across associations, the serial bus the device shares (None for
    TCP) and the invocation counter store (opened on first use: only ciphered devices
    need it)."""

    tracer: FrameTracer
    log: Any
    quirks: MeterQuirks = field(default_factory=MeterQuirks)
    bus: SerialBus | None = None
    counters: Callable[[], CounterStore] = field(default=_no_counter_store)
    cache: MeterCache = field(default_factory=MeterCache)
    #: The device's counters; the session adds the link's resends.
    stats: PollStats = field(default_factory=PollStats)


SessionFactory = Callable[[DeviceConfig, SessionContext], MeterSession]


def _reading(prefix: str, reading: ClockReading) -> dict[str, Any]:
    """A clock reading's log fields: the meter's time as it sent it, the gateway's at
    the middle of the round trip, the drift and the round trip."""
    drift = reading.drift_s
    return {f"{prefix}meter_time": reading.describe(),
            f"{prefix}gateway_time": reading.gateway_time.isoformat(timespec="milliseconds"),
            f"{prefix}drift_s": None if drift is None else round(drift, 3),
            f"{prefix}round_trip_ms": round(reading.round_trip_s * 1000, 1)}


def _dropped_link(error: BaseException) -> bool:
    """A connection the meter closed or reset (not a timeout, not a protocol error)."""
    return isinstance(error, TransportError) and not isinstance(error, DlmsTimeout)


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
        session_factory: SessionFactory,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        bus: SerialBus | None = None,
        counters: Callable[[], CounterStore] | None = None,
        stats: PollStats | None = None,
        profiles: Sequence[ProfileConfig] = (),
        profile_state: ProfileStateStore | None = None,
        gateway_clock: Callable[[], GatewayClock] = gateway_clock_state,
        connect_slots: asyncio.Semaphore | None = None,
    ) -> None:
        """``connect_slots``: the places for opening an association that the
        supervisor's pollers share (``max_connecting``); None: unbounded."""
        self.device = device
        self.stats = stats if stats is not None else PollStats()
        self.signals = [s for s in signals if s.enable]
        self.table = table
        self.log = log
        self.tracer = tracer
        self.session_factory = session_factory
        self.clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self.phase = Phase.IDLE
        self.requests = [
            AttributeRequest(s.signal_alias, s.obis, s.attribute, s.class_id, s.address)
            for s in self.signals
        ]
        self._by_alias = {s.signal_alias: s for s in self.signals}
        self.profiles = [p for p in profiles if p.enable]
        self.profile_state = profile_state
        #: profile alias -> the time of the last row read (None: backfill next)
        self._last_row: dict[str, DateTime | None] = {}
        #: profile alias -> when it is due next (the poller's monotonic clock)
        self._profile_due: dict[str, float] = {}
        self._rejections = 0
        self._gateway_clock = gateway_clock
        self._next_clock_sync: float | None = None  # monotonic; None: after the next scan
        self._connect_slots = connect_slots
        self.phase_fraction = scan_phase(device.device_alias)
        self.context = SessionContext(tracer, log, bus=bus,
                                      counters=counters or _no_counter_store,
                                      stats=self.stats)

    async def run(self, once: bool = False) -> None:
        """Connect, scan, publish; on failure back off and reconnect. ``once``: one scan."""
        redone = False  # the last round was an association made again at once
        try:
            while True:
                error, scans = await self._session_round(once)
                if error is not None and scans and not once and _dropped_link(error):
                    # The meter closed a connection that was working (an idle or
                    # inactivity timeout): associate again at once, without going
                    # offline. Needs a good scan in between, so it cannot loop.
                    self.stats.retries += 1
                    self.log.info("reconnect_now", reason=str(error))
                    continue
                if isinstance(error, LinkOutOfStep | AnswerLost) and (scans or not redone):
                    # The meter's HDLC link rejected a frame (FRMR) or is out of step, or
                    # an SN answer over the wrapper was lost: a new connection and
                    # association redo the scan at once, without going offline; once
                    # per scan, so it cannot loop.
                    redone = True
                    self.stats.retries += 1
                    self.log.info("reconnect_now", reason=str(error))
                    continue
                redone = False
                if isinstance(error, DlmsTimeout):
                    self.stats.timeouts += 1
                if error is not None:
                    self._offline(error)
                if once:
                    return
                delay = self._backoff(error)
                self.phase = Phase.BACKING_OFF
                self.log.info("reconnect_wait", seconds=round(delay, 3))
                await self._sleep(delay)
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
        self.stats.attempts += 1
        if self.stats.attempts > 1:
            self.stats.reconnects += 1
        try:
            session = self.session_factory(self.device, self.context)
            self.phase = Phase.CONNECTING
            self.log.debug("connecting")
            async with self._connect_slot(), self._turn():
                await session.open()
            self.table.device_connected(alias)
            self.log.info("connected")
            monotonic = self._monotonic or asyncio.get_running_loop().time
            period = self.device.scan_rate_ms / 1000
            next_scan = monotonic()  # the first scan has no tick: it is never late
            while True:
                self.phase = Phase.POLLING
                async with self._turn():
                    if scans:
                        self._check_late(monotonic() - next_scan, period)
                    await self._scan(session)
                    await self._read_profiles(session, monotonic(), once)
                scans += 1
                took = monotonic() - next_scan
                await self._clock_sync(session, monotonic)
                self.stats.scan_done(took)
                if self.stats.first_scan_at is None:
                    self.stats.first_scan_at = self.clock()
                # One line per scan (debug: free at the default level), for scripts/soak.
                self.log.debug("scan_done", ms=round(took * 1000, 1))
                if once:
                    return None, scans
                now = monotonic()
                if scans == 1:  # onto the device's grid (phase spreading)
                    next_scan = next_tick(now, period, self.phase_fraction)
                else:
                    next_scan += period
                if next_scan < now:  # the scan overran: skip the missed ticks
                    missed = int((now - next_scan) // period) + 1
                    self.stats.missed_scans += missed
                    self.log.warning("scan_overrun", missed=missed,
                                     scan_rate_ms=self.device.scan_rate_ms)
                    next_scan += missed * period
                await self._sleep(next_scan - now)
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

    def _check_late(self, lateness: float, period: float) -> None:
        """Count a scan that starts more than :func:`late_bound` after its tick."""
        if lateness > late_bound(period):
            self.stats.late_scans += 1
            self.log.info("scan_late", late_ms=round(lateness * 1000, 1),
                          scan_rate_ms=self.device.scan_rate_ms)

    @contextlib.asynccontextmanager
    async def _connect_slot(self) -> AsyncIterator[None]:
        """Wait for a place to open an association in (``max_connecting``)."""
        if self._connect_slots is None:
            yield
            return
        async with self._connect_slots:
            yield

    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """Hold the shared bus (if any) for one step: nobody else talks meanwhile."""
        bus = self.context.bus
        if bus is None:
            yield
            return
        async with bus.turn(self.device.device_alias):
            yield

    async def _clock_sync(self, session: MeterSession, monotonic: Callable[[], float]) -> None:
        """Check the meter's clock if the device asks for it and it is due."""
        settings = self.device.clock_sync
        now = monotonic()
        if settings is None or (self._next_clock_sync is not None
                                and now < self._next_clock_sync):
            return
        if settings.require_ntp_sync:
            state = self._gateway_clock()
            if state.synchronised is not True:
                self._next_clock_sync = now + min(NTP_RECHECK_S, settings.min_interval_s)
                self.log.warning("clock_sync_skipped", reason=(
                    "the gateway's clock is not synchronised" if state.synchronised is False
                    else "the gateway's clock state is unknown"), check=state.detail,
                    retry_s=round(self._next_clock_sync - now, 3))
                return
        self._next_clock_sync = now + settings.min_interval_s
        async with self._turn():
            result = await session.sync_clock(settings)
        self._log_clock(settings, result)

    def _log_clock(self, settings: ClockSyncConfig, result: ClockSyncResult) -> None:
        before = result.before
        fields = _reading("", before) | {"max_drift_s": settings.max_drift_s,
                                          "method": settings.method,
                                          "time_zone": settings.zone_name}
        if result.action == "none":
            self.log.info("clock_checked", **fields)
        elif result.action == "skipped":
            self.log.warning("clock_sync_skipped", reason=result.reason, **fields)
        elif result.action == "failed":
            self.log.error("clock_sync_failed", reason=result.reason, written=result.value,
                           **fields)
        else:
            after = _reading("after_", result.after) if result.after is not None else {}
            self.log.notice("clock_synced", action=result.action, written=result.value,
                            **_reading("before_", before), **after,
                            max_drift_s=settings.max_drift_s, time_zone=settings.zone_name)

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

    # -- profiles ------------------------------------------------------------------

    def _since(self, profile: ProfileConfig) -> DateTime | None:
        """Where the profile's reading stopped: in memory, else its state file."""
        alias = profile.profile_alias
        if alias not in self._last_row:
            stamp: DateTime | None = None
            if self.profile_state is not None:
                try:
                    stamp = self.profile_state.load(self.device.device_alias, alias,
                                                    str(profile.obis))
                except ProfileStateError as exc:
                    self.log.warning("profile_state_unreadable", profile=alias,
                                     error=str(exc), action="reading the backfill")
            self._last_row[alias] = stamp
        return self._last_row[alias]

    async def _read_profiles(self, session: MeterSession, now: float, once: bool) -> None:
        """Read the profiles that are due (all of them with ``once``), in this
        association, after the scan; publish their rows in time order and record the
        last one (in memory and in the state directory)."""
        for profile in self.profiles:
            alias = profile.profile_alias
            if not once and self._profile_due.get(alias, now) > now:
                continue
            since = self._since(profile)
            job = ReadProfile(
                alias, profile.obis, datetime.fromtimestamp(self.clock(), UTC), since=since,
                backfill=timedelta(hours=profile.backfill_hours), access=profile.access,
                columns=None if profile.columns is None else frozenset(profile.columns))
            result: ProfileResult = await session.run(job)
            interval = (profile.interval_ms / 1000 if profile.interval_ms is not None
                        else float(result.capture_period) or DEFAULT_PROFILE_INTERVAL_S)
            self._profile_due[alias] = now + interval
            if result.error is not None:
                self.log.warning("profile_error", profile=alias, error=result.error)
                continue
            if result.unplaced:
                self.log.warning("profile_rows_unplaced", profile=alias,
                                 count=result.unplaced,
                                 reason="the time of these entries is not specified")
            self.log.info("profile_read", profile=alias, rows=len(result.rows),
                          method=result.method,
                          since=None if since is None else str(since),
                          last=result.rows[-1].ts if result.rows else None)
            if not result.rows:
                continue
            self.table.publish_rows(self.device.device_alias, alias,
                                    [row.to_json() for row in result.rows])
            last = result.rows[-1].time
            self._last_row[alias] = last
            if self.profile_state is not None:
                try:
                    self.profile_state.save(self.device.device_alias, alias,
                                            str(profile.obis), last)
                except ProfileStateError as exc:
                    self.log.error("profile_state_not_saved", profile=alias, error=str(exc))

    def _publish(self, result: ReadResult, now: float) -> None:
        signal = self._by_alias.get(result.key)
        if signal is None:
            return
        before = self.table.signal(result.key)
        self.stats.reads += 1
        if result.error is not None:
            self.stats.read_errors += 1
            state = self.table.fail_signal(result.key, result.error)
            if before.error != result.error:
                self.log.warning("signal_error", signal=result.key,
                                 error=result.error)
        else:
            state = self.table.update_signal(result.key, value=result.value,
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
