"""Profile Generic selective access parameters and capture objects, both directions.

Vectors:

* GURUX: the access-selection of GET requests built by gurux_dlms 1.0.203
  (``GXDLMSClient.readRowsByRange`` / ``readRowsByEntry`` on a GXDLMSProfileGeneric
  1.0.99.1.0.255 capturing clock 0.0.1.0.0.255:2 and register 1.0.1.8.0.255:2, dates
  2024-05-06 00:00 and 01:00 at UTC+01:00), captured in this venv; the interop tests
  below regenerate them from gurux and check that it still builds the same bytes.
  gurux sends day-of-week "not specified" and clock status 0.
* Blue Book 4.3.6: the structure of capture_object_definition, range_descriptor and
  entry_descriptor (the module docstring quotes it).
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsd.errors import DecodeError, LocalProtocolError
from dlmsd.protocol.apdu import decode_apdu
from dlmsd.protocol.axdr import ClockStatus, Data, DateTime, decode_data_all, encode_data
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.selective import (
    CaptureObject,
    EntryDescriptor,
    RangeDescriptor,
    build_capture_objects,
    parse_access,
    parse_capture_objects,
    parse_capture_period,
)
from dlmsd.protocol.xdlms import (
    CosemAttributeDescriptor,
    GetRequestNormal,
    SelectiveAccessDescriptor,
)

CLOCK = CaptureObject(8, Obis(0, 0, 1, 0, 0, 255), 2, 0)
ENERGY = CaptureObject(3, Obis(1, 0, 1, 8, 0, 255), 2, 0)
PROFILE = CosemAttributeDescriptor(7, Obis(1, 0, 99, 1, 0, 255), 2)

START = DateTime(2024, 5, 6, None, 0, 0, 0, 0, -60, ClockStatus(0))
END = DateTime(2024, 5, 6, None, 1, 0, 0, 0, -60, ClockStatus(0))

# GURUX readRowsByRange(pg, start, end): the whole GET-Request-Normal APDU.
GURUX_RANGE = bytes.fromhex(
    "c001c100070100630100ff0201010204020412000809060000010000ff0f02120000"
    "090c07e80506ff00000000ffc400090c07e80506ff01000000ffc4000100")
# ... with columns [(register, capture object 2/0)].
GURUX_RANGE_COLUMNS = bytes.fromhex(
    "c001c100070100630100ff0201010204020412000809060000010000ff0f02120000"
    "090c07e80506ff00000000ffc400090c07e80506ff01000000ffc400"
    "0101020412000309060100010800ff0f02120000")
# GURUX readRowsByEntry(pg, 3, 5): entries 3..7, all columns (gurux sends 1..0).
GURUX_ENTRY = bytes.fromhex("c001c100070100630100ff020102020406000000030600000007120001120000")

VECTORS = [
    (GURUX_RANGE, RangeDescriptor.between(CLOCK, START, END)),
    (GURUX_RANGE_COLUMNS, RangeDescriptor.between(CLOCK, START, END, [ENERGY])),
    (GURUX_ENTRY, EntryDescriptor(3, 7, 1, 0)),
]


@pytest.mark.parametrize(("apdu", "access"), VECTORS)
def test_vector_both_directions(apdu: bytes, access: RangeDescriptor | EntryDescriptor) -> None:
    # encode: our descriptor in a GET-Request-Normal gives gurux's bytes
    assert GetRequestNormal(PROFILE, access.to_selection(), 0xC1).to_bytes() == apdu
    # decode: gurux's bytes give our descriptor back
    request = decode_apdu(apdu)
    assert isinstance(request, GetRequestNormal)
    assert request.access_selection is not None
    assert parse_access(request.access_selection) == access


def test_range_dates_read_back() -> None:
    access = parse_access(SelectiveAccessDescriptor.from_bytes(GURUX_RANGE[13:]))
    assert isinstance(access, RangeDescriptor)
    assert access.dates() == (START, END)
    assert access.restricting_object == CLOCK
    assert access.selected_values == ()


def test_range_dates_as_date_time_type() -> None:
    # A client may send typed date-times (tag 25) instead of octet-string(12).
    access = RangeDescriptor(CLOCK, Data.date_time(START), Data.date_time(END))
    back = RangeDescriptor.from_data(decode_data_all(encode_data(access.to_data())))
    assert back == access
    assert back.dates() == (START, END)


def test_restricting_object_not_first_column() -> None:
    # the sort column may be any capture object: it is sent as it is given
    access = RangeDescriptor(ENERGY, Data.uint32(10), Data.uint32(20))
    raw = encode_data(access.to_data())
    assert raw.hex() == ("020402041200030906010001080" "0ff0f0212000006"
                         "0000000a060000001401" "00")
    assert RangeDescriptor.from_data(decode_data_all(raw)) == access


def test_entry_defaults_are_everything() -> None:
    # Blue Book: to_entry 0 and to_selected_value 0 are "the highest possible"
    assert EntryDescriptor().to_data() == Data.structure(
        Data.uint32(1), Data.uint32(0), Data.uint16(1), Data.uint16(0))


def test_capture_objects_both_directions() -> None:
    # Blue Book 4.3.6 attribute 3: array of structure{long-unsigned, octet-string,
    # integer, long-unsigned}; the bytes spelled out field by field
    raw = bytes.fromhex(
        "0102"
        "0204" "120008" "0906" "0000010000ff" "0f02" "120000"
        "0204" "120003" "0906" "0100010800ff" "0f02" "120000")
    assert parse_capture_objects(decode_data_all(raw)) == (CLOCK, ENERGY)
    assert encode_data(build_capture_objects([CLOCK, ENERGY])) == raw


def test_capture_object_key() -> None:
    assert CLOCK.key == "0.0.1.0.0.255:2"
    assert CaptureObject(4, Obis(1, 0, 1, 6, 0, 255), 2, 3).key == "1.0.1.6.0.255:2:3"
    assert str(ENERGY) == "3/1.0.1.8.0.255:2"


def test_capture_period() -> None:
    assert parse_capture_period(Data.uint32(900)) == 900
    with pytest.raises(DecodeError, match="capture_period"):
        parse_capture_period(Data.octets(b"x"))


@pytest.mark.parametrize(("data", "message"), [
    (Data.uint8(1), "capture_objects must be an array"),
    (Data.array(Data.uint8(1)), "capture object 1 must be a structure of 4"),
    (Data.array(Data.structure(Data.uint16(3))),
     "capture object 1 must be a structure of 4, got 1"),
    (Data.array(CLOCK.to_data(), Data.structure(
        Data.uint8(3), Data.octets(bytes(6)), Data.int8(2), Data.uint16(0))),
     "capture object 2 class_id must be long-unsigned, got unsigned"),
    (Data.array(Data.structure(
        Data.uint16(3), Data.octets(bytes(5)), Data.int8(2), Data.uint16(0))),
     "capture object 1 logical_name must be 6 octets, got 5"),
    (Data.array(Data.structure(
        Data.uint16(3), Data.octets(bytes(6)), Data.uint8(2), Data.uint16(0))),
     "capture object 1 attribute_index must be integer"),
    (Data.array(Data.structure(
        Data.uint16(3), Data.octets(bytes(6)), Data.int8(2), Data.null())),
     "capture object 1 data_index must be long-unsigned, got null"),
])
def test_capture_objects_errors(data: Data, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        parse_capture_objects(data)


@pytest.mark.parametrize(("selection", "message"), [
    (SelectiveAccessDescriptor(3, Data.null()), "access selector 3"),
    (SelectiveAccessDescriptor(1, Data.null()), "range_descriptor must be a structure of 4"),
    (SelectiveAccessDescriptor(1, Data.structure(
        Data.uint8(0), Data.null(), Data.null(), Data.array())),
     "range_descriptor restricting_object must be a structure"),
    (SelectiveAccessDescriptor(1, Data.structure(
        CLOCK.to_data(), Data.null(), Data.null(), Data.null())),
     "range_descriptor selected_values must be an array"),
    (SelectiveAccessDescriptor(1, Data.structure(
        CLOCK.to_data(), Data.null(), Data.null(), Data.array(Data.uint8(1)))),
     "range_descriptor selected_values 1 must be a structure"),
    (SelectiveAccessDescriptor(2, Data.structure(
        Data.uint16(1), Data.uint32(0), Data.uint16(1), Data.uint16(0))),
     "entry_descriptor from_entry must be double-long-unsigned, got long-unsigned"),
    (SelectiveAccessDescriptor(2, Data.structure(
        Data.uint32(1), Data.uint32(0), Data.uint16(1))),
     "entry_descriptor must be a structure of 4, got 3"),
    (SelectiveAccessDescriptor(2, Data.structure(
        Data.uint32(1), Data.uint32(0), Data.uint16(1), Data.uint32(0))),
     "entry_descriptor to_selected_value must be long-unsigned"),
])
def test_access_errors(selection: SelectiveAccessDescriptor, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        parse_access(selection)


def test_range_dates_not_dates() -> None:
    access = RangeDescriptor(CLOCK, Data.uint32(1), Data.uint32(2))
    with pytest.raises(DecodeError, match="expected a date-time"):
        access.dates()


@pytest.mark.parametrize("kwargs", [
    {"from_entry": -1}, {"to_entry": 1 << 32}, {"from_selected_value": 1 << 16},
    {"to_selected_value": True},
])
def test_entry_build_range(kwargs: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError, match="entry_descriptor"):
        EntryDescriptor(**kwargs)


@pytest.mark.parametrize("args", [(1 << 16, 2, 0), (3, 128, 0), (3, 2, -1)])
def test_capture_object_build_range(args: tuple[int, int, int]) -> None:
    with pytest.raises(LocalProtocolError, match="capture object"):
        CaptureObject(args[0], Obis(1, 0, 1, 8, 0, 255), args[1], args[2])


# ------------------------------------------------------------ interop (gurux_dlms, tests only)
def _gurux_requests() -> dict[str, bytes]:
    """Regenerate the GURUX vectors from gurux_dlms's client."""
    from datetime import datetime, timedelta, timezone

    from tests.test_xdlms import _associated_client, _frames

    objects = pytest.importorskip("gurux_dlms.objects")
    client = _associated_client()
    profile = objects.GXDLMSProfileGeneric("1.0.99.1.0.255")
    clock, register = objects.GXDLMSClock("0.0.1.0.0.255"), objects.GXDLMSRegister("1.0.1.8.0.255")
    profile.addCaptureObject(clock, 2, 0)
    profile.addCaptureObject(register, 2, 0)
    zone = timezone(timedelta(hours=1))
    start, end = datetime(2024, 5, 6, 0, tzinfo=zone), datetime(2024, 5, 6, 1, tzinfo=zone)

    def apdu(frames: Any) -> bytes:
        (frame,) = _frames(frames)
        return frame[8:]  # after the wrapper header

    return {
        "range": apdu(client.readRowsByRange(profile, start, end)),
        "columns": apdu(client.readRowsByRange(
            profile, start, end, [(register, objects.GXDLMSCaptureObject(2, 0))])),
        "entry": apdu(client.readRowsByEntry(profile, 3, 5)),
    }


