"""A-XDR codec: sourced vectors both ways, bounds, round trips, fuzz, gurux interop.

Vector sources (named on each vector):
- [aidon-se]  Tekniska Verken "Aidon FD RJ12 HAN interface" v1.5 capture, as reproduced in
              toreamun/amshan tests/test_aidon.py (se_list).
- [aidon-no]  Aidon Norwegian HAN lists 1..3, same file (no_list_1/2/3).
- [gurux-fc]  Gurux forum, www.gurux.fi/index.php/node/25704 (scaler_unit GET response).
- [gurux-set] Gurux forum, www.gurux.fi/comment/10430 (SET request body).
- [cosemlib]  meterkit/cosemlib lib/database/db_cosem_clock.c (12-byte clock value).
- [derived]   worked out by hand from the Green Book ASN.1 / Blue Book 4.1.6.1 text
              (and, where noted, confirmed by gurux_dlms in the interop tests).
"""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlmsd.errors import DecodeError, LocalProtocolError
from dlmsd.protocol import axdr
from dlmsd.protocol.axdr import (
    MAX_DEPTH,
    BitString,
    ClockStatus,
    Data,
    DataType,
    Date,
    DateTime,
    Time,
    decode_data,
    decode_data_all,
    decode_length,
    describe,
    encode_data,
    encode_length,
    to_python,
)

T = DataType


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def sv(obis: str, value: Data, scaler: int, unit: int) -> Data:
    """One Aidon list element: structure{logical name, value, scaler_unit}."""
    return Data.structure(
        Data.octets(h(obis)), value, Data.structure(Data.int8(scaler), Data.enum(unit))
    )


# (id, Data, hex): every vector is checked encode == hex, decode == Data, with trailing
# bytes, and every proper prefix must raise DecodeError.
VECTORS: list[tuple[str, Data, str]] = [
    # [gurux-fc] scaler_unit of a voltage register: {-2, V (35)}
    ("scaler_unit", Data.structure(Data.int8(-2), Data.enum(35)), "02 02 0F FE 16 23"),
    # [gurux-set] array{structure{time 16:10:39, date 2017-04-06}} sent as octet-strings
    (
        "time_date_pair",
        Data.array(Data.structure(Data.octets(h("100A27FF")), Data.octets(h("07E10406FF")))),
        "01 01 02 02 09 04 10 0A 27 FF 09 05 07 E1 04 06 FF",
    ),
    # [aidon-no] list 1 body: active power import 280 W
    (
        "aidon_no_list1",
        Data.array(sv("0100010700ff", Data.uint32(280), 0, 27)),
        "0101 0203 0906 0100010700ff 06 00000118 0202 0f00 161b",
    ),
    # [aidon-no] list 2: the list-version visible-string element
    (
        "aidon_no_version",
        Data.structure(Data.octets(h("0101000281ff")), Data.visible("AIDON_V0001")),
        "0202 0906 0101000281ff 0a0b 4149444f4e5f5630303031",
    ),
    # [aidon-se] current L1 0.0 A as long with scaler -1, unit A (33)
    (
        "aidon_se_current",
        sv("01001f0700ff", Data.int16(0), -1, 33),
        "0203 0906 01001f0700ff 10 0000 0202 0fff 1621",
    ),
    # [aidon-se] voltage L1 230.7 V as long-unsigned 0x0903 with scaler -1, unit V (35)
    (
        "aidon_se_voltage",
        sv("0100200700ff", Data.uint16(0x0903), -1, 35),
        "0203 0906 0100200700ff 12 0903 0202 0fff 1623",
    ),
    # [derived] each simple type once
    ("null", Data.null(), "00"),
    ("dont_care", Data.dont_care(), "FF"),
    ("true", Data.boolean(True), "03 01"),
    ("false", Data.boolean(False), "03 00"),
    ("int8_min", Data.int8(-128), "0F 80"),
    ("int16_min", Data.int16(-32768), "10 8000"),
    ("int32_min", Data.int32(-(2**31)), "05 80000000"),
    ("int64_min", Data.int64(-(2**63)), "14 8000000000000000"),
    ("uint8_max", Data.uint8(255), "11 FF"),
    ("uint16_max", Data.uint16(65535), "12 FFFF"),
    ("uint32_max", Data.uint32(2**32 - 1), "06 FFFFFFFF"),
    ("uint64_max", Data.uint64(2**64 - 1), "15 FFFFFFFFFFFFFFFF"),
    ("uint64_2p53_plus_1", Data.uint64(2**53 + 1), "15 0020000000000001"),
    ("enum", Data.enum(255), "16 FF"),
    ("bcd", Data.bcd(0x99), "0D 99"),
    ("float32", Data.float32(1.5), "17 3FC00000"),
    ("float64_pi", Data.float64(math.pi), "18 400921FB54442D18"),
    ("octets_empty", Data.octets(b""), "09 00"),
    ("visible", Data.visible("abc"), "0A 03 616263"),
    ("utf8_euro", Data.utf8("€"), "0C 03 E282AC"),
    ("bits_0", Data.bit_string(""), "04 00"),
    ("bits_12", Data.bit_string("101010111100"), "04 0C ABC0"),
    ("empty_array", Data.array(), "01 00"),
    ("empty_structure", Data.structure(), "02 00"),
    # [derived, gurux agrees] 2024-03-01 Fri 12:30:00.00 CET: deviation -60, DST bit clear
    (
        "date_time_cet",
        Data.date_time(DateTime(2024, 3, 1, 5, 12, 30, 0, 0, -60, ClockStatus(0))),
        "19 07E8 03 01 05 0C 1E 00 00 FFC4 00",
    ),
    # [aidon-se] the clock element, date-time carried as octet-string, deviation 0x8000
    (
        "aidon_se_clock",
        Data.structure(Data.octets(h("0000010000ff")), Data.octets(h("07e30c1001073b28ff8000ff"))),
        "0202 0906 0000010000ff 090c 07e30c1001073b28ff8000ff",
    ),
    ("date", Data.date(Date(2017, 4, 6, None)), "1A 07E1 04 06 FF"),
    ("time", Data.time(Time(16, 10, 39, None)), "1B 10 0A 27 FF"),
]


