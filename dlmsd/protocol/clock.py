"""The meter's clock: measure its drift and set it (pure, sans-I/O).

:class:`SyncClock` is a reader job (:mod:`dlmsd.protocol.reader`): it reads the Clock
object (Blue Book class 8, ``0.0.1.0.0.255``) attribute 2 ``time``, takes the round trip
into account, and when the drift is larger than ``max_drift_s`` sets the clock and reads
it back.  The job does no I/O and reads no clock: the reader's ``now`` (monotonic, the
event loop's) comes in through :meth:`JobContext.exchange_times`, and ``wall_offset``
(the gateway's wall-clock time minus the reader's clock, taken by the session when it
builds the job) turns it into UTC.

Drift.  A GET of ``time`` goes out at ``sent`` and its answer comes at ``answered``
(reader clock); the meter took its value somewhere in between, at best guess the
middle.  So::

    drift = meter time - gateway time at (sent + answered) / 2

positive when the meter is ahead; its uncertainty is half the round trip.  A drift that
half the round trip cannot tell from ``max_drift_s`` is not acted on (``skipped``).

Blue Book (DLMS UA 1000-1), 4.5.1 "Clock" (class_id 8, version 0):

* attribute 2 ``time`` octet-string(12), a date-time: local time, its ``deviation``
  (minutes, UTC = local + deviation) and the clock status (bit 7: daylight saving
  active; bits 0..3 invalid, doubtful, different clock base, invalid clock status);
* attribute 3 ``time_zone`` long: the deviation of local *normal* time to UTC, in
  minutes, with the sign of the date-time deviation; attribute 7
  ``daylight_savings_deviation`` integer (minutes).  They are read only when the
  meter's date-time leaves its deviation unspecified (0x8000): the deviation is then
  ``time_zone`` less ``daylight_savings_deviation`` while the status says DST;
* method 4 ``adjust_to_preset_time`` (data: integer 0): the time becomes the preset
  time, if the meter's time is within the validity interval;
* method 5 ``preset_adjusting_time`` (data: structure {preset_time octet-string(12),
  validity_interval_start octet-string(12), validity_interval_end octet-string(12)});
* method 6 ``shift_time`` (data: long -900..900): shift the time by n seconds.

``set`` writes attribute 2 with the gateway's time in the configured time zone (the
deviation of that zone at that instant, the DST bit as the zone says, hundredths
given), predicted for the moment the meter takes it: the request goes out at the
previous answer and reaches the meter half a round trip later (a SET in blocks: its
last block, one more round trip per block).  ``adjust`` shifts the
time when the drift is within 900 s (method 6 by -round(drift)), else presets the
time (method 5) to the gateway's time one and a half round trips ahead, valid while
the meter's own time is within max(60 s, 10 round trips) of what it is now, and
adjusts to it (method 4).  Either way the clock is read again afterwards.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Final, Literal

from dlmsd.errors import DecodeError
from dlmsd.protocol.axdr import ClockStatus, Data, DataType, DateTime
from dlmsd.protocol.client import ActionComplete, Directory, MethodTarget, Target
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.reader import Act, Fetch, JobContext, Operation, Set
from dlmsd.protocol.xdlms import ActionResult, DataAccessResult

__all__ = [
    "ADJUST_TO_PRESET_TIME",
    "CLOCK_CLASS",
    "CLOCK_OBIS",
    "PRESET_ADJUSTING_TIME",
    "SHIFT_TIME",
    "SHIFT_TIME_MAX_S",
    "ClockReading",
    "ClockSyncResult",
    "SyncClock",
    "gateway_date_time",
    "meter_datetime",
]

CLOCK_OBIS: Final = Obis(0, 0, 1, 0, 0, 255)
CLOCK_CLASS: Final = 8
TIME: Final = 2
TIME_ZONE: Final = 3
DST_DEVIATION: Final = 7
ADJUST_TO_PRESET_TIME: Final = 4
PRESET_ADJUSTING_TIME: Final = 5
SHIFT_TIME: Final = 6
#: Blue Book: shift_time takes a long from -900 to 900 (seconds).
SHIFT_TIME_MAX_S: Final = 900
#: The validity interval of a preset time, at least (seconds either side).
PRESET_VALIDITY_S: Final = 60.0

Method = Literal["set", "adjust"]
ClockRun = Generator[Operation, Any, "ClockSyncResult"]


@dataclass(frozen=True)
class ClockReading:
    """One read of the meter's time and what it tells against the gateway's."""

    meter: DateTime  # as the meter sent it
    meter_time: datetime | None  # aware; None: the meter's date-time is not a time
    gateway_time: datetime  # UTC, at the middle of the round trip
    round_trip_s: float
    error: str | None = None
    unreadable: bool = False  # the meter refused the read, or sent no date-time

    @property
    def drift_s(self) -> float | None:
        """Meter time - gateway time (s): positive when the meter is ahead."""
        if self.meter_time is None:
            return None
        return (self.meter_time - self.gateway_time).total_seconds()

    def describe(self) -> str:
        return self.meter.isoformat() if self.meter_time is not None else (
            self.error or "no time")


@dataclass(frozen=True)
class ClockSyncResult:
    """``action``: ``none`` (within max_drift_s), ``set``, ``shift_time``,
    ``preset_time``, ``skipped`` (``reason`` says why), or ``failed`` (the meter
    refused: ``reason``); ``after`` is the read back (None when nothing was done)."""

    before: ClockReading
    action: str
    after: ClockReading | None = None
    reason: str = ""
    value: str = ""  # what was written or the shift, for the log


def gateway_date_time(moment: datetime, zone: tzinfo) -> DateTime:
    """The COSEM date-time of the instant ``moment`` (aware) in ``zone``: local time,
    deviation = -UTC offset (minutes), clock status DST bit as the zone says it."""
    local = moment.astimezone(zone)
    dst = local.dst()
    status = ClockStatus.DAYLIGHT_SAVING_ACTIVE if dst else ClockStatus(0)
    return DateTime.from_datetime(local, clock_status=status)


def meter_datetime(value: DateTime, time_zone: int | None = None,
                   dst_deviation: int | None = None) -> datetime | None:
    """The aware instant of a meter's date-time: its own deviation, else ``time_zone``
    (attribute 3) less ``dst_deviation`` while its status says DST; None when it is
    no instant (fields not specified, or no deviation to go by)."""
    if value.deviation is None:
        if time_zone is None:
            return None
        dst = bool(value.clock_status and value.clock_status
                   & ClockStatus.DAYLIGHT_SAVING_ACTIVE)
        deviation = time_zone - ((dst_deviation or 0) if dst else 0)
        try:
            value = DateTime(value.year, value.month, value.day, value.day_of_week,
                             value.hour, value.minute, value.second, value.hundredths,
                             deviation, value.clock_status)
        except ValueError:
            return None
    try:
        return value.to_datetime()
    except (ValueError, DecodeError):
        return None


def _date_time_of(value: Data) -> DateTime:
    raw = value.value
    if value.type is DataType.DATE_TIME and isinstance(raw, DateTime):
        return raw
    if isinstance(raw, bytes | bytearray):
        return DateTime.from_bytes(bytes(raw))
    raise DecodeError(f"the clock's time is {value.type.name}, not a date-time")


@dataclass(frozen=True)
class SyncClock:
    """Read the meter's clock and set it when it drifts more than ``max_drift_s``.

    ``zone`` is the time zone written to the meter (``set``); ``wall_offset`` the
    gateway's UTC time (s since the epoch) minus the reader's clock; ``force``: set
    whatever the drift (tests, a first setting)."""

    max_drift_s: float
    method: Method
    zone: tzinfo
    wall_offset: float
    obis: Obis = CLOCK_OBIS
    force: bool = False

    def _wall(self, now: float) -> datetime:
        return datetime.fromtimestamp(now + self.wall_offset, UTC)

    def run(self, context: JobContext) -> ClockRun:
        client = context.client
        directory: Directory = {}
        if client.needs_object_list(CLOCK_CLASS, 0):
            directory = yield from context.directory()
        target = client.target(self.obis, TIME, CLOCK_CLASS, 0, directory)
        if isinstance(target, str):
            return ClockSyncResult(ClockReading(DateTime(), None, self._wall(0), 0.0, target),
                                   "failed", reason=target)
        time_target = target[1]
        zone_info: list[int | None] = []
        before = yield from self._measure(context, time_target, zone_info)
        if before.unreadable:
            return ClockSyncResult(before, "failed", reason=before.error or "")
        drift = before.drift_s
        if drift is None and not self.force:
            return ClockSyncResult(before, "skipped", reason=before.error or "no time")
        if drift is not None and abs(drift) <= self.max_drift_s and not self.force:
            return ClockSyncResult(before, "none")
        if before.round_trip_s / 2 >= self.max_drift_s and not self.force:
            return ClockSyncResult(before, "skipped", reason=(
                f"half the round trip ({before.round_trip_s / 2:.3f} s) is not below "
                f"max_drift_s ({self.max_drift_s} s): the drift cannot be told"))
        rtt = before.round_trip_s
        answered = context.exchange_times()[1]
        if self.method == "set" or drift is None:  # (None: only with force)
            # the SET goes out now (at the answer) and reaches the meter half a round
            # trip later; in blocks, its last block one round trip per block after
            # the first
            probe = Data.octets(gateway_date_time(self._wall(answered), self.zone).to_bytes())
            extra = client.set_exchanges(time_target, probe) - 1
            moment = self._wall(answered) + timedelta(seconds=rtt / 2 + extra * rtt)
            value = gateway_date_time(moment, self.zone)
            result = yield Set(time_target, Data.octets(value.to_bytes()))
            action, written = "set", value.isoformat()
            if result is not DataAccessResult.SUCCESS:
                return ClockSyncResult(before, "failed", reason=(
                    f"SET {client.name_of(time_target)} refused: "
                    f"{DataAccessResult(result).describe()}"), value=written)
        elif isinstance(method := self._method(context, directory, SHIFT_TIME), str):
            return ClockSyncResult(before, "failed", reason=method)
        elif abs(drift) <= SHIFT_TIME_MAX_S:
            shift = -round(drift)
            done = yield Act(method, Data.int16(shift))
            action, written = "shift_time", f"{shift:+d} s"
            if (failed := _refused(done, "shift_time")) is not None:
                return ClockSyncResult(before, "failed", reason=failed, value=written)
        else:
            assert before.meter_time is not None
            preset_method = self._method(context, directory, PRESET_ADJUSTING_TIME)
            adjust_method = self._method(context, directory, ADJUST_TO_PRESET_TIME)
            if isinstance(preset_method, str):
                return ClockSyncResult(before, "failed", reason=preset_method)
            if isinstance(adjust_method, str):
                return ClockSyncResult(before, "failed", reason=adjust_method)
            # the adjust goes out after the preset's answer: 1.5 round trips from now
            moment = self._wall(answered) + timedelta(seconds=1.5 * rtt)
            preset = gateway_date_time(moment, self.zone)
            margin = timedelta(seconds=max(PRESET_VALIDITY_S, 10 * rtt))
            # the meter's time advances with the gateway's
            meter_now = before.meter_time + (self._wall(answered) - before.gateway_time)
            start = DateTime.from_datetime(meter_now - margin)
            end = DateTime.from_datetime(meter_now + margin + timedelta(seconds=3 * rtt))
            done = yield Act(preset_method, Data.structure(
                Data.octets(preset.to_bytes()), Data.octets(start.to_bytes()),
                Data.octets(end.to_bytes())))
            action, written = "preset_time", preset.isoformat()
            if (failed := _refused(done, "preset_adjusting_time")) is not None:
                return ClockSyncResult(before, "failed", reason=failed, value=written)
            done = yield Act(adjust_method, Data.int8(0))
            if (failed := _refused(done, "adjust_to_preset_time")) is not None:
                return ClockSyncResult(before, "failed", reason=failed, value=written)
        after = yield from self._measure(context, time_target, zone_info)
        return ClockSyncResult(before, action, after, value=written)

    def _method(self, context: JobContext, directory: Directory,
                method: int) -> MethodTarget | str:
        return context.client.method_target(self.obis, CLOCK_CLASS, method, directory)

    def _measure(self, context: JobContext, target: Target,
                 zone_info: list[int | None]) -> Generator[Operation, Any, ClockReading]:
        """Read attribute 2 (and, once, 3 and 7 when the deviation is not given)."""
        (value,) = yield Fetch((target,))
        sent, answered = context.exchange_times()
        rtt = max(answered - sent, 0.0)
        gateway = self._wall(sent + rtt / 2)
        if isinstance(value, DataAccessResult):
            return ClockReading(DateTime(), None, gateway, rtt, (
                f"cannot read the clock's time ({context.client.name_of(target)}): "
                f"{value.describe()}"), unreadable=True)
        try:
            meter = _date_time_of(value)
        except DecodeError as exc:
            return ClockReading(DateTime(), None, gateway, rtt,
                                f"the clock's time is no date-time: {exc}", unreadable=True)
        if meter.deviation is None and not zone_info:
            client = context.client
            zone, dst = yield Fetch((client.sibling(target, TIME, TIME_ZONE),
                                     client.sibling(target, TIME, DST_DEVIATION)))
            zone_info += [_integer(zone), _integer(dst)]
        instant = meter_datetime(meter, *zone_info) if zone_info else meter_datetime(meter)
        error = None if instant is not None else (
            f"the meter's time {meter.to_bytes().hex().upper()} is no instant "
            "(unspecified fields, or no deviation and no time_zone)")
        return ClockReading(meter, instant, gateway, rtt, error)


def _integer(value: object) -> int | None:
    if isinstance(value, Data) and isinstance(value.value, int) and not isinstance(
            value.value, bool):
        return value.value
    return None


def _refused(done: object, name: str) -> str | None:
    if not isinstance(done, ActionComplete):
        return f"{name}: no answer"
    if done.result is not ActionResult.SUCCESS:
        return f"{name} refused: {done.result.describe()}"
    return None
