"""Profile buffer -> rows (dlmsd.protocol.profile).

The buffers are built from their A-XDR bytes, spelled out per Blue Book 4.3.6 (array of
structure, one element per capture object; date-times as octet-string(12), Blue Book
4.1.6.1), so each test checks the decoding of the bytes and the rows made of them.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsd.errors import DecodeError
from dlmsd.protocol.axdr import ClockStatus, Data, DateTime, decode_data_all, encode_data
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.profile import (
    EVENT_NAMES,
    clock_column,
    dumps_exact,
    rows_from_buffer,
)
from dlmsd.protocol.selective import CaptureObject

CLOCK = CaptureObject(8, Obis(0, 0, 1, 0, 0, 255), 2)
ENERGY = CaptureObject(3, Obis(1, 0, 1, 8, 0, 255), 2)
STATUS = CaptureObject(1, Obis(0, 0, 96, 10, 1, 255), 2)
EVENT = CaptureObject(1, Obis(0, 0, 96, 11, 0, 255), 2)

# 2024-05-06 00:15:00, weekday 1 (Monday), deviation -60 (UTC+01:00), status 0x80 (DST)
T1 = "07e8050601000f0000ffc480"
T2 = "07e8050601001e0000ffc480"  # 00:30


def _buffer(hex_text: str) -> Data:
    data = decode_data_all(bytes.fromhex(hex_text))
    assert encode_data(data).hex() == hex_text  # the bytes both ways
    return data


def test_rows_scaled_exactly_with_status_column_and_clock_not_first() -> None:
    # columns: energy, clock, status (the clock is not the first capture object)
    buffer = _buffer(
        "0102"
        "0203" "0600012f8a" f"090c{T1}" "1108"
        "0203" "0600012f8b" f"090c{T2}" "1100")
    columns = [ENERGY, CLOCK, STATUS]
    assert clock_column(columns) == 1
    rows = rows_from_buffer(buffer, columns, {ENERGY.key: (-2, 30)}).rows
    assert [r.to_json() for r in rows] == [
        {"ts": "2024-05-06T00:15:00+01:00",
         "values": {"1.0.1.8.0.255:2": Decimal("777.06"), "0.0.96.10.1.255:2": 8},
         "units": {"1.0.1.8.0.255:2": "Wh"}, "status": 8},
        {"ts": "2024-05-06T00:30:00+01:00",
         "values": {"1.0.1.8.0.255:2": Decimal("777.07"), "0.0.96.10.1.255:2": 0},
         "units": {"1.0.1.8.0.255:2": "Wh"}, "status": 0},
    ]
    assert dumps_exact(rows[0].to_json()["values"]) == (
        '{"1.0.1.8.0.255:2": 777.06, "0.0.96.10.1.255:2": 8}')


def test_clock_status_when_no_status_column_and_keep() -> None:
    buffer = _buffer("0101" "0202" f"090c{T1}" "0600000001")
    rows = rows_from_buffer(buffer, [CLOCK, ENERGY], {ENERGY.key: (0, 30)},
                            keep=frozenset()).rows
    assert rows[0].status == int(ClockStatus.DAYLIGHT_SAVING_ACTIVE)
    assert rows[0].values == {}


def test_null_clock_is_previous_plus_capture_period() -> None:
    buffer = _buffer(
        "0103"
        "0202" f"090c{T1}" "0600000001"
        "0202" "00" "0600000002"
        "0202" "00" "00")
    rows = rows_from_buffer(buffer, [CLOCK, ENERGY], {ENERGY.key: (0, 30)},
                            capture_period=900).rows
    assert [r.ts for r in rows] == ["2024-05-06T00:15:00+01:00", "2024-05-06T00:30:00+01:00",
                                    "2024-05-06T00:45:00+01:00"]
    assert [r.filled for r in rows] == [False, True, True]
    # another null column is not filled from the previous entry: null
    assert rows[2].values == {ENERGY.key: None}


def test_null_clock_of_the_first_entry_uses_previous_read() -> None:
    previous = DateTime.from_bytes(bytes.fromhex(T1))
    buffer = _buffer("0101" "0202" "00" "0600000002")
    rows = rows_from_buffer(buffer, [CLOCK, ENERGY], {ENERGY.key: (0, 30)},
                            capture_period=900, previous=previous)
    assert [r.ts for r in rows.rows] == ["2024-05-06T00:30:00+01:00"]
    # without a previous time or a capture period the row cannot be placed
    assert rows_from_buffer(buffer, [CLOCK, ENERGY], {}, capture_period=900).unplaced == 1
    assert rows_from_buffer(buffer, [CLOCK, ENERGY], {}, previous=previous).unplaced == 1


def test_no_deviation_gives_local_time_without_offset() -> None:
    buffer = _buffer("0101" "0202" "090c07e80506ff000f0000800000" "0600000001")
    (row,) = rows_from_buffer(buffer, [CLOCK, ENERGY], {ENERGY.key: (0, 30)}).rows
    assert row.ts == "2024-05-06T00:15:00"
    assert row.status == 0


def test_event_log_names() -> None:
    # standard event log: clock, event code (Data 0.0.96.11.0.255, unsigned)
    buffer = _buffer(
        "0102"
        "0202" f"090c{T1}" "1101"
        "0202" f"090c{T2}" "11c8")
    rows = rows_from_buffer(buffer, [CLOCK, EVENT], {}).rows
    assert rows[0].values == {EVENT.key: 1}
    assert rows[0].events == {EVENT.key: "power down"}
    assert rows[1].events == {}  # 200 is not in the table
    assert EVENT_NAMES[255] == "event log cleared"


def test_scaler_missing_is_a_column_error_not_a_wrong_value() -> None:
    buffer = _buffer("0101" "0202" f"090c{T1}" "0600000001")
    (row,) = rows_from_buffer(buffer, [CLOCK, ENERGY], {ENERGY.key: "read-write-denied"}).rows
    assert row.values == {ENERGY.key: None}
    assert row.errors == {ENERGY.key: "read-write-denied"}


def test_compact_array_buffer() -> None:
    # compact-array (tag 19): contents-description structure{octet-string, double-long-
    # unsigned}, then the contents without tags (Green Book, compact-array encoding)
    raw = bytes.fromhex("1302020906" + f"{2 * (13 + 4):02x}"
                        + "0c" + T1 + "00000001" + "0c" + T2 + "00000002")
    buffer = decode_data_all(raw)
    rows = rows_from_buffer(buffer, [CLOCK, ENERGY], {ENERGY.key: (1, 30)}).rows
    assert [(r.ts, r.values[ENERGY.key]) for r in rows] == [
        ("2024-05-06T00:15:00+01:00", Decimal(10)), ("2024-05-06T00:30:00+01:00", Decimal(20))]


@pytest.mark.parametrize(("buffer", "columns", "message"), [
    (Data.uint8(1), [CLOCK], "profile buffer must be an array"),
    (Data.array(Data.uint8(1)), [CLOCK], "profile entry 1 must be a structure"),
    (Data.array(Data.structure(Data.null())), [CLOCK, ENERGY],
     "profile entry 1 has 1 values for 2 capture objects"),
    (Data.array(Data.structure(Data.uint8(1))), [CLOCK],
     "profile entry 1 column 1: the clock column must be a date-time"),
    (Data.array(), [ENERGY], "no clock column"),
])
def test_errors(buffer: Data, columns: list[CaptureObject], message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        rows_from_buffer(buffer, columns, {})


def test_dumps_exact_is_json() -> None:
    text = dumps_exact({"a": Decimal("1E+3"), "b": [Decimal("-0"), 1.5, None, "x"],
                        "c": float("nan")})
    assert text == '{"a": 1000, "b": [0, 1.5, null, "x"], "c": null}'
    assert json.loads(text) == {"a": 1000, "b": [0, 1.5, None, "x"], "c": None}


@settings(max_examples=300)
@given(st.lists(st.tuples(st.one_of(st.binary(min_size=12, max_size=12), st.none()),
                          st.integers(0, 0xFFFFFFFF)), max_size=6),
       st.integers(0, 1 << 31))
def test_fuzz_rows_or_decode_error(entries: list[tuple[bytes | None, int]],
                                   period: int) -> None:
    buffer = Data.array(*(Data.structure(Data.null() if t is None else Data.octets(t),
                                         Data.uint32(v)) for t, v in entries))
    try:
        rows = rows_from_buffer(buffer, [CLOCK, ENERGY], {ENERGY.key: (0, 30)},
                                capture_period=period)
    except DecodeError:
        return
    assert len(rows.rows) + rows.unplaced == len(entries)
    for row in rows.rows:
        assert row.ts  # every row kept has a time
