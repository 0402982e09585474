"""The simulator's settable clock: SET of the Clock's time and its time-setting methods.

Pure: ``now`` (aware, the real time) comes from the caller.  The live clock (``--live``)
shows the real time plus :attr:`Meter.clock_offset <dlmsd.sim.model.Meter>` seconds
(``--clock-drift`` gives its first value); these change it.  A fixed clock (no
``--live``) stays read-only (read-write-denied), as before.

Blue Book (DLMS UA 1000-1) 4.5.1 "Clock", class 8:

* attribute 2 ``time``: an octet-string(12) date-time; its deviation (UTC = local +
  deviation) places it in time; without one (0x8000) it is the meter's local time, at
  its standard offset plus the DST deviation while its rules say DST;
* method 4 ``adjust_to_preset_time`` (integer 0): the time becomes the preset time,
  if the meter's time is within the validity interval (else other-reason; no preset:
  other-reason);
* method 5 ``preset_adjusting_time`` (structure {preset_time, validity_interval_start,
  validity_interval_end}, three octet-string(12) date-times);
* method 6 ``shift_time`` (long, -900..900 s): the time moves by n seconds (outside the
  range: other-reason; another type: type-unmatched).

Methods 1..3 (adjust to quarter, measuring period, minute) stay without access.  With
``--live`` the object_list (LN) and access_rights_list (SN) show the clock's time as
read-and-write and methods 4..6 with access.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Final

from dlmsd.errors import DecodeError
from dlmsd.protocol.axdr import Data, DataType, DateTime
from dlmsd.protocol.xdlms import ActionResult, DataAccessResult
from dlmsd.sim.model import CLOCK_CLASS_ID, SETTABLE_CLOCK_METHODS, CosemObject, Meter

__all__ = ["CLOCK_CLASS", "CLOCK_METHODS", "invoke_clock", "set_clock_time"]

CLOCK_CLASS: Final = CLOCK_CLASS_ID
TIME: Final = 2
ADJUST_TO_PRESET_TIME: Final = 4
PRESET_ADJUSTING_TIME: Final = 5
SHIFT_TIME: Final = 6
#: The methods the simulator's live clock serves (the object_list says so too).
CLOCK_METHODS: Final = SETTABLE_CLOCK_METHODS
_SHIFT_MAX: Final = 900


def _instant(obj: CosemObject, value: Data, now: datetime) -> datetime | None:
    """The instant of a date-time value (octet-string(12) or date-time), or None."""
    raw = value.value
    try:
        if value.type is DataType.DATE_TIME and isinstance(raw, DateTime):
            stamp = raw
        elif value.type is DataType.OCTET_STRING and isinstance(raw, bytes):
            stamp = DateTime.from_bytes(raw)
        else:
            return None
        moment = stamp.to_datetime()
    except (DecodeError, ValueError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:  # the meter's local time
        rules = getattr(obj.sources.get(TIME), "rules", None)
        if rules is None:
            return None
        dst = rules.dst_at(now)
        offset = rules.utc_offset + (rules.dst_deviation if dst else 0)
        moment = moment.replace(tzinfo=timezone(timedelta(minutes=offset)))
    return moment


def set_clock_time(meter: Meter, obj: CosemObject, attribute: int, value: Data,
                   now: datetime) -> DataAccessResult:
    """SET (or SN WRITE) of a clock attribute: only ``time`` of a live clock."""
    if attribute != TIME or not meter.live:
        return DataAccessResult.READ_WRITE_DENIED
    moment = _instant(obj, value, now)
    if moment is None:
        return DataAccessResult.TYPE_UNMATCHED
    meter.clock_offset = (moment - now).total_seconds()
    return DataAccessResult.SUCCESS


def invoke_clock(meter: Meter, obj: CosemObject, method: int, parameter: Data | None,
                 now: datetime) -> ActionResult:
    """ACTION (or SN WRITE of the method's short name) of a clock method."""
    if method not in CLOCK_METHODS or not meter.live:
        return ActionResult.READ_WRITE_DENIED
    if method == SHIFT_TIME:
        if parameter is None or parameter.type is not DataType.LONG or not isinstance(
                parameter.value, int):
            return ActionResult.TYPE_UNMATCHED
        if not -_SHIFT_MAX <= parameter.value <= _SHIFT_MAX:
            return ActionResult.OTHER_REASON
        meter.clock_offset += parameter.value
        return ActionResult.SUCCESS
    if method == PRESET_ADJUSTING_TIME:
        fields = parameter.value if parameter is not None else None
        if (parameter is None or parameter.type is not DataType.STRUCTURE
                or not isinstance(fields, tuple) or len(fields) != 3):
            return ActionResult.TYPE_UNMATCHED
        instants = [_instant(obj, item, now) for item in fields]
        preset, start, end = instants
        if preset is None or start is None or end is None:
            return ActionResult.TYPE_UNMATCHED
        meter.clock_preset = (preset, start, end)
        return ActionResult.SUCCESS
    # adjust_to_preset_time
    if meter.clock_preset is None:
        return ActionResult.OTHER_REASON
    preset, start, end = meter.clock_preset
    clock_now = now + timedelta(seconds=meter.clock_offset)
    if not start <= clock_now <= end:
        return ActionResult.OTHER_REASON
    meter.clock_offset = (preset - now).total_seconds()
    meter.clock_preset = None
    return ActionResult.SUCCESS
