"""dlms-sim's Profile Generic objects (class 7, Blue Book 4.3.6): the model format, the
buffer growing with the meter's time, selective access by range and by entry (the
parameters built with dlmsd.protocol.selective, whose wire form is checked against
gurux_dlms in tests/test_selective.py), the LN GET and SN READ paths with block
transfer, and each ``--profile-quirk``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from click.testing import CliRunner

from dlmsd.errors import ConfigError
from dlmsd.protocol.apdu import decode_apdu
from dlmsd.protocol.axdr import ClockStatus, Data, DataType, DateTime, decode_data_all
from dlmsd.protocol.client import Associated, LnClient
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.selective import CaptureObject, EntryDescriptor, RangeDescriptor
from dlmsd.protocol.sn import ParameterizedAccess, ReadRequest, ReadResponse
from dlmsd.protocol.sn_client import SnClient
from dlmsd.protocol.xdlms import (
    Conformance,
    CosemAttributeDescriptor,
    CosemAttributeDescriptorWithSelection,
    DataAccessResult,
    ExceptionResponse,
    ExceptionServiceError,
    GetRequestNext,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDatablock,
    GetResponseWithList,
    SelectiveAccessDescriptor,
    StateError,
)
from dlmsd.sim.cli import main
from dlmsd.sim.model import (
    AssociationView,
    Meter,
    MeterModel,
    bundled_model_path,
    load_model,
    parse_model,
)
from dlmsd.sim.profile import ProfileQuirks, parse_quirk
from dlmsd.sim.server import MeterServer, Referencing, ServerOptions

CET = timezone(timedelta(hours=1))
CEST = timezone(timedelta(hours=2))
VIEW = AssociationView(16, 1, 0, 1024, 1024)
LP = Obis.parse("1.0.99.1.0.255")
CLOCK = CaptureObject(8, Obis.parse("0.0.1.0.0.255"), 2)
IMPORT = CaptureObject(3, Obis.parse("1.0.1.8.0.255"), 2)
EXPORT = CaptureObject(3, Obis.parse("1.0.2.8.0.255"), 2)
ORIGIN = datetime(2024, 1, 10, 0, 0, tzinfo=CET)  # winter: no DST anywhere near


def model_doc(**profile: Any) -> dict[str, Any]:
    """A clock (CET/CEST, EU rules), two energy registers and a 15-minute profile."""
    spec: dict[str, Any] = {
        "class": "profile-generic", "obis": "1.0.99.1.0.255", "name": "LP",
        "capture_period": 900, "profile_entries": 8, "origin": ORIGIN.isoformat(),
        "sort_object": "0.0.1.0.0.255:2",
        "capture_objects": [
            {"object": "0.0.1.0.0.255:2"},
            {"object": "1.0.1.8.0.255:2", "start": 1000, "per_hour": 100},
            {"object": "1.0.2.8.0.255:2", "start": 7, "per_hour": 3}]}
    spec.update(profile)
    return {"objects": [
        {"class": "clock", "obis": "0.0.1.0.0.255", "time": "2024-01-10T01:10:00+01:00"},
        {"class": "register", "obis": "1.0.1.8.0.255",
         "value": {"type": "double-long-unsigned", "value": 5}, "unit": "Wh"},
        {"class": "register", "obis": "1.0.2.8.0.255",
         "value": {"type": "long-unsigned", "value": 6}, "unit": "Wh"},
        {"class": "data", "obis": "0.0.96.11.0.255", "value": {"type": "unsigned", "value": 0}},
        spec]}


def live_meter(quirks: ProfileQuirks | None = None, **profile: Any) -> Meter:
    return Meter(parse_model(model_doc(**profile)), live=True, started=ORIGIN, quirks=quirks)


def expected_row(k: int, columns: tuple[str, ...] = ("clock", "import", "export")) -> Data:
    """Row k as the README's formulas say: clock origin + 15 min k (CET, deviation -60,
    status 0), import 1000 + floor(100 * 900 k / 3600), export 7 + floor(3 * 900 k / 3600)."""
    moment = (ORIGIN + timedelta(minutes=15 * k)).astimezone(CET)
    values = {
        "clock": Data.octets(DateTime.from_datetime(moment, clock_status=ClockStatus(0))
                             .to_bytes()),
        "import": Data.uint32(1000 + 100 * 900 * k // 3600),
        "export": Data.uint16(7 + 3 * 900 * k // 3600),
    }
    return Data.structure(*(values[c] for c in columns))


def read(meter: Meter, attribute: int, now: datetime,
         selection: SelectiveAccessDescriptor | None = None) -> Data | DataAccessResult:
    return meter.read(7, LP, attribute, now=now, association=VIEW, selection=selection)


def rows(value: Data | DataAccessResult) -> tuple[Data, ...]:
    assert isinstance(value, Data) and value.type is DataType.ARRAY, value
    assert isinstance(value.value, tuple)
    return value.value


def at(minutes: float) -> datetime:
    return ORIGIN + timedelta(minutes=minutes)


def by_range(start: datetime | DateTime, end: datetime | DateTime,
             columns: tuple[CaptureObject, ...] = (),
             restricting: CaptureObject = CLOCK) -> SelectiveAccessDescriptor:
    def dt(value: datetime | DateTime) -> DateTime:
        return value if isinstance(value, DateTime) else DateTime.from_datetime(value)
    return RangeDescriptor.between(restricting, dt(start), dt(end), columns).to_selection()


# ====================================================================== the buffer
def test_the_buffer_grows_with_the_meter_time_and_drops_the_oldest_rows() -> None:
    meter = live_meter()
    assert rows(read(meter, 2, at(-1))) == ()
    assert read(meter, 7, at(-1)) == Data.uint32(0)
    assert rows(read(meter, 2, at(0))) == (expected_row(0),)  # captured at the origin
    assert rows(read(meter, 2, at(44.99))) == tuple(expected_row(k) for k in range(3))
    assert read(meter, 7, at(45)) == Data.uint32(4)
    # profile_entries 8: FIFO, the oldest row drops out when the ninth is captured
    assert rows(read(meter, 2, at(15 * 8))) == tuple(expected_row(k) for k in range(1, 9))
    assert read(meter, 7, at(15 * 100)) == Data.uint32(8)
    assert read(meter, 8, at(15 * 100)) == Data.uint32(8)


def test_the_other_attributes_of_class_7() -> None:
    meter = live_meter()
    now = at(100)
    assert read(meter, 1, now) == Data.octets(LP.to_bytes())
    assert read(meter, 3, now) == Data.array(CLOCK.to_data(), IMPORT.to_data(),
                                             EXPORT.to_data())
    assert read(meter, 4, now) == Data.uint32(900)
    assert read(meter, 5, now) == Data.enum(1)  # fifo
    assert read(meter, 6, now) == CLOCK.to_data()
    assert read(meter, 9, now) is DataAccessResult.OBJECT_UNDEFINED
    # No sort_object in the model: all fields 0.
    doc = model_doc()
    del doc["objects"][4]["sort_object"]
    plain = Meter(parse_model(doc), live=True, started=ORIGIN)
    assert read(plain, 6, now) == Data.structure(Data.uint16(0), Data.octets(bytes(6)),
                                                 Data.int8(0), Data.uint16(0))


def test_without_live_the_buffer_ends_at_the_fixed_clock_time() -> None:
    meter = Meter(parse_model(model_doc()))  # the clock shows 01:10 CET: rows 0..4
    assert rows(read(meter, 2, datetime(2030, 1, 1, tzinfo=UTC))) == tuple(
        expected_row(k) for k in range(5))


def test_rows_carry_the_local_time_with_the_dst_deviation_and_status() -> None:
    summer = datetime(2024, 7, 1, tzinfo=CEST)
    meter = Meter(parse_model(model_doc(origin=summer.isoformat())), live=True, started=summer)
    (row,) = rows(read(meter, 2, summer + timedelta(minutes=1)))
    clock = DateTime.from_bytes(row.as_items()[0].value)  # type: ignore[arg-type]
    assert (clock.hour, clock.deviation, clock.clock_status) == (
        0, -120, ClockStatus.DAYLIGHT_SAVING_ACTIVE)


def test_an_event_log_cycles_its_codes() -> None:
    doc = model_doc()
    doc["objects"].append({
        "class": "profile-generic", "obis": "0.0.99.98.0.255", "capture_period": 0,
        "interval": 3600, "profile_entries": 10, "origin": ORIGIN.isoformat(),
        "capture_objects": [{"object": "0.0.1.0.0.255:2"},
                            {"object": "0.0.96.11.0.255:2", "cycle": [1, 2, 4]}]})
    meter = Meter(parse_model(doc), live=True, started=ORIGIN)
    value = meter.read(7, Obis.parse("0.0.99.98.0.255"), 2, now=at(60 * 4), association=VIEW)
    assert [r.as_items()[1] for r in rows(value)] == [Data.uint8(c) for c in (1, 2, 4, 1, 2)]
    assert meter.read(7, Obis.parse("0.0.99.98.0.255"), 4, now=at(0),
                      association=VIEW) == Data.uint32(0)


def test_the_bundled_model_has_a_load_profile_and_an_event_log() -> None:
    model = load_model(bundled_model_path())
    meter = Meter(model)  # the clock is fixed at 2024-06-01T12:00:00+02:00
    now = datetime.now(UTC)
    profile = rows(read(meter, 2, now))
    assert len(profile) == 960
    last = profile[-1].as_items()
    assert DateTime.from_bytes(last[0].value).isoformat() == "2024-06-01T12:00:00+02:00"  # type: ignore[arg-type]
    # origin 2024-05-22T00:00+02:00, 252 hours before: 100000 + 250 * 252, 4000 + 10 * 252
    assert last[1:] == (Data.uint32(163000), Data.uint32(6520))
    events = meter.read(7, Obis.parse("0.0.99.98.0.255"), 2, now=now, association=VIEW)
    assert len(rows(events)) == 100
    assert meter.read(7, Obis.parse("0.0.99.98.0.255"), 3, now=now, association=VIEW) == (
        Data.array(CLOCK.to_data(), CaptureObject(1, Obis.parse("0.0.96.11.0.255"), 2)
                   .to_data()))


# ====================================================================== by range
def test_by_range_both_ends_included_with_deviation() -> None:
    meter = live_meter()
    now = at(15 * 6)
    assert rows(read(meter, 2, now, by_range(at(15), at(45)))) == tuple(
        expected_row(k) for k in (1, 2, 3))
    # between captures: the first row at or after from, the last at or before to
    assert rows(read(meter, 2, now, by_range(at(16), at(44)))) == (expected_row(2),)
    assert rows(read(meter, 2, now, by_range(at(-600), at(7)))) == (expected_row(0),)
    assert rows(read(meter, 2, now, by_range(at(80), at(9999)))) == (expected_row(6),)
    assert rows(read(meter, 2, now, by_range(at(45), at(15)))) == ()  # from after to


def test_by_range_without_deviation_is_the_meter_local_time() -> None:
    meter = live_meter()
    local = DateTime.from_datetime(at(30).astimezone(CET).replace(tzinfo=None))
    assert local.deviation is None
    assert rows(read(meter, 2, at(100), by_range(local, local))) == (expected_row(2),)


def test_by_range_selected_values_in_the_order_given() -> None:
    meter = live_meter()
    value = read(meter, 2, at(100), by_range(at(15), at(30), (EXPORT, CLOCK)))
    assert rows(value) == tuple(expected_row(k, ("export", "clock")) for k in (1, 2))


@pytest.mark.parametrize("selection", [
    by_range(at(0), at(30), restricting=IMPORT),  # not a clock column
    by_range(at(0), at(30), (CaptureObject(3, Obis.parse("1.0.3.8.0.255"), 2),)),
    by_range(DateTime(), DateTime()),  # every field not specified
    SelectiveAccessDescriptor(3, Data.null()),  # no such selector
    SelectiveAccessDescriptor(1, Data.uint8(1)),  # malformed range_descriptor
])
def test_by_range_what_the_simulator_refuses(selection: SelectiveAccessDescriptor) -> None:
    assert read(live_meter(), 2, at(100), selection) is DataAccessResult.OTHER_REASON


def test_selective_access_on_another_attribute_is_other_reason() -> None:
    meter = live_meter()
    assert read(meter, 3, at(100), by_range(at(0), at(30))) is DataAccessResult.OTHER_REASON
    assert meter.read(3, Obis.parse("1.0.1.8.0.255"), 2, now=at(0), association=VIEW,
                      selection=by_range(at(0), at(30))) is DataAccessResult.OTHER_REASON


# ====================================================================== by entry
@pytest.mark.parametrize(("entry", "ks", "columns"), [
    (EntryDescriptor(1, 0), range(0, 5), ("clock", "import", "export")),
    (EntryDescriptor(0, 2), range(0, 2), ("clock", "import", "export")),  # 0 is read as 1
    (EntryDescriptor(4, 9), range(3, 5), ("clock", "import", "export")),  # to beyond the last
    (EntryDescriptor(2, 3, 2, 3), range(1, 3), ("import", "export")),
    (EntryDescriptor(5, 5, 1, 2), range(4, 5), ("clock", "import")),
    (EntryDescriptor(3, 3, 3, 0), range(2, 3), ("export",)),
    (EntryDescriptor(6, 0), range(0), ()),  # beyond the buffer: nothing
    (EntryDescriptor(3, 2), range(0), ()),  # to before from: nothing
])
def test_by_entry(entry: EntryDescriptor, ks: range, columns: tuple[str, ...]) -> None:
    value = read(live_meter(), 2, at(60), entry.to_selection())  # rows 0..4
    assert rows(value) == tuple(expected_row(k, columns) for k in ks)


def test_by_entry_counts_from_the_oldest_row_still_in_the_buffer() -> None:
    value = read(live_meter(), 2, at(15 * 20), EntryDescriptor(1, 2).to_selection())
    assert rows(value) == (expected_row(13), expected_row(14))  # rows 13..20 are kept


@pytest.mark.parametrize("entry", [EntryDescriptor(1, 0, 4, 0), EntryDescriptor(1, 0, 3, 2)])
def test_by_entry_columns_out_of_range(entry: EntryDescriptor) -> None:
    assert read(live_meter(), 2, at(60), entry.to_selection()) is DataAccessResult.OTHER_REASON


# ====================================================================== quirks
def test_quirk_refuse_range() -> None:
    for spec, result in (("refuse-range", DataAccessResult.OTHER_REASON),
                         ("refuse-range:object-unavailable", DataAccessResult.OBJECT_UNAVAILABLE)):
        meter = live_meter(parse_quirk(spec, ProfileQuirks()))
        assert read(meter, 2, at(100), by_range(at(0), at(30))) is result
        # by entry and the whole buffer still work
        assert rows(read(meter, 2, at(100), EntryDescriptor(1, 1).to_selection())) == (
            expected_row(0),)
        assert len(rows(read(meter, 2, at(100)))) == 7


def test_quirk_refuse_deviation() -> None:
    meter = live_meter(parse_quirk("refuse-deviation", ProfileQuirks()))
    assert read(meter, 2, at(100), by_range(at(0), at(30))) is DataAccessResult.OTHER_REASON
    one = DateTime.from_datetime(at(15).astimezone(CET))
    half = DateTime.from_datetime(at(15).astimezone(CET).replace(tzinfo=None))
    assert read(meter, 2, at(100), by_range(one, half)) is DataAccessResult.OTHER_REASON
    assert read(meter, 2, at(100), by_range(half, one)) is DataAccessResult.OTHER_REASON
    # deviation 0x8000 (not specified) in both: accepted, read as the meter's local time
    assert rows(read(meter, 2, at(100), by_range(half, half))) == (expected_row(1),)
    custom = live_meter(parse_quirk("refuse-deviation:type-unmatched", ProfileQuirks()))
    assert read(custom, 2, at(100), by_range(at(0), at(30))) is DataAccessResult.TYPE_UNMATCHED


def test_quirk_clock_not_first() -> None:
    meter = live_meter(parse_quirk("clock-not-first", ProfileQuirks()))
    assert read(meter, 3, at(100)) == Data.array(IMPORT.to_data(), EXPORT.to_data(),
                                                 CLOCK.to_data())
    assert read(meter, 6, at(100)) == CLOCK.to_data()  # the sort object is the clock
    order = ("import", "export", "clock")
    assert rows(read(meter, 2, at(20))) == tuple(expected_row(k, order) for k in (0, 1))
    # A range restricting on the clock, wherever it is, works ...
    assert rows(read(meter, 2, at(100), by_range(at(15), at(15)))) == (
        expected_row(1, order),)
    # ... one restricting on the first column (as clients that assume it is the clock
    # do) is refused.
    assert read(meter, 2, at(100), by_range(at(15), at(15), restricting=IMPORT)) is (
        DataAccessResult.OTHER_REASON)
    assert rows(read(meter, 2, at(100), EntryDescriptor(2, 2, 3, 3).to_selection())) == (
        expected_row(1, ("clock",)),)


def test_quirk_empty_range() -> None:
    meter = live_meter(parse_quirk("empty-range", ProfileQuirks()))
    assert read(meter, 2, at(100), by_range(at(0), at(100))) == Data.array()
    assert rows(read(meter, 2, at(100), EntryDescriptor(1, 1).to_selection())) == (
        expected_row(0),)


@pytest.mark.parametrize(("specs", "message"), [
    (["refuse"], "unknown quirk"),
    (["refuse-range:nope"], "is not a data-access-result"),
    (["empty-range:x"], "takes no argument"),
    (["refuse-range", "empty-range"], "cannot be combined"),
    (["refuse-deviation", "refuse-range"], "cannot be combined"),
])
def test_quirk_specs_that_are_refused(specs: list[str], message: str) -> None:
    quirks = ProfileQuirks()
    with pytest.raises(ValueError, match=message):
        for spec in specs:
            quirks = parse_quirk(spec, quirks)


def test_the_command_line_refuses_a_bad_quirk() -> None:
    done = CliRunner().invoke(main, ["--wrapper-port", "0", "--profile-quirk", "sideways"])
    assert done.exit_code == 2
    assert "--profile-quirk 'sideways': unknown quirk" in done.output


# ====================================================================== model problems
@pytest.mark.parametrize(("change", "problem"), [
    ({"capture_objects": [{"object": "1.0.1.8.0.255:2"}]},
     "$.objects[4].capture_objects: a simulated profile needs a clock column"),
    ({"capture_objects": [{"object": "0.0.1.0.0.255:2"}, {"object": "1.0.9.8.0.255:2"}]},
     "$.objects[4].capture_objects[1].object: \"1.0.9.8.0.255:2\": 1.0.9.8.0.255 is not an "
     "object of the model"),
    ({"capture_objects": [{"object": "0.0.1.0.0.255:2"}, {"object": "1.0.1.8.0.255:4"}]},
     "has no readable attribute 4"),
    ({"capture_objects": [{"object": "0.0.1.0.0.255:2"}, {"object": "1.0.1.8.0.255"}]},
     "must be \"OBIS:attribute\""),
    ({"capture_objects": [{"object": "0.0.1.0.0.255:2"},
                          {"object": "1.0.2.8.0.255:2", "cycle": [1, 70000]}]},
     "$.objects[4].capture_objects[1].cycle[1]: 70000 is not allowed: must be an integer "
     "from 0 to 65535 (long-unsigned)"),
    ({"capture_objects": [{"object": "0.0.1.0.0.255:2", "per_hour": 3}]},
     "a clock column is the capture time"),
    ({"capture_objects": [{"object": "0.0.1.0.0.255:2"}, {"object": "0.0.1.0.0.255:2"}]},
     "is captured twice"),
    ({"origin": "2024-01-10T00:00:00"}, "$.objects[4].origin: \"2024-01-10T00:00:00\" has no "
                                        "UTC offset"),
    ({"capture_period": 0}, "$.objects[4].interval: required when capture_period is 0"),
    ({"sort_object": "1.0.3.8.0.255:2"}, "is not one of the capture objects"),
    ({"profile_entries": 0}, "$.objects[4].profile_entries: 0 is not allowed"),
    ({"capture_objects": [{"object": "0.0.1.0.0.255:2", "colour": 1}]}, "colour"),
])
def test_model_problems_name_path_and_value(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_model(model_doc(**change), "test.json")
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_a_profile_may_capture_an_object_listed_after_it() -> None:
    doc = model_doc()
    doc["objects"].insert(0, doc["objects"].pop())  # the profile first
    model = parse_model(doc)
    assert [o.logical_name for o in model.objects][1] == LP  # model order kept
    assert len(rows(read(Meter(model), 2, at(0)))) == 5


# ====================================================================== the services
def ln_server(model: MeterModel, **options: Any) -> tuple[MeterServer, LnClient]:
    server = MeterServer(Meter(model, live=True, started=ORIGIN), ServerOptions(**options))
    client = LnClient(max_receive_pdu_size=256)
    assert isinstance(client.receive_apdu(server.handle(client.associate(), at(0))), Associated)
    return server, client


def test_ln_get_by_range_in_blocks_is_the_whole_answer() -> None:
    server, _ = ln_server(parse_model(model_doc(profile_entries=200)), max_pdu=256)
    now = at(15 * 150)
    request = GetRequestNormal(CosemAttributeDescriptor(7, LP, 2),
                               access_selection=by_range(at(15 * 10), at(15 * 109)))
    answer = decode_apdu(server.handle(request.to_bytes(), now))
    raw = b""
    while isinstance(answer, GetResponseWithDatablock):
        assert isinstance(answer.raw_data, bytes)
        raw += answer.raw_data
        if answer.last_block:
            break
        answer = decode_apdu(server.handle(GetRequestNext(answer.block_number).to_bytes(), now))
    assert rows(decode_data_all(raw)) == tuple(expected_row(k) for k in range(10, 110))


def test_ln_get_by_entry_in_one_answer() -> None:
    server, _ = ln_server(parse_model(model_doc()))
    request = GetRequestNormal(CosemAttributeDescriptor(7, LP, 2),
                               access_selection=EntryDescriptor(2, 3, 2, 2).to_selection())
    answer = decode_apdu(server.handle(request.to_bytes(), at(60)))
    assert answer == GetResponseNormal(Data.array(expected_row(1, ("import",)),
                                                  expected_row(2, ("import",))))


def test_selective_access_needs_the_conformance_bit() -> None:
    server = MeterServer(Meter(parse_model(model_doc()), live=True, started=ORIGIN))
    client = LnClient(max_receive_pdu_size=256,
                      conformance=Conformance.GET | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ)
    assert isinstance(client.receive_apdu(server.handle(client.associate(), at(0))), Associated)
    request = GetRequestNormal(CosemAttributeDescriptor(7, LP, 2),
                               access_selection=EntryDescriptor().to_selection())
    assert server.handle(request.to_bytes(), at(60)) == ExceptionResponse(
        StateError.SERVICE_NOT_ALLOWED, ExceptionServiceError.SERVICE_NOT_SUPPORTED).to_bytes()


def test_sn_read_with_parameterized_access() -> None:
    model = parse_model(model_doc())
    base = model.short_names.base_name(LP)
    assert base is not None
    meter = Meter(model, live=True, started=ORIGIN)
    server = MeterServer(meter, ServerOptions(referencing=Referencing.SN))
    client = SnClient(max_receive_pdu_size=1024)
    assert isinstance(client.receive_apdu(server.handle(client.associate(), at(0))), Associated)
    entry = EntryDescriptor(1, 2)
    span = by_range(at(15), at(30), (IMPORT,))
    request = ReadRequest((ParameterizedAccess(base + 8, 2, entry.to_data()),
                           ParameterizedAccess(base + 8, 1, span.access_parameters),
                           ParameterizedAccess(base + 16, 1, span.access_parameters)))
    answer = ReadResponse.from_bytes(server.handle(request.to_bytes(), at(60)))
    assert answer.results == (Data.array(expected_row(0), expected_row(1)),
                              Data.array(expected_row(1, ("import",)),
                                         expected_row(2, ("import",))),
                              DataAccessResult.OTHER_REASON)  # capture_objects: no selectors


def test_ln_get_with_list_mixes_selective_and_plain_reads() -> None:
    server, _ = ln_server(parse_model(model_doc()))
    buffer = CosemAttributeDescriptor(7, LP, 2)
    request = GetRequestWithList((
        CosemAttributeDescriptorWithSelection(buffer, EntryDescriptor(5, 0).to_selection()),
        CosemAttributeDescriptorWithSelection(CosemAttributeDescriptor(7, LP, 7)),
        CosemAttributeDescriptorWithSelection(
            buffer, by_range(at(15), at(15), (EXPORT,)))))
    answer = decode_apdu(server.handle(request.to_bytes(), at(60)))
    assert answer == GetResponseWithList((Data.array(expected_row(4)), Data.uint32(5),
                                          Data.array(expected_row(1, ("export",)))))
