"""Rendering of published values, date-times as ISO 8601 (issue 12)."""

from __future__ import annotations

from datetime import datetime

import pytest

from dlmsd.protocol.axdr import ClockStatus, Data, DateTime
from dlmsd.protocol.values import DATE_TIME_ATTRIBUTES, is_date_time_attribute, render

# 2024-06-01 12:00:00, deviation -120 (local = UTC+2), DST active
CLOCK = DateTime(2024, 6, 1, 6, 12, 0, 0, 0, -120, ClockStatus.DAYLIGHT_SAVING_ACTIVE)


def test_isoformat_with_offset_from_deviation() -> None:
    assert CLOCK.isoformat() == "2024-06-01T12:00:00+02:00"
    # the text is what Python reads back as the same instant
    parsed = datetime.fromisoformat(CLOCK.isoformat())
    assert parsed == CLOCK.to_datetime()
    assert DateTime(2024, 1, 2, None, 3, 4, 5, 0, 60, None).isoformat() == (
        "2024-01-02T03:04:05-01:00")
    assert DateTime(2024, 1, 2, None, 3, 4, 5, 0, 0, None).isoformat() == (
        "2024-01-02T03:04:05+00:00")
    assert DateTime(2024, 1, 2, None, 3, 4, 5, 50, -330, None).isoformat() == (
        "2024-01-02T03:04:05.50+05:30")


def test_isoformat_says_what_is_unspecified() -> None:
    # deviation unspecified: no offset, the meter's local time (as ISO 8601 reads it)
    assert DateTime(2024, 6, 1, None, 12, 0, 0, None, None, None).isoformat() == (
        "2024-06-01T12:00:00")
    every_day = DateTime(None, None, None, None, 6, 30, None, None, None, None)
    assert every_day.isoformat() == "*-*-*T06:30:*"
    assert DateTime(None, 0xFE, 0xFE, 7, 2, 0, 0, None, None, None).isoformat() == (
        "*-dst-begin-lastT02:00:00 Sun")
    assert DateTime().isoformat() == "not specified"
    assert DateTime(2024, 6, 1, None, 12, 0, 0, 0, 2000, None).isoformat() == (
        "2024-06-01T12:00:00 (deviation 2000 min, out of range)")


def test_isoformat_names_clock_status_problems() -> None:
    bad = DateTime(2024, 6, 1, None, 12, 0, 0, 0, -60,
                   ClockStatus.INVALID_VALUE | ClockStatus.DOUBTFUL_VALUE
                   | ClockStatus.DAYLIGHT_SAVING_ACTIVE)
    assert bad.isoformat() == "2024-06-01T12:00:00+01:00 (invalid value, doubtful value)"
    odd = DateTime(2024, 6, 1, None, 12, 0, 0, 0, None, ClockStatus(0x14))
    assert odd.isoformat() == "2024-06-01T12:00:00 (different clock base, status bit 0x10)"


@pytest.mark.parametrize(("class_id", "attribute"), [
    (8, 2), (8, 5), (8, 6), (4, 5), (5, 6), (5, 7),
])
def test_octet_string_date_times_render_as_iso(class_id: int, attribute: int) -> None:
    assert is_date_time_attribute(class_id, attribute)
    value = Data.octets(CLOCK.to_bytes())
    assert render(value, class_id, attribute) == "2024-06-01T12:00:00+02:00"


def test_typed_date_time_renders_as_iso_anywhere() -> None:
    assert render(Data.date_time(CLOCK), 1, 2) == "2024-06-01T12:00:00+02:00"
    assert render(Data.date_time(CLOCK), None, 2) == "2024-06-01T12:00:00+02:00"


def test_other_octet_strings_stay_hex_or_text() -> None:
    raw = CLOCK.to_bytes()
    assert not is_date_time_attribute(1, 2)
    assert not is_date_time_attribute(None, 2)
    assert not is_date_time_attribute(4, 2)
    assert render(Data.octets(raw), 1, 2) == raw.hex().upper()
    assert render(Data.octets(raw), 4, 4) == raw.hex().upper()
    assert render(Data.octets(b"ABC"), 1, 2) == "ABC"
    # 12 octets that are no date-time at a date-time attribute stay hex
    assert render(Data.octets(b"\x07\xe8" + b"\x00" * 10), 4, 5) == "07E8" + "00" * 10
    assert render(Data.octets(b"\x01\x02"), 8, 2) == "0102"
    assert set(DATE_TIME_ATTRIBUTES) == {4, 5, 8}


@pytest.mark.parametrize("field", [2, 3, 4, 5, 6, 7, 8])
def test_out_of_range_field_keeps_hex(field: int) -> None:
    raw = bytearray(CLOCK.to_bytes())
    raw[field] = 0xEE  # month, day, weekday, hour, minute, second or hundredths
    assert render(Data.octets(bytes(raw)), 8, 2) == bytes(raw).hex().upper()
