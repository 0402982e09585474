"""Profile Generic buffer -> rows (pure).

A profile's buffer (class 7 attribute 2, Blue Book 4.3.6) is ``array`` of entries, each
a ``structure`` with one element per capture object (attribute 3, in that order).  The
A-XDR decoder gives it whole: block transfer (GET-Response-With-Datablock, SN
data-block-result) is reassembled by the clients, and a compact-array (Data tag 19) is
decoded by :mod:`~dlmsd.protocol.axdr` into the same array of structures (its
contents-description must be fully typed: a compact-array whose description holds
``dont-care`` or ``null-data`` element types cannot carry a null column and is decoded
as the description says).  Rows:

* **time**: the value of the clock column (class 8 attribute 2, wherever it is among
  the capture objects), an octet-string(12) or a date-time, rendered as ISO 8601 with
  the offset its deviation gives (no offset when the meter leaves the deviation
  unspecified: the meter's local time); the clock status is kept.
* **values**: ``OBIS:attribute`` -> value.  Register-like columns (class 3 and 4
  attribute 2, class 5 attributes 2 and 3) are scaled exactly with their scaler_unit
  (:func:`~dlmsd.protocol.values.scale`, Decimal) and their unit goes in ``units``;
  others are rendered as signals are (:func:`~dlmsd.protocol.values.render`).
* **null-data columns**.  Blue Book 4.3.6 does not say that a null-data value repeats
  the previous entry's, so a null column stays null, with one exception, for the
  clock column of a periodic profile: when the meter leaves out the time of an entry
  (null-data) it is the previous entry's time plus ``capture_period`` (the
  "compressed" load profiles of IDIS package 2 and DSMR P3: the time is sent only for
  the first entry of an answer and after an irregular one).  This is the rule
  gurux_dlms applies (``GXDLMSProfileGeneric``, buffer of a FIFO-sorted profile) and
  OSGP (open-smart-grid-platform pull requests 84 and 740, "handle null data in
  capture time").  NOTE: the text of the Blue Book clause was not available to us;
  this rule is taken from those two implementations, not from a quoted clause.  A
  null clock with no earlier entry (or with capture_period 0) leaves the row without
  a time: it is set aside (counted in :attr:`Rows.unplaced`), never guessed.
* **status**: the value of a profile status column (Data 0.0.96.10.x.255, the "AMR
  profile status" of IDIS and DSMR) if there is one, else the clock status of the
  time (an int, None when not specified).
* **event codes**: a column Data 0.0.96.11.x.255 attribute 2 (event code objects of
  the event logs, e.g. in the standard event log 0.0.99.98.0.255) keeps its number
  in ``values`` and gets its name in ``events`` from :data:`EVENT_NAMES`.

The event names are those of the standard event log and the fraud detection log of
the DSMR P3 companion standard (Netbeheer Nederland, "P3 Companion Standard", event
tables; the codes 1..19 and 255 are the IDIS package 2 standard event log's), as
transcribed in OSGP's ``EventType`` enum (open-smart-grid-platform, Apache-2.0).  The
Blue Book itself defines no event codes.  Codes not in the table have no name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from dlmsd.errors import DecodeError
from dlmsd.protocol.axdr import ClockStatus, Data, DataType, DateTime, describe
from dlmsd.protocol.selective import CaptureObject
from dlmsd.protocol.units import unit_symbol
from dlmsd.protocol.values import Value, render, scale, scaler_unit_attribute

__all__ = [
    "CLOCK_CLASS",
    "EVENT_NAMES",
    "ProfileRow",
    "Rows",
    "clock_column",
    "dumps_exact",
    "instant",
    "rows_from_buffer",
    "timestamp_text",
]

CLOCK_CLASS: Final = 8
_DATA_CLASS: Final = 1
#: Rows one buffer may hold (bounds the work on a hostile answer; the A-XDR decoder
#: bounds its size already).
MAX_ROWS: Final = 1_000_000

#: Event code -> name (see the module text for the source).
EVENT_NAMES: Final[Mapping[int, str]] = {
    1: "power down",
    2: "power up",
    3: "daylight saving time enabled or disabled",
    4: "clock adjusted (old date/time)",
    5: "clock adjusted (new date/time)",
    6: "clock invalid",
    7: "replace battery",
    8: "battery voltage low",
    9: "TOU activated",
    10: "error register cleared",
    11: "alarm register cleared",
    12: "program memory error",
    13: "RAM error",
    14: "NV memory error",
    15: "watchdog error",
    16: "measurement system error",
    17: "firmware ready for activation",
    18: "firmware activated",
    19: "passive TOU programmed",
    20: "successful self-check after firmware update",
    40: "terminal cover removed",
    41: "terminal cover closed",
    42: "strong DC field detected",
    43: "no strong DC field anymore",
    44: "meter cover removed",
    45: "meter cover closed",
    46: "n times wrong password",
    47: "configuration change",
    255: "event log cleared",
}

Scaler = tuple[int, int] | str  # (scaler, unit code), or why there is none


def clock_column(columns: Sequence[CaptureObject]) -> int | None:
    """The index of the clock column (class 8 attribute 2, data_index 0), or None."""
    for index, column in enumerate(columns):
        if (column.class_id == CLOCK_CLASS and column.attribute_index == 2
                and column.data_index == 0):
            return index
    return None


def _is_event_code(column: CaptureObject) -> bool:
    name = column.logical_name
    return (column.class_id == _DATA_CLASS and column.attribute_index == 2
            and (name.a, name.b, name.c, name.d, name.f) == (0, 0, 96, 11, 255))


def _is_status(column: CaptureObject) -> bool:
    name = column.logical_name
    return (column.attribute_index == 2 and column.class_id in (1, 3)
            and (name.a, name.b, name.c, name.d, name.f) == (0, 0, 96, 10, 255))


def instant(stamp: DateTime) -> datetime | None:
    """The point in time of ``stamp`` for ordering rows: aware with its deviation; a
    stamp without deviation (the meter's local time) is taken as if it were UTC, so
    the stamps of one meter stay comparable.  None if not a complete valid time."""
    value = stamp.to_datetime()
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def timestamp_text(stamp: DateTime) -> str | None:
    """ISO 8601 (``2024-05-06T00:15:00+01:00``; no offset without deviation), or None."""
    value = stamp.to_datetime()
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")


@dataclass(frozen=True)
class ProfileRow:
    """One entry of a profile."""

    time: DateTime
    values: dict[str, Value]
    units: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    events: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    filled: bool = False  # the time was left out (null-data) and computed

    @property
    def instant(self) -> datetime:
        value = instant(self.time)
        assert value is not None  # rows_from_buffer keeps only placed rows
        return value

    @property
    def ts(self) -> str:
        text = timestamp_text(self.time)
        assert text is not None
        return text

    def to_json(self) -> dict[str, Any]:
        """The row as published: Decimals stay Decimal (see :func:`dumps_exact`)."""
        out: dict[str, Any] = {"ts": self.ts, "values": dict(self.values),
                               "units": dict(self.units), "status": self.status}
        if self.events:
            out["events"] = dict(self.events)
        if self.errors:
            out["errors"] = dict(self.errors)
        return out


@dataclass(frozen=True)
class Rows:
    rows: list[ProfileRow]
    unplaced: int = 0  # entries whose time is not specified and cannot be computed


def _time_of(data: Data, where: str) -> DateTime | None:
    if data.type is DataType.NULL_DATA:
        return None
    try:
        return data.as_date_time()
    except DecodeError:
        raise DecodeError(f"{where}: the clock column must be a date-time, got "
                          f"{describe(data)}") from None


def _next(previous: DateTime, period: int) -> DateTime | None:
    base = previous.to_datetime()
    if base is None:
        return None
    try:
        return DateTime.from_datetime(base + timedelta(seconds=period),
                                      clock_status=previous.clock_status)
    except (OverflowError, ValueError):  # past the year 9999
        return None


def rows_from_buffer(buffer: Data, columns: Sequence[CaptureObject],
                     scalers: Mapping[str, Scaler], *, capture_period: int = 0,
                     previous: DateTime | None = None,
                     keep: frozenset[str] | None = None) -> Rows:
    """The rows of ``buffer``, whose entries have one element per capture object of
    ``columns``.  ``scalers``: column key -> its scaler_unit (register-like columns);
    ``previous``: the time of the entry before the first (the last row of an earlier
    read), for a first entry whose time is left out; ``keep``: the column keys to
    keep in ``values`` (None: all).  Raises DecodeError naming the entry and column."""
    if buffer.type is not DataType.ARRAY or not isinstance(buffer.value, tuple):
        raise DecodeError(f"profile buffer must be an array, got {describe(buffer)}")
    entries = buffer.value
    if len(entries) > MAX_ROWS:
        raise DecodeError(f"profile buffer: {len(entries)} entries, more than {MAX_ROWS}")
    clock = clock_column(columns)
    if clock is None:
        raise DecodeError("the profile has no clock column (class 8 attribute 2) among "
                          f"its {len(columns)} capture objects")
    rows: list[ProfileRow] = []
    unplaced = 0
    last = previous
    for number, entry in enumerate(entries, 1):
        where = f"profile entry {number}"
        items = entry.value
        if entry.type is not DataType.STRUCTURE or not isinstance(items, tuple):
            raise DecodeError(f"{where} must be a structure, got {describe(entry)}")
        if len(items) != len(columns):
            raise DecodeError(f"{where} has {len(items)} values for {len(columns)} "
                              "capture objects")
        stamp = _time_of(items[clock], f"{where} column {clock + 1}")
        filled = False
        if stamp is None and last is not None and capture_period > 0:
            stamp, filled = _next(last, capture_period), True
        if stamp is None or instant(stamp) is None:
            unplaced += 1
            last = None  # a later left-out time cannot be computed from this one
            continue
        last = stamp
        rows.append(_row(stamp, items, columns, clock, scalers, keep, filled))
    return Rows(rows, unplaced)


def _row(stamp: DateTime, items: tuple[Data, ...], columns: Sequence[CaptureObject],
         clock: int, scalers: Mapping[str, Scaler], keep: frozenset[str] | None,
         filled: bool) -> ProfileRow:
    values: dict[str, Value] = {}
    units: dict[str, str] = {}
    events: dict[str, str] = {}
    errors: dict[str, str] = {}
    status: int | None = None
    for index, (column, item) in enumerate(zip(columns, items, strict=True)):
        if index == clock:
            continue
        key = column.key
        if _is_status(column) and isinstance(item.value, int) and not isinstance(
                item.value, bool):
            status = item.value
        if keep is not None and key not in keep:
            continue
        if item.type is DataType.NULL_DATA:
            values[key] = None
            continue
        su = (scaler_unit_attribute(column.class_id, column.attribute_index)
              if column.data_index == 0 else None)
        if su is None:
            values[key] = render(item, column.class_id, column.attribute_index)
            if _is_event_code(column) and isinstance(item.value, int):
                name = EVENT_NAMES.get(item.value)
                if name is not None:
                    events[key] = name
            continue
        scaler = scalers.get(key)
        if scaler is None or isinstance(scaler, str):
            values[key] = None
            errors[key] = scaler or "scaler_unit missing"
            continue
        try:
            values[key] = scale(item, scaler[0])
        except DecodeError as exc:
            values[key] = None
            errors[key] = str(exc)
            continue
        units[key] = unit_symbol(scaler[1])
    if status is None and stamp.clock_status is not None:
        status = int(stamp.clock_status)
    return ProfileRow(stamp, values, units, status, events, errors, filled)


def dumps_exact(value: Any) -> str:
    """JSON text with Decimals as exact numbers (``1234.56``, never a binary float)."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            return "null"
        text = format(value, "f")
        return "0" if text in ("-0", "0") else text
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {dumps_exact(v)}"
                               for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(dumps_exact(v) for v in value) + "]"
    if isinstance(value, float) and not (value == value and abs(value) != float("inf")):
        return "null"
    if isinstance(value, ClockStatus):
        return str(int(value))
    return json.dumps(value, ensure_ascii=False)