@pytest.mark.parametrize(("name", "data", "hexstr"), VECTORS, ids=[v[0] for v in VECTORS])
def test_vector_encode(name: str, data: Data, hexstr: str) -> None:
    assert encode_data(data) == h(hexstr)


@pytest.mark.parametrize(("name", "data", "hexstr"), VECTORS, ids=[v[0] for v in VECTORS])
def test_vector_decode_whole_and_with_trailing(name: str, data: Data, hexstr: str) -> None:
    raw = h(hexstr)
    assert decode_data_all(raw) == data
    assert decode_data(raw + b"\x00\xff\x01") == (data, len(raw))
    # and from an offset inside a larger buffer
    assert decode_data(b"\xaa\xbb" + raw + b"\xcc", 2) == (data, 2 + len(raw))


@pytest.mark.parametrize(("name", "data", "hexstr"), VECTORS, ids=[v[0] for v in VECTORS])
def test_vector_truncated_at_every_cut(name: str, data: Data, hexstr: str) -> None:
    raw = h(hexstr)
    for cut in range(len(raw)):
        with pytest.raises(DecodeError):
            decode_data(raw[:cut])


def test_aidon_se_whole_notification_body() -> None:
    # [aidon-se] the complete notification-body of the Swedish list: 27 elements.
    body = h(
        "011b"
        "0202 0906 0000010000ff 090c 07e30c1001073b28ff8000ff"
        "0203 0906 0100010700ff 06 00000462 0202 0f00 161b"
        "0203 0906 0100020700ff 06 00000000 0202 0f00 161b"
        "0203 0906 0100030700ff 06 000005e3 0202 0f00 161d"
        "0203 0906 0100040700ff 06 00000000 0202 0f00 161d"
        "0203 0906 01001f0700ff 10 0000 0202 0fff 1621"
        "0203 0906 0100330700ff 10 004b 0202 0fff 1621"
        "0203 0906 0100470700ff 10 0000 0202 0fff 1621"
        "0203 0906 0100200700ff 12 0903 0202 0fff 1623"
        "0203 0906 0100340700ff 12 09c3 0202 0fff 1623"
        "0203 0906 0100480700ff 12 0904 0202 0fff 1623"
        "0203 0906 0100150700ff 06 00000000 0202 0f00 161b"
        "0203 0906 0100160700ff 06 00000000 0202 0f00 161b"
        "0203 0906 0100170700ff 06 00000000 0202 0f00 161d"
        "0203 0906 0100180700ff 06 00000000 0202 0f00 161d"
        "0203 0906 0100290700ff 06 00000462 0202 0f00 161b"
        "0203 0906 01002a0700ff 06 00000000 0202 0f00 161b"
        "0203 0906 01002b0700ff 06 000005e2 0202 0f00 161d"
        "0203 0906 01002c0700ff 06 00000000 0202 0f00 161d"
        "0203 0906 01003d0700ff 06 00000000 0202 0f00 161b"
        "0203 0906 01003e0700ff 06 00000000 0202 0f00 161b"
        "0203 0906 01003f0700ff 06 00000000 0202 0f00 161d"
        "0203 0906 0100400700ff 06 00000000 0202 0f00 161d"
        "0203 0906 0100010800ff 06 00995986 0202 0f00 161e"
        "0203 0906 0100020800ff 06 00000008 0202 0f00 161e"
        "0203 0906 0100030800ff 06 0064ed4b 0202 0f00 1620"
        "0203 0906 0100040800ff 06 00000005 0202 0f00 1620"
    )
    value = decode_data_all(body)
    items = value.as_items()
    assert len(items) == 27
    clock = items[0].as_items()[1].as_date_time()
    assert clock == DateTime(2019, 12, 16, 1, 7, 59, 40, None, None, None)
    assert str(clock) == "2019-12-16 07:59:40"
    assert clock.to_datetime() == datetime(2019, 12, 16, 7, 59, 40)  # naive: no deviation
    energy = items[23].as_items()
    assert energy[0].as_bytes() == h("0100010800ff")
    assert energy[1].as_int() == 0x00995986
    assert to_python(energy[2]) == [0, 30]  # Wh
    assert encode_data(value) == body


# --------------------------------------------------------------------------- lengths
@pytest.mark.parametrize(
    ("n", "hexstr"),
    [
        (0, "00"),
        (127, "7F"),
        (128, "81 80"),
        (255, "81 FF"),
        (256, "82 0100"),
        (65535, "82 FFFF"),
        (65536, "84 00010000"),
        (2**32 - 1, "84 FFFFFFFF"),
    ],
)
def test_length_vectors(n: int, hexstr: str) -> None:  # [derived] BER definite form
    assert encode_length(n) == h(hexstr)
    assert decode_length(h(hexstr) + b"\x99", 0) == (n, len(h(hexstr)))


def test_length_accepts_non_minimal_and_three_byte_forms() -> None:
    assert decode_length(h("8105"), 0) == (5, 2)
    assert decode_length(h("83 010000"), 0) == (65536, 4)


