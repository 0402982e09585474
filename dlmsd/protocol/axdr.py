"""A-XDR codec for the COSEM ``Data`` CHOICE (IEC 62056-6-2, DLMS UA Green Book).

This module owns the bytes of every attribute value, method parameter and
notification body: the ``Data`` tags, the one length codec, the value objects of
bit strings and COSEM date/time, and the bounds that keep a hostile meter from
making us allocate or recurse without limit.  :class:`AxdrReader` is the one bounded
cursor over A-XDR input: ``Data`` values are read with it, and so are the APDUs of
:mod:`~dlmsd.protocol.acse`, :mod:`~dlmsd.protocol.xdlms`, :mod:`~dlmsd.protocol.sn`
and :mod:`~dlmsd.protocol.security`.  It is pure: no I/O, no clock.

Value mapping (``Data.value`` by ``Data.type``)::

    null-data, dont-care                  None
    array, structure                      tuple[Data, ...]
    boolean                               bool (decode: any non-zero byte is True; encode 0x01)
    bit-string                            BitString
    integer .. long64-unsigned, enum      int (range-checked on encode)
    bcd                                   int 0..255 (the raw byte, two BCD digits)
    octet-string                          bytes
    visible-string                        str (decoded as latin-1, see below)
    utf8-string                           str (invalid UTF-8 is a DecodeError)
    float32, float64                      float
    date-time, date, time                 DateTime, Date, Time
    compact-array (decode only)           decoded to Data(ARRAY, (...)) of typed elements

visible-string is ASCII by the standard, but meters in the field put vendor
bytes >= 0x80 in names and serial numbers.  Rejecting them would lose the whole
reading, so it is decoded as latin-1: every byte maps to exactly one character
and encoding with latin-1 gives the identical bytes back.

Errors: decoding raises only :class:`~dlmsd.errors.DecodeError` (truncated input
is invalid here: the APDU around the value is already complete); encoding raises
:class:`~dlmsd.errors.LocalProtocolError` for values that do not fit their type.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date as _py_date
from datetime import datetime as _py_datetime
from datetime import time as _py_time
from datetime import timedelta, timezone
from enum import IntEnum, IntFlag
from typing import Final, TypeVar

from dlmsd.errors import DecodeError, LocalProtocolError

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "MIN_NODE_BUDGET",
    "NODE_BYTES",
    "AxdrReader",
    "BitString",
    "ClockStatus",
    "Data",
    "DataType",
    "Date",
    "DateTime",
    "LabelledEnum",
    "Time",
    "WireEnum",
    "check_range",
    "decode_data",
    "decode_data_all",
    "decode_length",
    "decode_whole",
    "describe",
    "encode_data",
    "encode_length",
    "node_budget",
    "to_python",
]

#: Deepest nesting of arrays/structures (and compact-array type descriptions)
#: accepted on decode and produced on encode.  A value inside N containers has
#: depth N.  COSEM objects nest 3-4 levels; 32 leaves room and bounds recursion.
MAX_DEPTH: Final = 32

#: Most ``Data`` nodes one decode call may produce.  Plain A-XDR spends at least
#: one byte per node, but a compact-array repeats its type description per
#: element, so a short description can multiply the output; this caps that.
MAX_NODES: Final = 1_000_000

#: Most ``Data`` nodes per input octet beyond :data:`MIN_NODE_BUDGET`: one
#: :class:`AxdrReader` produces at most ``max(MIN_NODE_BUDGET, octets // 2)`` nodes
#: (and never more than :data:`MAX_NODES`).  Every tagged value but null-data and
#: dont-care spends at least two octets (tag and content, or tag and count), so
#: healthy answers stay far below it (a load profile row spends 4-6 octets a node),
#: while a hostile array of nulls (one octet a node, ~100 octets of memory and a
#: microsecond or two each) is refused before any of it is built.
NODE_BYTES: Final = 2

#: Nodes any input may produce whatever its size (a compact-array of short elements
#: inside one PDU spends less than :data:`NODE_BYTES` octets a node).
MIN_NODE_BUDGET: Final = 65_536


def node_budget(octets: int) -> int:
    """The most ``Data`` nodes decoded from ``octets`` of A-XDR input."""
    return min(MAX_NODES, max(MIN_NODE_BUDGET, octets // NODE_BYTES))


# --------------------------------------------------------------------------- enums
class LabelledEnum(IntEnum):
    """An ``IntEnum`` whose members spell themselves as the standard's ASN.1 does."""

    @property
    def label(self) -> str:
        """The standard's spelling, e.g. ``read-write-denied`` or ``long-unsigned``."""
        return self.name.lower().replace("_", "-")


class WireEnum(LabelledEnum):
    """An ``IntEnum`` for codes read off the wire.

    A meter may send a code this version of the standard does not define; rejecting
    the whole APDU for it would hide what the meter meant, so an unknown integer
    becomes a pseudo-member named ``UNKNOWN_<n>`` (``R(7).label == "unknown-7"``).
    """

    @classmethod
    def _missing_(cls, value: object) -> WireEnum | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        member = int.__new__(cls, value)
        member._name_ = f"UNKNOWN_{value}"
        member._value_ = value
        return member

    def describe(self) -> str:
        """The spelling and the code, e.g. ``read-write-denied (3)``."""
        return f"{self.label} ({int(self)})"


# IEC 62056-6-2 / Green Book, Data ::= CHOICE {
#   null-data [0] IMPLICIT NULL,            array [1] IMPLICIT SEQUENCE OF Data,
#   structure [2] IMPLICIT SEQUENCE OF Data, boolean [3] IMPLICIT BOOLEAN,
#   bit-string [4] IMPLICIT BIT STRING,     double-long [5] IMPLICIT Integer32,
#   double-long-unsigned [6] IMPLICIT Unsigned32,
#   octet-string [9] IMPLICIT OCTET STRING, visible-string [10] IMPLICIT VisibleString,
#   utf8-string [12] IMPLICIT UTF8String,   bcd [13] IMPLICIT Integer8,
#   integer [15] IMPLICIT Integer8,         long [16] IMPLICIT Integer16,
#   unsigned [17] IMPLICIT Unsigned8,       long-unsigned [18] IMPLICIT Unsigned16,
#   compact-array [19] IMPLICIT SEQUENCE { contents-description [0] TypeDescription,
#                                          array-contents [1] IMPLICIT OCTET STRING },
#   long64 [20] IMPLICIT Integer64,         long64-unsigned [21] IMPLICIT Unsigned64,
#   enum [22] IMPLICIT Unsigned8,           float32 [23] IMPLICIT OCTET STRING (SIZE(4)),
#   float64 [24] IMPLICIT OCTET STRING (SIZE(8)),
#   date-time [25] IMPLICIT OCTET STRING (SIZE(12)), date [26] IMPLICIT OCTET STRING (SIZE(5)),
#   time [27] IMPLICIT OCTET STRING (SIZE(4)), dont-care [255] IMPLICIT NULL }
class DataType(LabelledEnum):
    """The tag of each alternative of the ``Data`` CHOICE."""

    NULL_DATA = 0
    ARRAY = 1
    STRUCTURE = 2
    BOOLEAN = 3
    BIT_STRING = 4
    DOUBLE_LONG = 5
    DOUBLE_LONG_UNSIGNED = 6
    OCTET_STRING = 9
    VISIBLE_STRING = 10
    UTF8_STRING = 12
    BCD = 13
    INTEGER = 15
    LONG = 16
    UNSIGNED = 17
    LONG_UNSIGNED = 18
    COMPACT_ARRAY = 19
    LONG64 = 20
    LONG64_UNSIGNED = 21
    ENUM = 22
    FLOAT32 = 23
    FLOAT64 = 24
    DATE_TIME = 25
    DATE = 26
    TIME = 27
    DONT_CARE = 255

    @property
    def asn1_name(self) -> str:
        """The name used in the standard's ASN.1, e.g. ``long-unsigned``."""
        return self.label


