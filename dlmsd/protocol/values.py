"""From COSEM attribute values to published signal values (pure).

Registers (class 3), extended registers (4) and demand registers (5) carry a
``scaler_unit`` (Blue Book 4.3.2: structure { scaler integer, unit enum }); their value
is published as value x 10^scaler, computed exactly in decimal (raw 123456 with scaler
-2 is 1234.56, never 1234.5600000000001). Everything else is published as it is:
numbers as numbers, strings as text, octet strings as text when printable and as hex
otherwise, date-times (typed, or the octet-strings of 12 the Blue Book defines as one:
see :data:`DATE_TIME_ATTRIBUTES`) as ISO 8601 text with the offset the deviation gives
(:meth:`DateTime.isoformat`); the raw value is kept beside (the reader's ``raw``).
"""

from __future__ import annotations

from decimal import Decimal

from dlmsd.errors import DecodeError
from dlmsd.protocol.axdr import BitString, Data, DataType, Date, DateTime, Time, describe

__all__ = [
    "DATE_TIME_ATTRIBUTES",
    "NUMERIC_TYPES",
    "Value",
    "is_date_time_attribute",
    "parse_scaler_unit",
    "render",
    "scale",
    "scaler_unit_attribute",
]

# What a signal's value can be once published: numbers stay numbers (Decimal for
# scaled registers, so 1234.56 is exact), everything else is readable text.
Value = int | float | Decimal | str | bool | None

NUMERIC_TYPES = frozenset({
    DataType.INTEGER, DataType.LONG, DataType.DOUBLE_LONG, DataType.LONG64,
    DataType.UNSIGNED, DataType.LONG_UNSIGNED, DataType.DOUBLE_LONG_UNSIGNED,
    DataType.LONG64_UNSIGNED, DataType.FLOAT32, DataType.FLOAT64, DataType.BCD,
    DataType.ENUM,
})

# class_id -> {value attribute: scaler_unit attribute} (Blue Book 4.3.2, 4.3.3, 4.3.4)
_SCALED: dict[int, dict[int, int]] = {
    3: {2: 3},
    4: {2: 3},
    5: {2: 4, 3: 4},
}
CLOCK_CLASS = 8

# class_id -> the attributes the Blue Book defines as a date-time in an octet-string(12):
# clock time, daylight_savings_begin/end (4.5.1), extended register capture_time
# (4.3.3), demand register capture_time and start_time_current (4.3.4).
DATE_TIME_ATTRIBUTES: dict[int, frozenset[int]] = {
    CLOCK_CLASS: frozenset({2, 5, 6}),
    4: frozenset({5}),
    5: frozenset({6, 7}),
}


def is_date_time_attribute(class_id: int | None, attribute: int) -> bool:
    """Whether ``attribute`` of ``class_id`` is a date-time (an octet-string of 12)."""
    return class_id is not None and attribute in DATE_TIME_ATTRIBUTES.get(class_id, ())


def scaler_unit_attribute(class_id: int | None, attribute: int) -> int | None:
    """The scaler_unit attribute that scales ``attribute`` of ``class_id``, if any."""
    if class_id is None:
        return None
    return _SCALED.get(class_id, {}).get(attribute)


def parse_scaler_unit(data: Data) -> tuple[int, int]:
    """``structure { scaler integer, unit enum }`` -> (scaler, unit code)."""
    items = data.value
    if (data.type is not DataType.STRUCTURE or not isinstance(items, tuple) or len(items) != 2
            or not isinstance(items[0].value, int) or not isinstance(items[1].value, int)
            or isinstance(items[0].value, bool)):
        raise DecodeError(f"scaler_unit must be structure{{integer, enum}}, got {describe(data)}")
    return items[0].value, items[1].value


def scale(data: Data, scaler: int) -> Decimal:
    """value x 10^scaler, exact. Raises DecodeError for a value that is not a number."""
    value = data.value
    if data.type not in NUMERIC_TYPES or isinstance(value, bool):
        raise DecodeError(f"a register value must be a number, got {describe(data)}")
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise DecodeError(f"register value is {value}")
        exact = Decimal(repr(value))
    elif isinstance(value, int):
        exact = Decimal(value)
    else:
        raise DecodeError(f"a register value must be a number, got {describe(data)}")
    result = exact.scaleb(scaler)
    if scaler > 0 and isinstance(value, int):
        return Decimal(value * 10**scaler)  # keep integers integral (no exponent form)
    return result


# field -> its allowed specified values (Blue Book 4.1.6.1; 0xFD/0xFE of month and day
# are the DST and last-day wildcards)
_FIELD_RANGES = {
    "month": (*range(1, 13), 0xFD, 0xFE),
    "day": (*range(1, 32), 0xFD, 0xFE),
    "day_of_week": range(1, 8),
    "hour": range(24),
    "minute": range(60),
    "second": range(60),
    "hundredths": range(100),
}


def _plausible(stamp: DateTime) -> bool:
    """Whether every specified field of an octet-string date-time is in its range: 12
    octets that are no date-time (month 0, hour 99) stay hex rather than a false date."""
    return all(getattr(stamp, name) is None or getattr(stamp, name) in allowed
               for name, allowed in _FIELD_RANGES.items())


def _octets(raw: bytes) -> str:
    if raw and all(0x20 <= b < 0x7F for b in raw):
        return raw.decode("ascii")
    return raw.hex().upper()


def render(data: Data, class_id: int | None = None, attribute: int = 2
           ) -> int | float | str | bool | None:
    """A readable value for a non-scaled attribute."""
    value = data.value
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        if is_date_time_attribute(class_id, attribute) and len(value) == 12:
            try:
                stamp = DateTime.from_bytes(value)
            except (DecodeError, ValueError):
                return value.hex().upper()
            return stamp.isoformat() if _plausible(stamp) else value.hex().upper()
        return _octets(value)
    if isinstance(value, DateTime):
        return value.isoformat()
    if isinstance(value, Date | Time | BitString):
        return str(value)
    return describe(data, limit=32)