@pytest.mark.parametrize("bad", ["", "80", "85 0000000000", "81", "82 01", "84 000000"])
def test_length_invalid_or_truncated(bad: str) -> None:
    with pytest.raises(DecodeError):
        decode_length(h(bad), 0)


@pytest.mark.parametrize("n", [-1, 2**32])
def test_length_encode_out_of_range(n: int) -> None:
    with pytest.raises(LocalProtocolError):
        encode_length(n)


@pytest.mark.parametrize("size", [127, 128, 255, 256, 65535, 65536])
def test_octet_string_length_boundaries(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    raw = encode_data(Data.octets(payload))
    assert raw[0] == 0x09
    assert raw[1 : 1 + len(encode_length(size))] == encode_length(size)
    assert decode_data_all(raw) == Data.octets(payload)
    with pytest.raises(DecodeError):
        decode_data(raw[:-1])


def test_array_of_300_elements_uses_long_length() -> None:
    value = Data.array(*(Data.uint8(i % 256) for i in range(300)))
    raw = encode_data(value)
    assert raw[:4] == h("01 82 012C")
    assert decode_data_all(raw) == value


# --------------------------------------------------------------------------- integers/floats
INT_RANGES: dict[DataType, tuple[int, int]] = {
    T.INTEGER: (-(2**7), 2**7 - 1),
    T.LONG: (-(2**15), 2**15 - 1),
    T.DOUBLE_LONG: (-(2**31), 2**31 - 1),
    T.LONG64: (-(2**63), 2**63 - 1),
    T.UNSIGNED: (0, 2**8 - 1),
    T.LONG_UNSIGNED: (0, 2**16 - 1),
    T.DOUBLE_LONG_UNSIGNED: (0, 2**32 - 1),
    T.LONG64_UNSIGNED: (0, 2**64 - 1),
    T.ENUM: (0, 255),
    T.BCD: (0, 255),
}


@pytest.mark.parametrize("type_", list(INT_RANGES), ids=lambda t: t.asn1_name)
def test_integer_range_edges(type_: DataType) -> None:
    low, high = INT_RANGES[type_]
    for value in (low, high):
        assert decode_data_all(encode_data(Data(type_, value))) == Data(type_, value)
    for value in (low - 1, high + 1):
        with pytest.raises(LocalProtocolError):
            encode_data(Data(type_, value))
    with pytest.raises(LocalProtocolError):
        encode_data(Data(type_, True))  # a bool is not an integer here
    with pytest.raises(LocalProtocolError):
        encode_data(Data(type_, 1.0))


def test_helpers_check_at_once() -> None:
    with pytest.raises(LocalProtocolError):
        Data.uint8(256)
    with pytest.raises(LocalProtocolError):
        Data.int16(2**15)
    assert Data.octets(bytearray(b"\x01")).value == b"\x01"
    with pytest.raises(LocalProtocolError):
        Data.octets(5)  # type: ignore[arg-type]  # bytes(5) would be five zero bytes
    with pytest.raises(LocalProtocolError):
        Data.float32("1.5")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        Data.float64(True)
    assert Data.float64(2).value == 2.0


def test_float32_nan_inf_and_overflow() -> None:
    raw = encode_data(Data.float32(math.nan))
    back = decode_data_all(raw)
    assert back.type == T.FLOAT32
    assert isinstance(back.value, float) and math.isnan(back.value)
    assert encode_data(back) == raw
    assert decode_data_all(encode_data(Data.float32(math.inf))).value == math.inf
    assert decode_data_all(encode_data(Data.float64(-math.inf))).value == -math.inf
    with pytest.raises(LocalProtocolError):
        encode_data(Data(T.FLOAT32, 1e39))
    # A NaN with payload survives bit-exact (float32 -> float64 -> float32 keeps quiet NaNs).
    quiet = h("17 7FC00001")
    assert encode_data(decode_data_all(quiet)) == quiet


def test_float32_value_is_the_float32_value() -> None:
    value = decode_data_all(encode_data(Data.float32(0.1))).value
    assert value == struct.unpack(">f", struct.pack(">f", 0.1))[0]


# --------------------------------------------------------------------------- strings/booleans
def test_visible_string_is_decoded_as_latin1() -> None:
    # Field meters send bytes >= 0x80 in visible-strings; every byte survives.
    raw = h("0A 03 41 E9 FF")
    value = decode_data_all(raw)
    assert value == Data.visible("Aéÿ")
    assert encode_data(value) == raw
    with pytest.raises(LocalProtocolError):
        encode_data(Data(T.VISIBLE_STRING, "€"))


def test_invalid_utf8_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        decode_data(h("0C 02 C3 28"))


def test_boolean_any_nonzero_is_true() -> None:
    assert decode_data_all(h("03 02")) == Data.boolean(True)


def test_wrong_python_type_is_local_error() -> None:
    for bad in (
        Data(T.OCTET_STRING, "text"),
        Data(T.VISIBLE_STRING, b"bytes"),
        Data(T.BOOLEAN, 1),
        Data(T.NULL_DATA, 0),
        Data(T.ARRAY, [Data.null()]),
        Data(T.STRUCTURE, (1, 2)),
        Data(T.DATE_TIME, b"\x00" * 12),
        Data(T.COMPACT_ARRAY, ()),
    ):
        with pytest.raises(LocalProtocolError):
            encode_data(bad)


# --------------------------------------------------------------------------- bit strings
def test_bit_string_helpers() -> None:
    bits = BitString.from_str("0101")
    assert bits == BitString(4, b"\x50")
    assert str(bits) == "0101"
    assert bits.bits() == (False, True, False, True)
    assert bits[1] and not bits[0]
    assert len(bits) == 4
    assert BitString.from_bits([True] * 9) == BitString(9, b"\xff\x80")
    with pytest.raises(ValueError):
        BitString(9, b"\x00")
    with pytest.raises(ValueError):
        BitString.from_str("012")
    with pytest.raises(IndexError):
        bits[4]


def test_bit_string_padding_bits_are_kept() -> None:
    raw = h("04 04 5F")  # 4 bits 0101, padding 1111
    value = decode_data_all(raw)
    assert str(value.value) == "0101"
    assert encode_data(value) == raw


# --------------------------------------------------------------------------- date and time
def test_cosemlib_clock_deviation_120() -> None:
    # [cosemlib] 2002-12-04 Wed 10:06:11 (the source comment says :12, the byte is 0x0B),
    # hundredths not specified, deviation +120, status 0.
    raw = h("07D20C04030A060BFF007800")
    value = DateTime.from_bytes(raw)
    assert value == DateTime(2002, 12, 4, 3, 10, 6, 11, None, 120, ClockStatus(0))
    assert value.to_bytes() == raw
    # UTC = local + deviation: 10:06:11 local is 12:06:11 UTC, an ISO offset of -02:00.
    converted = value.to_datetime()
    assert converted == datetime(2002, 12, 4, 12, 6, 11, tzinfo=UTC)
    assert converted is not None and converted.utcoffset() == timedelta(hours=-2)
    assert str(value) == "2002-12-04 10:06:11 dev=120"


def test_aidon_no_clock_deviation_zero() -> None:
    # [aidon-no] list 3 clock: 2020-01-21 Tue 16:00:00, hundredths n.s., deviation 0, status 0
    value = Data.octets(h("07e4011502100000ff000000")).as_date_time()
    assert value == DateTime(2020, 1, 21, 2, 16, 0, 0, None, 0, ClockStatus(0))
    assert value.to_datetime() == datetime(2020, 1, 21, 16, 0, tzinfo=UTC)


def test_negative_deviation_is_east_of_utc() -> None:
    # [derived] Central European Summer Time, UTC+02:00 -> deviation -120, DST bit set.
    cest = timezone(timedelta(hours=2))
    local = datetime(2024, 7, 1, 14, 0, 0, 500000, tzinfo=cest)
    value = DateTime.from_datetime(local, clock_status=ClockStatus.DAYLIGHT_SAVING_ACTIVE)
    assert value.deviation == -120
    assert value.day_of_week == 1  # Monday
    assert value.hundredths == 50
    assert value.to_bytes() == h("07E8 07 01 01 0E 00 00 32 FF88 80")
    assert value.to_datetime() == local
    assert str(value) == "2024-07-01 14:00:00.50 dev=-120 status=0x80"


def test_deviation_not_specified_roundtrip() -> None:
    value = DateTime(2024, 1, 1, None, 0, 0, 0, None, None, None)
    raw = value.to_bytes()
    assert raw[9:11] == b"\x80\x00"
    assert raw[11] == 0xFF
    assert DateTime.from_bytes(raw) == value
    assert value.to_datetime() == datetime(2024, 1, 1)  # naive


def test_clock_status_bits() -> None:
    raw = h("07E8 01 01 01 00 00 00 00 0000 F9")  # all defined bits + reserved 0x70
    value = DateTime.from_bytes(raw)
    status = value.clock_status
    assert status is not None
    assert ClockStatus.INVALID_VALUE in status
    assert ClockStatus.DAYLIGHT_SAVING_ACTIVE in status
    assert ClockStatus.DOUBTFUL_VALUE not in status
    assert int(status) == 0xF9
    assert value.to_bytes() == raw
    # an int is accepted and normalised to ClockStatus
    assert DateTime(clock_status=0x80).clock_status is ClockStatus.DAYLIGHT_SAVING_ACTIVE  # type: ignore[arg-type]


def test_unspecified_fields_render_as_star() -> None:
    every_day = DateTime(None, None, None, None, 6, 30, None, None, None, None)
    assert str(every_day) == "*-*-* 06:30:*"
    assert every_day.to_datetime() is None
    assert DateTime.from_bytes(b"\xff" * 9 + b"\x80\x00\xff") == DateTime()
    assert str(Date(None, 0xFE, 0xFE, 7)) == "*-dst-begin-last Sun"
    assert str(Date(2024, 0xFD, 0xFD)) == "2024-dst-end-2nd-last"
    assert str(Date(2024, 3, 1, 5)) == "2024-03-01"  # weekday redundant next to a full date
    assert str(Time(12, 0, None, None)) == "12:00:*"


def test_to_datetime_rejects_impossible_dates() -> None:
    assert DateTime(2023, 2, 29, None, 0, 0, 0, 0, None, None).to_datetime() is None
    assert DateTime(2023, 1, 1, None, 24, 0, 0, 0, None, None).to_datetime() is None
    assert DateTime(2023, 0xFE, 1, None, 0, 0, 0, 0, None, None).to_datetime() is None
    assert DateTime(2023, 1, 1, None, 0, 0, 0, 0, 2000, None).to_datetime() is None
    assert Date(2024, 2, 29).to_date() is not None
    assert Time(23, 59, 59, 99).to_time() is not None


def test_date_time_field_validation() -> None:
    with pytest.raises(ValueError):
        Date(2024, 255)
    with pytest.raises(ValueError):
        Time(hour=-1)
    with pytest.raises(ValueError):
        DateTime(deviation=-0x8000)
    with pytest.raises(ValueError):
        DateTime(year=0xFFFF)
    with pytest.raises(ValueError):
        DateTime.from_datetime(datetime(2024, 1, 1, tzinfo=timezone(timedelta(seconds=30))))


@pytest.mark.parametrize(("cls", "size"), [(Date, 5), (Time, 4), (DateTime, 12)])
def test_date_time_from_bytes_wrong_size(cls: type[Date | Time | DateTime], size: int) -> None:
    for n in (0, size - 1, size + 1):
        with pytest.raises(DecodeError):
            cls.from_bytes(b"\x00" * n)


def test_date_and_time_from_python() -> None:
    assert Date.from_date(datetime(2024, 3, 1).date()) == Date(2024, 3, 1, 5)
    assert Time.from_time(datetime(2024, 3, 1, 1, 2, 3, 999999).time()) == Time(1, 2, 3, 99)
    assert DateTime.from_datetime(datetime(2024, 3, 1, 1, 2, 3)).deviation is None
    value = DateTime(2024, 3, 1, 5, 1, 2, 3, 4, -60, None)
    assert value.date == Date(2024, 3, 1, 5)
    assert value.time == Time(1, 2, 3, 4)


# --------------------------------------------------------------------------- compact array
# [derived] Green Book compact-array: tag 0x13, TypeDescription, then array-contents as
# an octet-string of untagged elements.  gurux decodes the same bytes (interop tests below).
COMPACT: list[tuple[str, str, Data]] = [
    (
        "long_unsigned_x4",
        "13 12 08 0001 0002 0003 0004",
        Data.array(*(Data.uint16(i) for i in (1, 2, 3, 4))),
    ),
    (
        "structure_uint8_octets",
        "13 02 02 11 09 06 05 02 AABB 07 00",
        Data.array(
            Data.structure(Data.uint8(5), Data.octets(h("AABB"))),
            Data.structure(Data.uint8(7), Data.octets(b"")),
        ),
    ),
    (
        # structure{ long, array[2] of structure{ boolean, visible-string } }
        "nested_array_structure",
        "13 02 02 10 01 0002 02 02 03 0A  0E  FFFF 01 01 41 00 00  0001 00 01 42 01 00",
        Data.array(
            Data.structure(
                Data.int16(-1),
                Data.array(
                    Data.structure(Data.boolean(True), Data.visible("A")),
                    Data.structure(Data.boolean(False), Data.visible("")),
                ),
            ),
            Data.structure(
                Data.int16(1),
                Data.array(
                    Data.structure(Data.boolean(False), Data.visible("B")),
                    Data.structure(Data.boolean(True), Data.visible("")),
                ),
            ),
        ),
    ),
    ("empty", "13 11 00", Data.array()),
    (
        "date_time_and_null",
        "13 02 02 19 00 0C 07E8030105 0C1E0000 FFC4 00",
        Data.array(
            Data.structure(
                Data.date_time(DateTime(2024, 3, 1, 5, 12, 30, 0, 0, -60, ClockStatus(0))),
                Data.null(),
            )
        ),
    ),
]


@pytest.mark.parametrize(("name", "hexstr", "expected"), COMPACT, ids=[c[0] for c in COMPACT])
def test_compact_array_decode(name: str, hexstr: str, expected: Data) -> None:
    raw = h(hexstr)
    assert decode_data_all(raw) == expected
    assert decode_data(raw + b"\x00") == (expected, len(raw))
    for cut in range(len(raw)):
        with pytest.raises(DecodeError):
            decode_data(raw[:cut])


@pytest.mark.parametrize(
    "bad",
    [
        "13 12 03 0001 00",  # element cut inside the contents
        "13 00 01 00",  # zero-size elements with non-empty contents
        "13 01 0003 00 01 00",  # array description of zero-size elements
        "13 13 00",  # compact-array inside a description
        "13 07 00",  # unknown tag in description
        "13 02 84FFFFFFFF 11 00",  # structure description count far beyond the input
        "13 01 FFFF 11 02 0102",  # description array of 65535 elements, 2 bytes of contents
        "13 11 05 01",  # contents length beyond the input
    ],
)
def test_compact_array_invalid(bad: str) -> None:
    with pytest.raises(DecodeError):
        decode_data(h(bad))


def test_compact_array_encode_not_supported() -> None:
    with pytest.raises(LocalProtocolError, match="not supported"):
        encode_data(Data(T.COMPACT_ARRAY, ()))


# --------------------------------------------------------------------------- bounds
def nested(depth: int) -> bytes:
    return b"\x01\x01" * depth + b"\x00"


def test_nesting_depth_bound() -> None:
    assert decode_data_all(nested(MAX_DEPTH)).type == T.ARRAY
    with pytest.raises(DecodeError, match="deeper"):
        decode_data(nested(MAX_DEPTH + 1))
    with pytest.raises(DecodeError):
        decode_data(b"\x02\x01" * 5000)  # far deeper: still DecodeError, no RecursionError
    deep = Data.null()
    for _ in range(MAX_DEPTH + 1):
        deep = Data.array(deep)
    with pytest.raises(LocalProtocolError):
        encode_data(deep)


@pytest.mark.parametrize("header", ["01 84FFFFFFFF", "02 84FFFFFFFF", "01 82FFFF", "09 84FFFFFFFF"])
def test_huge_counts_fail_fast(header: str) -> None:
    with pytest.raises(DecodeError):
        decode_data(h(header) + b"\x00\x00\x00")


def test_node_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    # A short description repeated over the contents may produce many nodes; the budget caps it.
    raw = h("13 02 03 11 00 00 0A 01 02 03 04 05 06 07 08 09 0A")
    assert len(decode_data_all(raw).as_items()) == 10
    monkeypatch.setattr(axdr, "MAX_NODES", 20)
    with pytest.raises(DecodeError, match="values"):
        decode_data(raw)


def test_null_bomb_refused_before_any_element_is_built() -> None:
    # issue 12: an array of N nulls is 2+N octets but N objects; 1 MiB of them is
    # refused by its count alone, naming the limit, with one node decoded.
    size = 1 << 20
    raw = b"\x01" + encode_length(size - 6) + bytes(size - 6)
    reader = axdr.AxdrReader(raw, 0, "A-XDR")
    assert reader.max_nodes == axdr.node_budget(size) == size // axdr.NODE_BYTES
    with pytest.raises(DecodeError, match=f"array of {size - 6} values exceeds the limit "
                       f"of {size // 2} values for {size} bytes"):
        reader.data("Data")
    assert reader.nodes == 1


def test_nested_null_bomb_stops_at_the_budget() -> None:
    # Two arrays whose counts each fit: the second is refused once the first has
    # spent the budget, so the work done is bounded by the input's size.
    half = 40_000
    raw = h("02 02 01 82") + half.to_bytes(2) + bytes(half) + h("01 82") + half.to_bytes(2)
    raw += bytes(half)
    reader = axdr.AxdrReader(raw, 0, "A-XDR", max_nodes=half + 10)
    with pytest.raises(DecodeError, match=f"array of {half} values exceeds the limit of "
                       f"{half + 10} values"):
        reader.data("Data")
    assert reader.nodes <= half + 10


def test_node_budget_follows_the_input_size() -> None:
    assert axdr.node_budget(10) == axdr.MIN_NODE_BUDGET
    assert axdr.node_budget(1 << 20) == 1 << 19
    assert axdr.node_budget(1 << 30) == axdr.MAX_NODES
    # a healthy load profile of 1 MiB decodes (4-6 octets a node)
    row = encode_data(Data.structure(Data.octets(bytes(12)), Data.uint8(0),
                                     *(Data.uint32(k) for k in range(4))))
    rows = (1 << 20) // len(row)
    value = decode_data_all(b"\x01" + encode_length(rows) + row * rows)
    assert len(value.as_items()) == rows


def test_nulls_are_one_object() -> None:
    items = decode_data_all(h("01 03 00 00 FF")).as_items()
    assert items[0] is items[1] is Data.null() and items[2] is Data.dont_care()
    assert items[0] == Data(DataType.NULL_DATA, None)


@pytest.mark.parametrize("raw", ["", "07", "08 00", "0B", "0E", "1C", "FE", "C0"])
def test_unknown_or_missing_tag(raw: str) -> None:
    with pytest.raises(DecodeError):
        decode_data(h(raw))


def test_decode_data_all_rejects_trailing_and_bad_offset() -> None:
    with pytest.raises(DecodeError, match="trailing"):
        decode_data_all(h("11 05 00"))
    with pytest.raises(DecodeError):
        decode_data(h("11 05"), 3)
    with pytest.raises(DecodeError):
        decode_data(h("11 05"), -1)


# --------------------------------------------------------------------------- accessors/render
def test_accessors() -> None:
    assert Data.uint16(5).as_int() == 5
    assert Data.uint16(5).as_float() == 5.0
    assert Data.float32(1.5).as_float() == 1.5
    assert Data.visible("x").as_str() == "x"
    assert Data.octets(b"\x01").as_bytes() == b"\x01"
    assert Data.structure(Data.null()).as_items() == (Data.null(),)
    for call in (
        Data.visible("5").as_int,
        Data.boolean(True).as_int,
        Data.boolean(True).as_float,
        Data.uint8(1).as_bytes,
        Data.octets(b"").as_str,
        Data.octets(b"").as_items,
        Data.octets(b"\x00" * 11).as_date_time,
    ):
        with pytest.raises(DecodeError):
            call()


def test_describe_and_to_python() -> None:
    value = Data.structure(Data.uint16(5), Data.octets(h("0102")))
    assert describe(value) == "structure{long-unsigned 5, octet-string 0102}"
    assert str(value) == describe(value)
    assert describe(Data.null()) == "null-data"
    assert describe(Data.boolean(False)) == "boolean false"
    assert describe(Data.visible("a")) == "visible-string 'a'"
    big = Data.array(*(Data.uint8(i) for i in range(20)))
    assert describe(big).endswith("unsigned 15, +4 more}")
    assert "+4 more" not in describe(big, limit=None)
    mixed = Data.array(
        Data.bit_string("01"),
        Data.date(Date(2024, 3, 1, None)),
        Data.null(),
        Data.float64(0.5),
        Data.visible("x"),
        Data.octets(b"\x00"),
    )
    assert to_python(mixed) == ["01", "2024-03-01", None, 0.5, "x", b"\x00"]


# --------------------------------------------------------------------------- hypothesis
def _opt(strategy: st.SearchStrategy[int]) -> st.SearchStrategy[int | None]:
    return st.none() | strategy


_byte = st.integers(0, 0xFE)
dates = st.builds(Date, _opt(st.integers(0, 0xFFFE)), _opt(_byte), _opt(_byte), _opt(_byte))
times = st.builds(Time, _opt(_byte), _opt(_byte), _opt(_byte), _opt(_byte))
date_times = st.builds(
    DateTime,
    _opt(st.integers(0, 0xFFFE)),
    _opt(_byte),
    _opt(_byte),
    _opt(_byte),
    _opt(_byte),
    _opt(_byte),
    _opt(_byte),
    _opt(_byte),
    _opt(st.integers(-0x7FFF, 0x7FFF)),
    _opt(_byte.map(ClockStatus)),
)
bit_strings = st.integers(0, 40).flatmap(
    lambda n: st.binary(min_size=(n + 7) // 8, max_size=(n + 7) // 8).map(lambda b: BitString(n, b))
)


def leaves(allow_nan: bool) -> st.SearchStrategy[Data]:
    ints = [
        st.integers(lo, hi).map(lambda v, t=t: Data(t, v)) for t, (lo, hi) in INT_RANGES.items()
    ]
    return st.one_of(
        st.just(Data.null()),
        st.just(Data.dont_care()),
        st.booleans().map(Data.boolean),
        bit_strings.map(Data.bit_string),
        *ints,
        st.floats(width=32, allow_nan=allow_nan).map(Data.float32),
        st.floats(allow_nan=allow_nan).map(Data.float64),
        st.binary(max_size=140).map(Data.octets),
        st.text(st.characters(max_codepoint=255), max_size=20).map(Data.visible),
        st.text(max_size=20).map(Data.utf8),
        date_times.map(Data.date_time),
        dates.map(Data.date),
        times.map(Data.time),
    )


def data_values(allow_nan: bool = False) -> st.SearchStrategy[Data]:
    return st.recursive(
        leaves(allow_nan),
        lambda children: st.one_of(
            st.lists(children, max_size=5).map(lambda xs: Data.array(*xs)),
            st.lists(children, max_size=5).map(lambda xs: Data.structure(*xs)),
        ),
        max_leaves=12,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data_values())
def test_round_trip(value: Data) -> None:
    raw = encode_data(value)
    assert decode_data_all(raw) == value
    assert decode_data(raw + b"\x01\x02", 0) == (value, len(raw))
    assert encode_data(decode_data_all(raw)) == raw  # also checks -0.0 and float bits


@settings(max_examples=80, deadline=None)
@given(data_values(allow_nan=True))
def test_round_trip_bytes_with_nan(value: Data) -> None:
    raw = encode_data(value)
    assert encode_data(decode_data_all(raw)) == raw


@settings(max_examples=100, deadline=None)
@given(data_values(), st.data())
def test_every_proper_prefix_is_a_decode_error(value: Data, data: st.DataObject) -> None:
    raw = encode_data(value)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(DecodeError):
        decode_data(raw[:cut])


def _decode_or_decode_error(raw: bytes) -> None:
    try:
        value, pos = decode_data(raw)
    except DecodeError:
        return
    assert 0 < pos <= len(raw)
    assert isinstance(value, Data)
    describe(value)
    to_python(value)


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=64))
def test_fuzz_random_bytes(raw: bytes) -> None:
    _decode_or_decode_error(raw)


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from([int(t) for t in DataType]),
    st.binary(max_size=48),
)
def test_fuzz_valid_tag_then_random(tag: int, rest: bytes) -> None:
    _decode_or_decode_error(bytes([tag]) + rest)