_BY_TAG: Final[dict[int, DataType]] = {int(t): t for t in DataType}
_NAMES: Final[dict[DataType, str]] = {t: t.asn1_name for t in DataType}

# Fixed-width integer alternatives: (struct, min, max).  BCD carries the raw byte.
_INTS: Final[dict[DataType, tuple[struct.Struct, int, int]]] = {
    DataType.INTEGER: (struct.Struct(">b"), -(2**7), 2**7 - 1),
    DataType.LONG: (struct.Struct(">h"), -(2**15), 2**15 - 1),
    DataType.DOUBLE_LONG: (struct.Struct(">i"), -(2**31), 2**31 - 1),
    DataType.LONG64: (struct.Struct(">q"), -(2**63), 2**63 - 1),
    DataType.UNSIGNED: (struct.Struct(">B"), 0, 2**8 - 1),
    DataType.LONG_UNSIGNED: (struct.Struct(">H"), 0, 2**16 - 1),
    DataType.DOUBLE_LONG_UNSIGNED: (struct.Struct(">I"), 0, 2**32 - 1),
    DataType.LONG64_UNSIGNED: (struct.Struct(">Q"), 0, 2**64 - 1),
    DataType.ENUM: (struct.Struct(">B"), 0, 2**8 - 1),
    DataType.BCD: (struct.Struct(">B"), 0, 2**8 - 1),
}
_FLOATS: Final[dict[DataType, struct.Struct]] = {
    DataType.FLOAT32: struct.Struct(">f"),
    DataType.FLOAT64: struct.Struct(">d"),
}
_U8: Final = struct.Struct(">B")
_I8: Final = struct.Struct(">b")
_U16: Final = struct.Struct(">H")
_U32: Final = struct.Struct(">I")
_LENGTH_WIDTHS: Final = {1: _U8, 2: _U16, 4: _U32}
_T = TypeVar("_T")


# --------------------------------------------------------------------------- length
# A-XDR length of a variable-length value or SEQUENCE OF (IEC 62056-6-2 / Green Book
# "A-XDR encoding of the length"), the BER definite form: a length below 128 is one
# byte; otherwise the first byte is 0x80 | N followed by N bytes of big-endian length.
def encode_length(n: int) -> bytes:
    """Encode ``n`` (0 .. 2**32-1) in the A-XDR/BER definite length form.

    Uses the shortest form: one byte below 0x80, else 0x81, 0x82 or 0x84 + big-endian.
    """
    if n < 0 or n > 0xFFFFFFFF:
        raise LocalProtocolError(f"A-XDR length {n} outside 0..2**32-1")
    if n < 0x80:
        return _U8.pack(n)
    if n <= 0xFF:
        return b"\x81" + _U8.pack(n)
    if n <= 0xFFFF:
        return b"\x82" + _U16.pack(n)
    return b"\x84" + _U32.pack(n)