@pytest.mark.interop
def test_gurux_still_builds_the_vectors() -> None:
    assert _gurux_requests() == {
        "range": GURUX_RANGE, "columns": GURUX_RANGE_COLUMNS, "entry": GURUX_ENTRY}


# ------------------------------------------------------------ round trips and fuzz
_capture = st.builds(
    CaptureObject, st.integers(0, 0xFFFF),
    st.builds(Obis, *[st.integers(0, 255)] * 6), st.integers(-128, 127),
    st.integers(0, 0xFFFF))


@given(st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFF),
       st.integers(0, 0xFFFF))
def test_entry_round_trip(a: int, b: int, c: int, d: int) -> None:
    access = EntryDescriptor(a, b, c, d)
    raw = access.to_selection().to_bytes()
    assert parse_access(SelectiveAccessDescriptor.from_bytes(raw)) == access


@given(_capture, st.lists(_capture, max_size=4))
def test_range_and_capture_objects_round_trip(restricting: CaptureObject,
                                              selected: list[CaptureObject]) -> None:
    access = RangeDescriptor(restricting, Data.uint32(1), Data.octets(bytes(12)),
                             tuple(selected))
    raw = access.to_selection().to_bytes()
    assert parse_access(SelectiveAccessDescriptor.from_bytes(raw)) == access
    assert parse_capture_objects(decode_data_all(encode_data(
        build_capture_objects(selected)))) == tuple(selected)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_fuzz_parse_or_decode_error(raw: bytes) -> None:
    try:
        data = decode_data_all(raw)
    except DecodeError:
        return
    for parse in (parse_capture_objects,
                  lambda d: parse_access(SelectiveAccessDescriptor(1, d)),
                  lambda d: parse_access(SelectiveAccessDescriptor(2, d))):
        with contextlib.suppress(DecodeError):
            parse(data)