@settings(max_examples=200, deadline=None)
@given(data_values(), st.data())
def test_fuzz_mutated_valid_encodings(value: Data, data: st.DataObject) -> None:
    raw = bytearray(encode_data(value))
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(raw) - 1))
        raw[index] = data.draw(st.integers(0, 255))
    _decode_or_decode_error(bytes(raw))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40))
def test_fuzz_compact_array(rest: bytes) -> None:
    _decode_or_decode_error(b"\x13" + rest)
    _decode_or_decode_error(b"\x13\x02" + rest)


# --------------------------------------------------------------------------- gurux interop
gurux = pytest.importorskip("gurux_dlms")

from gurux_dlms.GXArray import GXArray  # noqa: E402
from gurux_dlms.GXBitString import GXBitString  # noqa: E402
from gurux_dlms.GXByteBuffer import GXByteBuffer  # noqa: E402
from gurux_dlms.GXDateTime import GXDateTime  # noqa: E402
from gurux_dlms.GXDLMSSettings import GXDLMSSettings  # noqa: E402
from gurux_dlms.GXEnum import GXEnum  # noqa: E402
from gurux_dlms.GXFloat32 import GXFloat32  # noqa: E402
from gurux_dlms.GXFloat64 import GXFloat64  # noqa: E402
from gurux_dlms.GXInt8 import GXInt8  # noqa: E402
from gurux_dlms.GXInt16 import GXInt16  # noqa: E402
from gurux_dlms.GXInt64 import GXInt64  # noqa: E402
from gurux_dlms.GXStructure import GXStructure  # noqa: E402
from gurux_dlms.GXUInt8 import GXUInt8  # noqa: E402
from gurux_dlms.GXUInt16 import GXUInt16  # noqa: E402
from gurux_dlms.GXUInt32 import GXUInt32  # noqa: E402
from gurux_dlms.GXUInt64 import GXUInt64  # noqa: E402
from gurux_dlms.internal._GXCommon import _GXCommon  # noqa: E402
from gurux_dlms.internal._GXDataInfo import _GXDataInfo  # noqa: E402