def decode_length(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode an A-XDR length at ``buf[pos]``; returns ``(length, new_pos)``.

    Accepts 0x81..0x84 long forms (non-minimal forms too, as meters send them).
    Raises :class:`DecodeError` on truncation, the indefinite form 0x80, or more
    than four length bytes.  The caller checks the length against what remains.
    """
    return _length_at(buf, pos, len(buf))


def _length_at(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """decode_length reading no further than ``end``."""
    if pos < 0 or pos >= end:
        raise DecodeError(f"A-XDR length: no byte at offset {pos}")
    first = buf[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    width = first & 0x7F
    if width == 0 or width > 4:
        raise DecodeError(f"A-XDR length: invalid first byte 0x{first:02X} at offset {pos - 1}")
    if pos + width > end:
        raise DecodeError(f"A-XDR length: {width} length bytes truncated at offset {pos}")
    return int.from_bytes(buf[pos : pos + width], "big"), pos + width


# --------------------------------------------------------------------------- BitString
@dataclass(frozen=True)
class BitString:
    """A BIT STRING: ``length`` bits, first bit in the most significant bit of ``data[0]``.

    ``data`` holds exactly ceil(length / 8) bytes.  Unused trailing bits are kept as
    received (not masked), so decoding then encoding gives the same bytes.
    """

    length: int
    data: bytes

    def __post_init__(self) -> None:
        if self.length < 0:
            raise ValueError(f"bit-string length {self.length} is negative")
        if len(self.data) != (self.length + 7) // 8:
            raise ValueError(
                f"bit-string of {self.length} bits needs {(self.length + 7) // 8} bytes, "
                f"got {len(self.data)}"
            )

    @classmethod
    def from_str(cls, bits: str) -> BitString:
        """``BitString.from_str("0101")``: first character is the first bit."""
        if any(c not in "01" for c in bits):
            raise ValueError(f"bit-string text {bits!r} may hold only '0' and '1'")
        return cls.from_bits(c == "1" for c in bits)

    @classmethod
    def from_bits(cls, bits: Iterable[bool]) -> BitString:
        """Build from booleans, first one is the first bit."""
        flags = list(bits)
        out = bytearray((len(flags) + 7) // 8)
        for i, bit in enumerate(flags):
            if bit:
                out[i // 8] |= 0x80 >> (i % 8)
        return cls(len(flags), bytes(out))

    def bits(self) -> tuple[bool, ...]:
        """The bits as booleans, first bit first."""
        return tuple(bool(self.data[i // 8] & (0x80 >> (i % 8))) for i in range(self.length))

    def __getitem__(self, index: int) -> bool:
        if not 0 <= index < self.length:
            raise IndexError(f"bit {index} outside bit-string of {self.length} bits")
        return bool(self.data[index // 8] & (0x80 >> (index % 8)))

    def __len__(self) -> int:
        return self.length

    def __str__(self) -> str:
        return "".join("1" if b else "0" for b in self.bits())


# --------------------------------------------------------------------------- date / time
# Blue Book (DLMS UA 1000-1) 4.1.6.1 "Date and time formats":
#   date OCTET STRING (SIZE(5)) { year highbyte, year lowbyte, month, day of month, day of week }
#   time OCTET STRING (SIZE(4)) { hour, minute, second, hundredths }
#   date-time OCTET STRING (SIZE(12)) { year highbyte, year lowbyte, month, day of month,
#       day of week, hour, minute, second, hundredths of second,
#       deviation highbyte, deviation lowbyte, clock status }
#   year: long-unsigned 0..big, 0xFFFF = not specified
#   month: 1..12, 0xFD = daylight_savings_end, 0xFE = daylight_savings_begin, 0xFF = not specified
#   day of month: 1..31, 0xFD = 2nd last day of month, 0xFE = last day of month, 0xFF = n.s.
#   day of week: 1..7 (1 = Monday), 0xFF = not specified
#   hour 0..23, minute 0..59, second 0..59, hundredths 0..99; 0xFF = not specified
#   deviation: long -720..+720, "in minutes of local time to UTC"; 0x8000 = not specified
#   clock status: unsigned, 0xFF = not specified
#
# Deviation sign: the deviation is what must be ADDED to local time to get UTC,
#   UTC = local + deviation,
# the opposite of the ISO 8601 / Python utcoffset() sign.  Central European Summer
# Time (UTC+02:00) has deviation -120.  Same reading in the OSGP smart-metering
# documentation ("SynchronizeTime": CEST -> deviation -120) and in gurux_dlms.
# Here "not specified" is None; special month/day values stay ints (constants below).

#: month value: daylight saving ends / begins in this month (recurring dates).
MONTH_DST_END: Final = 0xFD
MONTH_DST_BEGIN: Final = 0xFE
#: day-of-month value: second-last / last day of the month.
DAY_SECOND_LAST: Final = 0xFD
DAY_LAST: Final = 0xFE

_NS8: Final = 0xFF
_NS_YEAR: Final = 0xFFFF
_NS_DEVIATION: Final = -0x8000  # 0x8000 read as a signed long

_DATE: Final = struct.Struct(">HBBB")
_TIME: Final = struct.Struct(">BBBB")
_DATE_TIME: Final = struct.Struct(">HBBBBBBBhB")
_WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class ClockStatus(IntFlag):
    """Blue Book 4.1.6.1 clock status bits (bits 4..6 reserved, kept if set)."""

    INVALID_VALUE = 0x01
    DOUBTFUL_VALUE = 0x02
    DIFFERENT_CLOCK_BASE = 0x04
    INVALID_CLOCK_STATUS = 0x08
    DAYLIGHT_SAVING_ACTIVE = 0x80


#: The clock status bits :meth:`DateTime.isoformat` names (bits 4..6 are reserved).
_STATUS_WORDS = {
    int(ClockStatus.INVALID_VALUE): "invalid value",
    int(ClockStatus.DOUBTFUL_VALUE): "doubtful value",
    int(ClockStatus.DIFFERENT_CLOCK_BASE): "different clock base",
    int(ClockStatus.INVALID_CLOCK_STATUS): "invalid clock status",
}


def _check_byte(name: str, value: int | None) -> None:
    if value is not None and not 0 <= value <= 0xFE:
        raise ValueError(f"{name} {value} outside 0..254 (use None for not specified)")


def _byte(value: int | None) -> int:
    return _NS8 if value is None else value


def _opt(value: int) -> int | None:
    return None if value == _NS8 else value


def _fmt(value: int | None, width: int) -> str:
    return "*" if value is None else f"{value:0{width}d}"


@dataclass(frozen=True)
class Date:
    """COSEM date (5 bytes).  ``None`` is "not specified" (0xFF / 0xFFFF on the wire)."""

    year: int | None = None
    month: int | None = None
    day: int | None = None
    day_of_week: int | None = None

    def __post_init__(self) -> None:
        if self.year is not None and not 0 <= self.year <= 0xFFFE:
            raise ValueError(f"year {self.year} outside 0..65534 (use None for not specified)")
        _check_byte("month", self.month)
        _check_byte("day", self.day)
        _check_byte("day_of_week", self.day_of_week)

    @classmethod
    def from_bytes(cls, data: bytes) -> Date:
        """Decode the 5-byte form; :class:`DecodeError` if it is not 5 bytes."""
        if len(data) != _DATE.size:
            raise DecodeError(f"date needs {_DATE.size} bytes, got {len(data)}")
        year, month, day, dow = _DATE.unpack(data)
        return cls(None if year == _NS_YEAR else year, _opt(month), _opt(day), _opt(dow))

    def to_bytes(self) -> bytes:
        year = _NS_YEAR if self.year is None else self.year
        return _DATE.pack(year, _byte(self.month), _byte(self.day), _byte(self.day_of_week))

    @classmethod
    def from_date(cls, value: _py_date) -> Date:
        """From a Python date (day of week filled in)."""
        return cls(value.year, value.month, value.day, value.isoweekday())

    def to_date(self) -> _py_date | None:
        """The Python date if year, month and day are specified and valid, else None."""
        if self.year is None or self.month is None or self.day is None:
            return None
        try:
            return _py_date(self.year, self.month, self.day)
        except ValueError:
            return None

    def __str__(self) -> str:
        text = f"{_fmt(self.year, 4)}-{_month_str(self.month)}-{_day_str(self.day)}"
        # The weekday is redundant next to a full date; it matters in wildcard dates.
        if self.day_of_week is not None and None in (self.year, self.month, self.day):
            text += " " + _weekday_str(self.day_of_week)
        return text


def _month_str(month: int | None) -> str:
    if month == MONTH_DST_END:
        return "dst-end"
    if month == MONTH_DST_BEGIN:
        return "dst-begin"
    return _fmt(month, 2)


def _day_str(day: int | None) -> str:
    if day == DAY_SECOND_LAST:
        return "2nd-last"
    if day == DAY_LAST:
        return "last"
    return _fmt(day, 2)


def _weekday_str(dow: int) -> str:
    return _WEEKDAYS[dow - 1] if 1 <= dow <= 7 else f"dow({dow})"


@dataclass(frozen=True)
class Time:
    """COSEM time (4 bytes).  ``None`` is "not specified" (0xFF on the wire)."""

    hour: int | None = None
    minute: int | None = None
    second: int | None = None
    hundredths: int | None = None

    def __post_init__(self) -> None:
        _check_byte("hour", self.hour)
        _check_byte("minute", self.minute)
        _check_byte("second", self.second)
        _check_byte("hundredths", self.hundredths)

    @classmethod
    def from_bytes(cls, data: bytes) -> Time:
        """Decode the 4-byte form; :class:`DecodeError` if it is not 4 bytes."""
        if len(data) != _TIME.size:
            raise DecodeError(f"time needs {_TIME.size} bytes, got {len(data)}")
        return cls(*(_opt(v) for v in _TIME.unpack(data)))

    def to_bytes(self) -> bytes:
        return _TIME.pack(
            _byte(self.hour), _byte(self.minute), _byte(self.second), _byte(self.hundredths)
        )

    @classmethod
    def from_time(cls, value: _py_time) -> Time:
        """From a Python time (microseconds truncated to hundredths; tzinfo ignored)."""
        return cls(value.hour, value.minute, value.second, value.microsecond // 10_000)

    def to_time(self) -> _py_time | None:
        """The Python time if hour and minute are specified and valid, else None.

        An unspecified second or hundredths counts as 0 (meters often leave the
        hundredths unspecified).
        """
        if self.hour is None or self.minute is None:
            return None
        try:
            return _py_time(
                self.hour, self.minute, self.second or 0, (self.hundredths or 0) * 10_000
            )
        except ValueError:
            return None

    def __str__(self) -> str:
        text = f"{_fmt(self.hour, 2)}:{_fmt(self.minute, 2)}:{_fmt(self.second, 2)}"
        if self.hundredths:
            text += f".{self.hundredths:02d}"
        return text


@dataclass(frozen=True)
class DateTime:
    """COSEM date-time (12 bytes).  ``None`` is "not specified" for every field.

    ``deviation`` is minutes from local time to UTC (UTC = local + deviation), so it
    has the opposite sign of an ISO offset: UTC+01:00 is deviation -60.
    """

    year: int | None = None
    month: int | None = None
    day: int | None = None
    day_of_week: int | None = None
    hour: int | None = None
    minute: int | None = None
    second: int | None = None
    hundredths: int | None = None
    deviation: int | None = None
    clock_status: ClockStatus | None = None

    def __post_init__(self) -> None:
        Date(self.year, self.month, self.day, self.day_of_week)  # validates
        Time(self.hour, self.minute, self.second, self.hundredths)
        if self.deviation is not None and not -0x7FFF <= self.deviation <= 0x7FFF:
            raise ValueError(
                f"deviation {self.deviation} outside -32767..32767 (use None for not specified)"
            )
        if self.clock_status is not None:
            _check_byte("clock_status", int(self.clock_status))
            if not isinstance(self.clock_status, ClockStatus):
                object.__setattr__(self, "clock_status", ClockStatus(self.clock_status))

    @classmethod
    def from_bytes(cls, data: bytes) -> DateTime:
        """Decode the 12-byte form; :class:`DecodeError` if it is not 12 bytes."""
        if len(data) != _DATE_TIME.size:
            raise DecodeError(f"date-time needs {_DATE_TIME.size} bytes, got {len(data)}")
        year, month, day, dow, hour, minute, second, hundredths, deviation, status = (
            _DATE_TIME.unpack(data)
        )
        return cls(
            year=None if year == _NS_YEAR else year,
            month=_opt(month),
            day=_opt(day),
            day_of_week=_opt(dow),
            hour=_opt(hour),
            minute=_opt(minute),
            second=_opt(second),
            hundredths=_opt(hundredths),
            deviation=None if deviation == _NS_DEVIATION else deviation,
            clock_status=None if status == _NS8 else ClockStatus(status),
        )

    def to_bytes(self) -> bytes:
        return _DATE_TIME.pack(
            _NS_YEAR if self.year is None else self.year,
            _byte(self.month),
            _byte(self.day),
            _byte(self.day_of_week),
            _byte(self.hour),
            _byte(self.minute),
            _byte(self.second),
            _byte(self.hundredths),
            _NS_DEVIATION if self.deviation is None else self.deviation,
            _NS8 if self.clock_status is None else int(self.clock_status),
        )

    @property
    def date(self) -> Date:
        return Date(self.year, self.month, self.day, self.day_of_week)

    @property
    def time(self) -> Time:
        return Time(self.hour, self.minute, self.second, self.hundredths)

    @classmethod
    def from_datetime(
        cls, value: _py_datetime, *, clock_status: ClockStatus | None = None
    ) -> DateTime:
        """From a Python datetime: aware -> deviation = -utcoffset; naive -> not specified.

        Microseconds are truncated to hundredths.  ``clock_status`` is passed through
        (None = not specified); the DST bit is not guessed from ``tzinfo``.
        """
        deviation: int | None = None
        offset = value.utcoffset()
        if offset is not None:
            minutes, rest = divmod(offset, timedelta(minutes=1))
            if rest:
                raise ValueError(f"UTC offset {offset} is not a whole number of minutes")
            deviation = -minutes
        return cls(
            value.year,
            value.month,
            value.day,
            value.isoweekday(),
            value.hour,
            value.minute,
            value.second,
            value.microsecond // 10_000,
            deviation,
            clock_status,
        )

    def to_datetime(self) -> _py_datetime | None:
        """The Python datetime if the date and time are specified and valid, else None.

        Year, month (1..12), day, hour and minute must be specified; an unspecified
        second or hundredths counts as 0, the day of week is not checked.  With a
        deviation the result is aware (tz = UTC - deviation); without, it is naive
        (the meter's local time).
        """
        day = Date(self.year, self.month, self.day).to_date()
        clock = self.time.to_time()
        if day is None or clock is None:
            return None
        tz: timezone | None = None
        if self.deviation is not None:
            if not -1440 < self.deviation < 1440:
                return None
            tz = timezone(timedelta(minutes=-self.deviation))
        return _py_datetime.combine(day, clock, tz)

    def isoformat(self) -> str:
        """ISO 8601 text: ``2024-06-01T12:00:00+02:00`` (deviation -120).

        The offset is given only when the deviation is specified (without it the time
        is the meter's local time, as ISO 8601 reads a time without offset). An
        unspecified field is ``*`` (``*-*-*T06:30:00`` is 06:30 every day), the DST
        month and day wildcards are words (``dst-begin``, ``last``), a weekday is added
        to a wildcard date (``*-*-*T02:00:00 Sun``); hundredths show when not zero.
        Clock status bits other than "daylight saving active" (which the offset already
        reflects) follow in parentheses: ``(invalid value, doubtful value)``.
        """
        if self == DateTime():
            return "not specified"
        text = f"{_fmt(self.year, 4)}-{_month_str(self.month)}-{_day_str(self.day)}"
        text += f"T{_fmt(self.hour, 2)}:{_fmt(self.minute, 2)}:{_fmt(self.second, 2)}"
        if self.hundredths:
            text += f".{self.hundredths:02d}"
        if self.deviation is not None and not -1440 < self.deviation < 1440:
            text += f" (deviation {self.deviation} min, out of range)"
        elif self.deviation is not None:
            offset = -self.deviation
            sign = "+" if offset >= 0 else "-"
            hours, minutes = divmod(abs(offset), 60)
            text += f"{sign}{hours:02d}:{minutes:02d}"
        if self.day_of_week is not None and None in (self.year, self.month, self.day):
            text += " " + _weekday_str(self.day_of_week)
        if self.clock_status:
            flags = [_STATUS_WORDS.get(bit, f"status bit 0x{bit:02X}")
                     for bit in (1 << n for n in range(7))
                     if int(self.clock_status) & bit]
            if flags:
                text += f" ({', '.join(flags)})"
        return text

    def __str__(self) -> str:
        text = f"{self.date} {self.time}"
        if self.deviation is not None:
            text += f" dev={self.deviation}"
        if self.clock_status:  # 0 (all fine) and None are not worth a log column
            text += f" status=0x{int(self.clock_status):02X}"
        return text


# --------------------------------------------------------------------------- Data
@dataclass(frozen=True)
class Data:
    """One A-XDR ``Data`` value: its tag and the Python value (see module docstring).

    Build values with the class methods (they check the range at once, raising
    :class:`LocalProtocolError`): ``null()``, ``dont_care()``, ``boolean(b)``,
    ``bit_string(bits)``, ``int8``/``int16``/``int32``/``int64`` (integer, long,
    double-long, long64), ``uint8``/``uint16``/``uint32``/``uint64`` (unsigned,
    long-unsigned, double-long-unsigned, long64-unsigned), ``enum(x)``, ``bcd(x)``,
    ``float32(x)``, ``float64(x)``, ``octets(b)``, ``visible(s)``, ``utf8(s)``,
    ``date_time(dt)``, ``date(d)``, ``time(t)``, ``structure(*items)``, ``array(*items)``.

    Read them with ``as_int()``, ``as_float()``, ``as_bytes()``, ``as_str()``,
    ``as_items()``, ``as_date_time()``: each raises :class:`DecodeError` naming the
    expected and the received type (a meter answering with the wrong type is a
    remote problem).
    """

    type: DataType
    value: object = None

    # ---- constructors
    @classmethod
    def _checked(cls, type_: DataType, value: object) -> Data:
        _check_value(type_, value)
        return cls(type_, value)

    @classmethod
    def null(cls) -> Data:
        return _NULL

    @classmethod
    def dont_care(cls) -> Data:
        return _DONT_CARE

    @classmethod
    def boolean(cls, value: bool) -> Data:
        return cls._checked(DataType.BOOLEAN, value)

    @classmethod
    def bit_string(cls, value: BitString | str) -> Data:
        bits = BitString.from_str(value) if isinstance(value, str) else value
        return cls._checked(DataType.BIT_STRING, bits)

    @classmethod
    def int8(cls, value: int) -> Data:
        return cls._checked(DataType.INTEGER, value)

    @classmethod
    def int16(cls, value: int) -> Data:
        return cls._checked(DataType.LONG, value)

    @classmethod
    def int32(cls, value: int) -> Data:
        return cls._checked(DataType.DOUBLE_LONG, value)

    @classmethod
    def int64(cls, value: int) -> Data:
        return cls._checked(DataType.LONG64, value)

    @classmethod
    def uint8(cls, value: int) -> Data:
        return cls._checked(DataType.UNSIGNED, value)

    @classmethod
    def uint16(cls, value: int) -> Data:
        return cls._checked(DataType.LONG_UNSIGNED, value)

    @classmethod
    def uint32(cls, value: int) -> Data:
        return cls._checked(DataType.DOUBLE_LONG_UNSIGNED, value)

    @classmethod
    def uint64(cls, value: int) -> Data:
        return cls._checked(DataType.LONG64_UNSIGNED, value)

    @classmethod
    def enum(cls, value: int) -> Data:
        return cls._checked(DataType.ENUM, value)

    @classmethod
    def bcd(cls, value: int) -> Data:
        return cls._checked(DataType.BCD, value)

    @classmethod
    def float32(cls, value: float) -> Data:
        return cls._checked(DataType.FLOAT32, _as_float(value))

    @classmethod
    def float64(cls, value: float) -> Data:
        return cls._checked(DataType.FLOAT64, _as_float(value))

    @classmethod
    def octets(cls, value: bytes | bytearray | memoryview) -> Data:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise LocalProtocolError(f"octet-string needs bytes, got {type(value).__name__}")
        return cls._checked(DataType.OCTET_STRING, bytes(value))

    @classmethod
    def visible(cls, value: str) -> Data:
        return cls._checked(DataType.VISIBLE_STRING, value)

    @classmethod
    def utf8(cls, value: str) -> Data:
        return cls._checked(DataType.UTF8_STRING, value)

    @classmethod
    def date_time(cls, value: DateTime) -> Data:
        return cls._checked(DataType.DATE_TIME, value)

    @classmethod
    def date(cls, value: Date) -> Data:
        return cls._checked(DataType.DATE, value)

    @classmethod
    def time(cls, value: Time) -> Data:
        return cls._checked(DataType.TIME, value)

    @classmethod
    def structure(cls, *items: Data) -> Data:
        return cls._checked(DataType.STRUCTURE, tuple(items))

    @classmethod
    def array(cls, *items: Data) -> Data:
        return cls._checked(DataType.ARRAY, tuple(items))

    # ---- accessors
    def _wrong(self, expected: str) -> DecodeError:
        return DecodeError(f"expected {expected}, got {describe(self)}", code=int(self.type))

    def as_int(self) -> int:
        """The value of any integer type, enum or bcd (booleans are not ints here)."""
        if isinstance(self.value, int) and not isinstance(self.value, bool):
            return self.value
        raise self._wrong("an integer")

    def as_float(self) -> float:
        """The value of float32/float64, or of an integer type as float."""
        if isinstance(self.value, bool):
            raise self._wrong("a number")
        if isinstance(self.value, float | int):
            return float(self.value)
        raise self._wrong("a number")

    def as_bytes(self) -> bytes:
        """The value of an octet-string."""
        if isinstance(self.value, bytes):
            return self.value
        raise self._wrong("an octet-string")

    def as_str(self) -> str:
        """The value of a visible-string or utf8-string."""
        if isinstance(self.value, str):
            return self.value
        raise self._wrong("a string")

    def as_items(self) -> tuple[Data, ...]:
        """The elements of an array or structure."""
        if self.type in (DataType.ARRAY, DataType.STRUCTURE) and isinstance(self.value, tuple):
            return self.value
        raise self._wrong("an array or structure")

    def as_date_time(self) -> DateTime:
        """A date-time, also from the 12-byte octet-string many clocks answer with."""
        if isinstance(self.value, DateTime):
            return self.value
        if isinstance(self.value, bytes) and len(self.value) == _DATE_TIME.size:
            return DateTime.from_bytes(self.value)
        raise self._wrong("a date-time")

    def __str__(self) -> str:
        return describe(self)


# Data is frozen, so every null-data (and dont-care) is the one object: an array of
# nulls costs a reference per element, not a Data each.
_NULL: Final = Data(DataType.NULL_DATA, None)
_DONT_CARE: Final = Data(DataType.DONT_CARE, None)


# --------------------------------------------------------------------------- encode
def _as_float(value: object) -> float:
    """An int or float as float; anything else (bool, str, ...) is a LocalProtocolError."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise LocalProtocolError(f"a float type needs a number, got {type(value).__name__}")


def _check_value(type_: DataType, value: object) -> None:
    """Raise LocalProtocolError unless ``value`` is a valid value of ``type_``."""
    name = _NAMES.get(type_) or f"tag {type_!r}"
    if type_ in _INTS:
        _, low, high = _INTS[type_]
        if not isinstance(value, int) or isinstance(value, bool):
            raise LocalProtocolError(f"{name} needs an int, got {type(value).__name__}")
        if not low <= value <= high:
            raise LocalProtocolError(f"{name} value {value} outside {low}..{high}")
    elif type_ in _FLOATS:
        if not isinstance(value, float):
            raise LocalProtocolError(f"{name} needs a float, got {type(value).__name__}")
        if type_ == DataType.FLOAT32 and math.isfinite(value):
            try:
                _FLOATS[type_].pack(value)
            except OverflowError:
                raise LocalProtocolError(f"{name} value {value} does not fit 32 bits") from None
    elif type_ in (DataType.NULL_DATA, DataType.DONT_CARE):
        if value is not None:
            raise LocalProtocolError(f"{name} carries no value, got {value!r}")
    elif type_ in (DataType.ARRAY, DataType.STRUCTURE):
        if not isinstance(value, tuple) or not all(isinstance(v, Data) for v in value):
            raise LocalProtocolError(f"{name} needs a tuple of Data")
    else:
        expected = _PLAIN_TYPES.get(type_)
        if expected is None:
            raise LocalProtocolError(f"encoding {name} is not supported")
        if not isinstance(value, expected):
            raise LocalProtocolError(
                f"{name} needs {expected.__name__}, got {type(value).__name__}"
            )
        if type_ == DataType.VISIBLE_STRING:
            assert isinstance(value, str)
            try:
                value.encode("latin-1")
            except UnicodeEncodeError:
                raise LocalProtocolError(
                    f"visible-string {value!r} has characters outside latin-1"
                ) from None


_PLAIN_TYPES: Final[dict[DataType, type]] = {
    DataType.BOOLEAN: bool,
    DataType.BIT_STRING: BitString,
    DataType.OCTET_STRING: bytes,
    DataType.VISIBLE_STRING: str,
    DataType.UTF8_STRING: str,
    DataType.DATE_TIME: DateTime,
    DataType.DATE: Date,
    DataType.TIME: Time,
}


def encode_data(d: Data) -> bytes:
    """Encode one ``Data`` (tag + contents).  Raises :class:`LocalProtocolError`."""
    out = bytearray()
    _encode_into(d, out, 0)
    return bytes(out)


def _encode_into(d: Data, out: bytearray, depth: int) -> None:
    if not isinstance(d, Data):
        raise LocalProtocolError(f"expected Data, got {type(d).__name__}")
    type_, value = d.type, d.value
    _check_value(type_, value)
    out.append(int(type_))
    if type_ in _INTS:
        out += _INTS[type_][0].pack(value)
    elif type_ in _FLOATS:
        out += _FLOATS[type_].pack(value)
    elif isinstance(value, tuple):
        if depth >= MAX_DEPTH:
            raise LocalProtocolError(f"Data nested deeper than {MAX_DEPTH} levels")
        out += encode_length(len(value))
        for item in value:
            _encode_into(item, out, depth + 1)
    elif isinstance(value, bool):
        out.append(1 if value else 0)
    elif isinstance(value, BitString):
        out += encode_length(value.length)
        out += value.data
    elif isinstance(value, bytes):
        out += encode_length(len(value))
        out += value
    elif isinstance(value, str):
        raw = value.encode("latin-1" if type_ == DataType.VISIBLE_STRING else "utf-8")
        out += encode_length(len(raw))
        out += raw
    elif isinstance(value, DateTime | Date | Time):
        out += value.to_bytes()
    # null-data / dont-care: the tag alone


# --------------------------------------------------------------------------- decode
# Compact array, IEC 62056-6-2 / Green Book:
#   TypeDescription ::= CHOICE {
#     null-data [0] IMPLICIT NULL,
#     array [1] IMPLICIT SEQUENCE { number-of-elements Unsigned16,
#                                   type-description TypeDescription },
#     structure [2] IMPLICIT SEQUENCE OF TypeDescription,
#     boolean [3] ... (every simple Data alternative, by the same tag) ...,
#     dont-care [255] IMPLICIT NULL }
# array-contents is an OCTET STRING holding the elements one after another, each
# encoded as its Data alternative WITHOUT the tag (the description gives it): fixed
# width values bare, variable ones (bit/octet/visible/utf8 string) with their length,
# an array's elements without a count (number-of-elements gives it).
@dataclass(frozen=True)
class _Desc:
    type: DataType
    count: int = 0  # array: number-of-elements
    items: tuple[_Desc, ...] = ()  # array: (element,), structure: the fields
    min_size: int = 0  # fewest content bytes one value of this description takes


_FIXED_SIZES: Final[dict[DataType, int]] = {
    DataType.BOOLEAN: 1,
    DataType.DATE_TIME: _DATE_TIME.size,
    DataType.DATE: _DATE.size,
    DataType.TIME: _TIME.size,
    **{t: s.size for t, (s, _, _) in _INTS.items()},
    **{t: s.size for t, s in _FLOATS.items()},
}
_VARIABLE: Final = frozenset(
    {DataType.BIT_STRING, DataType.OCTET_STRING, DataType.VISIBLE_STRING, DataType.UTF8_STRING}
)
#: The numbers (integers, enum, BCD, floats): one struct each, no further check; the
#: decoders' common case, read straight off the tag (see AxdrReader._number).
_NUMBERS: Final[dict[DataType, struct.Struct]] = {
    **{t: codec for t, (codec, _, _) in _INTS.items()}, **_FLOATS}
_NUMBERS_BY_TAG: Final[dict[int, tuple[DataType, struct.Struct]]] = {
    int(t): (t, codec) for t, codec in _NUMBERS.items()}


class AxdrReader:
    """The one bounded cursor over A-XDR input: APDU fields and ``Data`` values.

    Every read checks what remains and raises :class:`DecodeError` naming ``what``
    (the APDU, or ``A-XDR`` for a bare Data), the field and the offset; nothing else
    escapes.  Reads never go past ``end``, and every count or length read off the
    wire is checked against the bytes that remain before anything is built from it.
    ``data()`` also bounds the nesting (:data:`MAX_DEPTH`) and the number of values
    of all the Data it decodes: ``max_nodes``, by default :func:`node_budget` of the
    input's size.  An array or structure whose count alone exceeds what is left of
    that budget is refused before any element is decoded.
    """

    def __init__(
        self,
        buf: bytes,
        pos: int = 0,
        what: str = "APDU",
        end: int | None = None,
        max_nodes: int | None = None,
    ) -> None:
        limit = len(buf) if end is None else end
        if not 0 <= pos <= limit <= len(buf):
            raise DecodeError(f"{what}: offset {pos} outside buffer of {len(buf)} bytes")
        # Cut once here, so that the decoders given ``buf`` never read past ``end``
        # and never copy the buffer again.
        self.buf = buf if limit == len(buf) else buf[:limit]
        self.end = limit
        self.pos = pos
        self.what = what
        self.nodes = 0
        self.max_nodes = node_budget(limit - pos) if max_nodes is None else max_nodes

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def _truncated(self, n: int, field_name: str) -> DecodeError:
        return DecodeError(
            f"{self.what}: truncated at offset {self.pos} reading {field_name} "
            f"(need {n} bytes, have {self.remaining})"
        )

    def take(self, n: int, field_name: str) -> bytes:
        if n < 0 or n > self.remaining:
            raise self._truncated(n, field_name)
        data = self.buf[self.pos : self.pos + n]
        self.pos += n
        return bytes(data)

    def _unpack(self, codec: struct.Struct, field_name: str) -> int | float:
        if codec.size > self.remaining:
            raise self._truncated(codec.size, field_name)
        value: int | float = codec.unpack_from(self.buf, self.pos)[0]
        self.pos += codec.size
        return value

    def u8(self, field_name: str) -> int:
        pos = self.pos
        if pos >= self.end:
            raise self._truncated(1, field_name)
        self.pos = pos + 1
        return self.buf[pos]

    def i8(self, field_name: str) -> int:
        return int(self._unpack(_I8, field_name))

    def u16(self, field_name: str) -> int:
        return int(self._unpack(_U16, field_name))

    def u32(self, field_name: str) -> int:
        return int(self._unpack(_U32, field_name))

    def boolean(self, field_name: str) -> bool:
        return self.u8(field_name) != 0

    def present(self, field_name: str) -> bool:
        """An A-XDR OPTIONAL/DEFAULT presence flag: 0x00 absent, 0x01 present."""
        flag = self.u8(f"{field_name} presence flag")
        if flag > 1:
            raise DecodeError(
                f"{self.what}: presence flag 0x{flag:02X} of {field_name} at offset "
                f"{self.pos - 1} (expected 00 or 01)"
            )
        return flag == 1

    def _raw_length(self, field_name: str) -> int:
        """An A-XDR length as sent (a bit count, say): the caller bounds it."""
        if self.pos >= self.end:
            raise DecodeError(f"{self.what}: truncated at offset {self.pos} reading {field_name}")
        value, self.pos = _length_at(self.buf, self.pos, self.end)
        return value

    def length(self, field_name: str) -> int:
        """An A-XDR length, bounded by the bytes that remain."""
        value = self._raw_length(field_name)
        if value > self.remaining:
            raise DecodeError(
                f"{self.what}: {field_name} of {value} at offset {self.pos} exceeds the "
                f"{self.remaining} bytes that remain"
            )
        return value

    def fits(self, count: int, min_item_size: int, field_name: str) -> None:
        """Fail fast when ``count`` items of at least ``min_item_size`` bytes cannot fit."""
        if count * min_item_size > self.remaining:
            raise DecodeError(
                f"{self.what}: {field_name} of {count} items cannot fit the "
                f"{self.remaining} bytes left"
            )

    def sequence_count(self, field_name: str, min_item_size: int) -> int:
        """A SEQUENCE OF count, bounded by what the remaining bytes could hold."""
        count = self.length(f"{field_name} count")
        self.fits(count, min_item_size, field_name)
        return count

    def octet_string(self, field_name: str) -> bytes:
        return self.take(self.length(f"{field_name} length"), field_name)

    def expect_end(self) -> None:
        if self.pos != self.end:
            raise DecodeError(
                f"{self.what}: {self.end - self.pos} trailing bytes at offset {self.pos}"
            )

    def tag(self, expected: int) -> None:
        """The APDU's tag octet, which must be ``expected``."""
        got = self.u8("tag")
        if got != expected:
            raise DecodeError(f"{self.what}: tag 0x{got:02X}, expected 0x{expected:02X}")

    # ---- Data
    def data(self, field_name: str) -> Data:
        """One tagged ``Data`` value (all of them together within ``max_nodes``)."""
        if self.pos >= self.end:
            raise DecodeError(f"{self.what}: truncated at offset {self.pos} reading {field_name}")
        try:
            return self._data(0)
        except RecursionError:  # defensive: MAX_DEPTH keeps us far below the limit
            raise DecodeError(f"{self.what}: nesting too deep") from None

    def _fail(self, message: str) -> DecodeError:
        return DecodeError(f"{self.what}: {message} (offset {self.pos})")

    def _over_budget(self, count: int) -> DecodeError:
        return self._fail(
            f"{count} values exceed the limit of {self.max_nodes} values for "
            f"{self.end} bytes of input")

    def _node(self) -> None:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise self._over_budget(self.nodes)

    def _reserve(self, count: int, field_name: str) -> None:
        """Refuse ``count`` elements to come at once when they cannot fit the budget."""
        if self.nodes + count > self.max_nodes:
            raise self._fail(
                f"{field_name} of {count} values exceeds the limit of {self.max_nodes} "
                f"values for {self.end} bytes of input ({self.nodes} decoded)")

    def _data(self, depth: int) -> Data:
        pos = self.pos
        if pos >= self.end:
            raise self._fail("missing Data tag")
        tag = self.buf[pos]
        number = _NUMBERS_BY_TAG.get(tag)
        self.pos = pos + 1
        if number is not None:
            return self._number(*number)
        type_ = _BY_TAG.get(tag)
        if type_ is None:
            self.pos = pos
            raise self._fail(f"unknown Data tag {tag}")
        if type_ is DataType.ARRAY or type_ is DataType.STRUCTURE:
            if depth >= MAX_DEPTH:
                raise self._fail(f"Data nested deeper than {MAX_DEPTH} levels")
            n = self.sequence_count(_NAMES[type_], 1)  # every element has at least its tag
            self._node()
            self._reserve(n, _NAMES[type_])
            return Data(type_, tuple([self._data(depth + 1) for _ in range(n)]))
        if type_ is DataType.COMPACT_ARRAY:
            return self._compact_array(depth)
        return self._contents(type_)

    def _number(self, type_: DataType, codec: struct.Struct) -> Data:
        """The untagged contents of a number (:data:`_NUMBERS`), within the budget."""
        self.nodes += 1  # as _node(), on the decoders' most frequent path
        if self.nodes > self.max_nodes:
            raise self._over_budget(self.nodes)
        pos = self.pos
        if pos + codec.size > self.end:
            raise self._truncated(codec.size, _NAMES[type_])
        self.pos = pos + codec.size
        return Data(type_, codec.unpack_from(self.buf, pos)[0])

    # untagged contents of a simple type (shared by Data and compact-array)
    def _contents(self, type_: DataType) -> Data:
        number = _NUMBERS.get(type_)
        if number is not None:
            return self._number(type_, number)
        self._node()
        name = _NAMES[type_]
        value: object
        if type_ is DataType.NULL_DATA:
            return _NULL
        elif type_ is DataType.DONT_CARE:
            return _DONT_CARE
        elif type_ == DataType.BOOLEAN:
            value = self.boolean(name)
        elif type_ == DataType.BIT_STRING:
            bits = self._raw_length(name)  # bounded by the take of its bytes
            value = BitString(bits, self.take((bits + 7) // 8, name))
        elif type_ == DataType.OCTET_STRING:
            value = self.octet_string(name)
        elif type_ == DataType.VISIBLE_STRING:
            value = self.octet_string(name).decode("latin-1")
        elif type_ == DataType.UTF8_STRING:
            raw = self.octet_string(name)
            try:
                value = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise self._fail(f"utf8-string is not valid UTF-8: {exc.reason}") from None
        elif type_ == DataType.DATE_TIME:
            value = DateTime.from_bytes(self.take(_DATE_TIME.size, name))
        elif type_ == DataType.DATE:
            value = Date.from_bytes(self.take(_DATE.size, name))
        elif type_ == DataType.TIME:
            value = Time.from_bytes(self.take(_TIME.size, name))
        else:  # pragma: no cover - every tag is dispatched above
            raise self._fail(f"{name} cannot appear here")
        return Data(type_, value)

    def _compact_array(self, depth: int) -> Data:
        if depth >= MAX_DEPTH:
            raise self._fail(f"Data nested deeper than {MAX_DEPTH} levels")
        desc = self._description(depth + 1)
        size = self.length("compact-array contents length")
        if size and desc.min_size == 0:
            raise self._fail("compact-array of zero-size elements with non-empty contents")
        outer_end, self.end = self.end, self.pos + size
        try:
            self._node()
            items: list[Data] = []
            while self.pos < self.end:
                items.append(self._compact_value(desc))
        finally:
            self.end = outer_end
        return Data(DataType.ARRAY, tuple(items))

    def _description(self, depth: int) -> _Desc:
        if depth > MAX_DEPTH:
            raise self._fail(f"compact-array type description deeper than {MAX_DEPTH} levels")
        if self.pos >= self.end:
            raise self._fail("missing TypeDescription tag")
        type_ = _BY_TAG.get(self.buf[self.pos])
        if type_ is None or type_ is DataType.COMPACT_ARRAY:
            raise self._fail(f"invalid TypeDescription tag {self.buf[self.pos]}")
        self.pos += 1
        if type_ == DataType.ARRAY:
            n = self.u16("array number-of-elements")
            element = self._description(depth + 1)
            if n and element.min_size == 0:
                raise self._fail("compact-array description: array of zero-size elements")
            return _Desc(type_, n, (element,), n * element.min_size)
        if type_ == DataType.STRUCTURE:
            n = self.sequence_count("structure description", 1)
            fields = tuple(self._description(depth + 1) for _ in range(n))
            return _Desc(type_, n, fields, sum(f.min_size for f in fields))
        if type_ in _VARIABLE:
            return _Desc(type_, min_size=1)
        return _Desc(type_, min_size=_FIXED_SIZES.get(type_, 0))

    def _compact_value(self, desc: _Desc) -> Data:
        if desc.type == DataType.ARRAY:
            element = desc.items[0]
            self.fits(desc.count, element.min_size, "compact-array element array")
            self._node()
            self._reserve(desc.count, "compact-array element array")
            return Data(
                DataType.ARRAY, tuple(self._compact_value(element) for _ in range(desc.count))
            )
        if desc.type == DataType.STRUCTURE:
            self._node()
            return Data(DataType.STRUCTURE, tuple(self._compact_value(f) for f in desc.items))
        return self._contents(desc.type)


def decode_data(buf: bytes, pos: int = 0) -> tuple[Data, int]:
    """Decode one ``Data`` starting at ``buf[pos]``; returns ``(data, new_pos)``.

    Raises :class:`DecodeError` (and nothing else) for truncated or invalid input.
    """
    reader = AxdrReader(buf, pos, "A-XDR")
    return reader.data("Data"), reader.pos


def decode_data_all(buf: bytes) -> Data:
    """Decode exactly one ``Data`` filling ``buf``; trailing bytes are a DecodeError."""
    return decode_whole(decode_data, buf, "A-XDR")


def decode_whole(decoder: Callable[[bytes, int], tuple[_T, int]], data: bytes, what: str) -> _T:
    """``decoder(data, 0)`` that must use all of ``data``: trailing bytes are a DecodeError."""
    value, pos = decoder(data, 0)
    if pos != len(data):
        raise DecodeError(f"{what}: {len(data) - pos} trailing bytes at offset {pos}")
    return value


def check_range(name: str, value: int, low: int, high: int) -> None:
    """The encoding side's check of an integer field: :class:`LocalProtocolError`
    unless ``value`` is an int (not a bool) in ``low..high``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise LocalProtocolError(f"{name} {value!r} outside {low}..{high}")


# --------------------------------------------------------------------------- rendering
def to_python(d: Data) -> object:
    """Plain Python for publishing: arrays/structures -> lists, bit-strings -> '0101',
    date/time values -> their ``str()``; ints, floats, str, bytes, bool, None as they are.
    """
    value = d.value
    if isinstance(value, tuple):
        return [to_python(item) for item in value]
    if isinstance(value, BitString | DateTime | Date | Time):
        return str(value)
    return value


def describe(d: Data, *, limit: int | None = 16) -> str:
    """One line for logs, e.g. ``structure{long-unsigned 5, octet-string 0102}``.

    Arrays and structures show at most ``limit`` elements (None: all), then ``+N more``.
    """
    name = _NAMES.get(d.type) or f"tag {d.type!r}"
    value = d.value
    if isinstance(value, tuple):
        shown = value if limit is None else value[:limit]
        parts = [describe(item, limit=limit) for item in shown]
        if len(shown) < len(value):
            parts.append(f"+{len(value) - len(shown)} more")
        return f"{name}{{{', '.join(parts)}}}"
    if value is None:
        return name
    if isinstance(value, bytes):
        return f"{name} {value.hex()}"
    if isinstance(value, str):
        return f"{name} {value!r}"
    if isinstance(value, bool):
        return f"{name} {'true' if value else 'false'}"
    return f"{name} {value}"