_GX_SETTINGS = GXDLMSSettings(False, None)

# Our type -> gurux typed wrapper (gurux picks the tag from the Python class).
_TO_GX: dict[DataType, type] = {
    T.INTEGER: GXInt8,
    T.LONG: GXInt16,
    T.DOUBLE_LONG: int,
    T.LONG64: GXInt64,
    T.UNSIGNED: GXUInt8,
    T.LONG_UNSIGNED: GXUInt16,
    T.DOUBLE_LONG_UNSIGNED: GXUInt32,
    T.LONG64_UNSIGNED: GXUInt64,
    T.ENUM: GXEnum,
    T.FLOAT32: GXFloat32,
    T.FLOAT64: GXFloat64,
}


def gx_encode(value: object) -> bytes:
    buff = GXByteBuffer()
    _GXCommon.setData(_GX_SETTINGS, buff, _GXCommon.getDLMSDataType(value), value)
    return bytes(buff.array())


def gx_decode(raw: bytes) -> tuple[object, int]:
    buff = GXByteBuffer(raw)
    info = _GXDataInfo()
    value = _GXCommon.getData(_GX_SETTINGS, buff, info)
    assert info.complete
    return value, buff.position


def to_gx(d: Data) -> object:
    if d.type in _TO_GX:
        return _TO_GX[d.type](d.value)
    if d.type in (T.STRUCTURE, T.ARRAY):
        out = GXStructure() if d.type == T.STRUCTURE else GXArray()
        out.extend(to_gx(item) for item in d.as_items())
        return out
    if d.type in (T.OCTET_STRING, T.VISIBLE_STRING, T.BOOLEAN, T.NULL_DATA):
        return d.value
    raise AssertionError(f"no gurux mapping for {d.type!r}")


def from_gx(value: object) -> object:
    """gurux's decoded value as plain Python (ints, floats, bytes, lists)."""
    if isinstance(value, list):
        return [from_gx(v) for v in value]
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int):
        return int(value)
    raise AssertionError(f"unexpected gurux value {value!r}")


def gx_leaves() -> st.SearchStrategy[Data]:
    ints = [
        st.integers(lo, hi).map(lambda v, t=t: Data(t, v))
        for t, (lo, hi) in INT_RANGES.items()
        if t != T.BCD
    ]
    return st.one_of(
        st.just(Data.null()),
        st.booleans().map(Data.boolean),
        *ints,
        st.floats(width=32, allow_nan=False).map(Data.float32),
        st.floats(allow_nan=False).map(Data.float64),
        st.binary(min_size=1, max_size=200).map(Data.octets),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=20).map(
            Data.visible
        ),
    )


gx_values = st.recursive(
    gx_leaves(),
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=4).map(lambda xs: Data.array(*xs)),
        st.lists(children, min_size=1, max_size=4).map(lambda xs: Data.structure(*xs)),
    ),
    max_leaves=10,
)


@pytest.mark.interop
@settings(max_examples=150, deadline=None)
@given(gx_values)
def test_gurux_encodes_the_same_bytes(value: Data) -> None:
    # Same value typed the same way: gurux and we must produce identical bytes.
    assert gx_encode(to_gx(value)) == encode_data(value)


@pytest.mark.interop
@settings(max_examples=150, deadline=None)
@given(gx_values)
def test_gurux_decodes_our_bytes(value: Data) -> None:
    raw = encode_data(value)
    decoded, pos = gx_decode(raw)
    assert pos == len(raw)
    assert from_gx(decoded) == to_python(value)


@pytest.mark.interop
@settings(max_examples=150, deadline=None)
@given(gx_values)
def test_we_decode_gurux_bytes(value: Data) -> None:
    raw = gx_encode(to_gx(value))
    assert decode_data_all(raw) == value


@pytest.mark.interop
@pytest.mark.parametrize("nbytes", [0, 1, 2, 5])
def test_gurux_bit_strings_of_whole_bytes(nbytes: int) -> None:
    # gurux rounds a bit-string's length up to whole bytes ("0101" goes out as 8 bits),
    # so only whole-byte bit strings are compared.
    bits = "".join("1" if (i * 7) % 3 else "0" for i in range(nbytes * 8))
    ours = encode_data(Data.bit_string(bits))
    assert gx_encode(GXBitString(bits)) == ours
    decoded, _ = gx_decode(ours)
    assert str(decoded) == bits


@pytest.mark.interop
@pytest.mark.parametrize("offset_minutes", [-300, -60, 0, 60, 120, 330, 720])
def test_gurux_date_time_deviation_sign(offset_minutes: int) -> None:
    # gurux (default settings) writes deviation = -utcoffset, as we read the Blue Book.
    tz = timezone(timedelta(minutes=offset_minutes))
    moment = datetime(2024, 3, 1, 12, 30, 15, tzinfo=tz)
    raw = gx_encode(GXDateTime(moment))
    value = decode_data_all(raw)
    assert isinstance(value.value, DateTime)
    assert value.value.deviation == -offset_minutes
    assert value.value.to_datetime() == moment
    # and gurux reads our encoding of the same instant back to the same instant
    ours = encode_data(Data.date_time(DateTime.from_datetime(moment)))
    decoded, _ = gx_decode(ours)
    assert isinstance(decoded, GXDateTime)
    assert decoded.value == moment


@pytest.mark.interop
def test_gurux_reads_deviation_not_specified() -> None:
    decoded, _ = gx_decode(h("19 07e30c1001073b28ff8000ff"))  # [aidon-se] clock as date-time
    assert decoded.value.replace(tzinfo=None) == datetime(2019, 12, 16, 7, 59, 40)


@pytest.mark.interop
@pytest.mark.parametrize("name", ["long_unsigned_x4", "structure_uint8_octets", "empty"])
def test_gurux_decodes_our_compact_array_vectors(name: str) -> None:
    # gurux decodes compact arrays of simple types and of flat structures (not nested
    # arrays in the description), giving rows as lists.
    hexstr, expected = next((c[1], c[2]) for c in COMPACT if c[0] == name)
    decoded, pos = gx_decode(h(hexstr))
    assert pos == len(h(hexstr))
    assert from_gx(decoded) == to_python(expected)
