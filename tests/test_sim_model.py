"""dlms-sim object model: loading, validation messages, attribute values, live values."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dlmsd.errors import ConfigError
from dlmsd.protocol.axdr import (
    BitString,
    ClockStatus,
    Data,
    DataType,
    Date,
    DateTime,
    Time,
    decode_data_all,
    encode_data,
)
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.xdlms import DataAccessResult
from dlmsd.sim import model as model_module
from dlmsd.sim.model import (
    ASSOCIATION_LN_NAME,
    CLASSES,
    AssociationView,
    AttributeAccess,
    Meter,
    MeterModel,
    bundled_model_path,
    load_model,
    parse_model,
)

SIM_DIR = Path(__file__).resolve().parent.parent / "dlmsd" / "sim"
VIEW = AssociationView(client_sap=16, server_sap=1, conformance=0x001219,
                       max_receive_pdu_size=1024, max_send_pdu_size=1024)
START = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)


def read(meter: Meter, class_id: int, obis: str, attribute: int,
         now: datetime = START) -> Data | DataAccessResult:
    return meter.read(class_id, Obis.parse(obis), attribute, now=now, association=VIEW)


def model_of(*objects: dict[str, Any], **top: Any) -> MeterModel:
    return parse_model({"objects": list(objects), **top}, "test.json")


def problems_of(doc: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_model(doc, "test.json")
    return info.value.problems


@pytest.fixture(scope="module")
def bundled() -> MeterModel:
    return load_model(bundled_model_path())


# ------------------------------------------------------------------ purity
@pytest.mark.parametrize("name", ["model.py", "server.py", "line.py"])
def test_pure_sim_modules_import_no_io(name: str) -> None:
    tree = ast.parse((SIM_DIR / name).read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    forbidden = {"asyncio", "socket", "serial", "time", "selectors", "threading"}
    assert not imported & forbidden


# ------------------------------------------------------------------ bundled model
EXPECTED_OBJECTS = {
    "0.0.40.0.0.255": 15, "0.0.1.0.0.255": 8, "0.0.96.1.0.255": 1, "0.0.42.0.0.255": 1,
    "1.0.1.8.0.255": 3, "1.0.2.8.0.255": 3, "1.0.1.7.0.255": 3, "1.0.32.7.0.255": 3,
    "1.0.31.7.0.255": 3, "1.0.14.7.0.255": 3, "1.0.1.6.0.255": 4, "1.0.1.4.0.255": 5,
}


def test_bundled_model_has_the_objects_the_demo_reads(bundled: MeterModel) -> None:
    classes = {str(o.logical_name): o.cls.class_id for o in bundled.objects}
    for obis, class_id in EXPECTED_OBJECTS.items():
        assert classes.get(obis) == class_id, obis
    assert bundled.objects[0].logical_name == ASSOCIATION_LN_NAME


def test_bundled_register_values(bundled: MeterModel) -> None:
    meter = Meter(bundled)
    assert read(meter, 3, "1.0.1.8.0.255", 2) == Data.uint32(123456)
    assert read(meter, 3, "1.0.1.8.0.255", 3) == Data.structure(Data.int8(1), Data.enum(30))
    assert read(meter, 3, "1.0.32.7.0.255", 2) == Data.uint16(2301)
    assert read(meter, 3, "1.0.32.7.0.255", 3) == Data.structure(Data.int8(-1), Data.enum(35))
    assert read(meter, 3, "1.0.31.7.0.255", 3) == Data.structure(Data.int8(-2), Data.enum(33))
    assert read(meter, 3, "1.0.14.7.0.255", 2) == Data.uint16(5000)
    assert read(meter, 3, "1.0.14.7.0.255", 3) == Data.structure(Data.int8(-2), Data.enum(44))
    assert read(meter, 3, "1.0.1.7.0.255", 2) == Data.int32(1250)
    assert read(meter, 1, "0.0.96.1.0.255", 2) == Data.octets(b"12345678")
    assert read(meter, 3, "1.0.1.8.0.255", 1) == Data.octets(bytes([1, 0, 1, 8, 0, 255]))


def test_bundled_model_covers_every_axdr_type(bundled: MeterModel) -> None:
    meter = Meter(bundled)
    seen: set[DataType] = set()
    for obj in bundled.objects:
        for attribute in range(1, len(obj.cls.attributes) + 1):
            value = read(meter, obj.cls.class_id, str(obj.logical_name), attribute)
            stack = [value]
            while stack:
                item = stack.pop()
                if isinstance(item, Data):
                    seen.add(item.type)
                    if isinstance(item.value, tuple):
                        stack.extend(item.value)
    missing = set(DataType) - seen - {DataType.COMPACT_ARRAY, DataType.DONT_CARE}
    assert not missing
    big = read(meter, 1, "0.128.128.0.15.255", 2)
    assert big == Data.uint64(2**53 + 1)


def test_clock_attributes(bundled: MeterModel) -> None:
    meter = Meter(bundled)
    time = read(meter, 8, "0.0.1.0.0.255", 2)
    assert isinstance(time, Data) and time.type is DataType.OCTET_STRING
    # 12:00 CEST: deviation -120 (UTC = local + deviation), DST active bit.
    assert time.as_date_time() == DateTime(2024, 6, 1, 6, 12, 0, 0, 0, -120,
                                           ClockStatus.DAYLIGHT_SAVING_ACTIVE)
    assert read(meter, 8, "0.0.1.0.0.255", 3) == Data.int16(-60)
    assert read(meter, 8, "0.0.1.0.0.255", 4) == Data.uint8(0x80)
    begin = read(meter, 8, "0.0.1.0.0.255", 5)
    assert isinstance(begin, Data)
    assert begin.as_bytes() == bytes.fromhex("FFFF03FE0702000000 8000 FF".replace(" ", ""))
    assert read(meter, 8, "0.0.1.0.0.255", 7) == Data.int8(60)
    assert read(meter, 8, "0.0.1.0.0.255", 8) == Data.boolean(True)
    assert read(meter, 8, "0.0.1.0.0.255", 9) == Data.enum(1)


def test_live_clock_follows_now(bundled: MeterModel) -> None:
    meter = Meter(bundled, live=True, started=START)
    now = datetime(2024, 7, 15, 8, 30, 5, 120000, tzinfo=UTC)
    value = read(meter, 8, "0.0.1.0.0.255", 2, now)
    assert isinstance(value, Data)
    assert value.as_date_time() == DateTime(2024, 7, 15, 1, 10, 30, 5, 12, -120,
                                            ClockStatus.DAYLIGHT_SAVING_ACTIVE)


@pytest.mark.parametrize(("utc", "local", "deviation", "status"), [
    # EU rules (the model's defaults): last Sunday of March 02:00 CET, of October 03:00 CEST.
    ("2024-03-31T00:59:59", (2024, 3, 31, 7, 1, 59, 59), -60, 0),
    ("2024-03-31T01:00:00", (2024, 3, 31, 7, 3, 0, 0), -120, 0x80),
    ("2024-10-27T00:59:59", (2024, 10, 27, 7, 2, 59, 59), -120, 0x80),
    ("2024-10-27T01:00:00", (2024, 10, 27, 7, 2, 0, 0), -60, 0),
    ("2026-11-24T12:00:00", (2026, 11, 24, 2, 13, 0, 0), -60, 0),
])
def test_live_clock_follows_the_daylight_saving_rules(
        bundled: MeterModel, utc: str, local: tuple[int, ...], deviation: int,
        status: int) -> None:
    meter = Meter(bundled, live=True, started=START)
    now = datetime.fromisoformat(utc).replace(tzinfo=UTC)
    value = read(meter, 8, "0.0.1.0.0.255", 2, now)
    assert isinstance(value, Data)
    year, month, day, weekday, hour, minute, second = local
    assert value.as_date_time() == DateTime(year, month, day, weekday, hour, minute, second, 0,
                                            deviation, ClockStatus(status))
    assert read(meter, 8, "0.0.1.0.0.255", 4, now) == Data.uint8(status)
    # Without --live the clock and its status are the model's.
    assert read(Meter(bundled), 8, "0.0.1.0.0.255", 4, now) == Data.uint8(0x80)


def test_dst_rules_southern_hemisphere_and_disabled() -> None:
    clock = {"class": "clock", "obis": "0.0.1.0.0.255", "time": "2024-01-10T12:00:00+11:00",
             "utc_offset": 600,
             "dst": {"begin": {"hex": "FFFF0A0107020000008000FF"},   # first Sunday of October
                     "end": {"hex": "FFFF040107030000008000FF"}}}   # first Sunday of April
    meter = Meter(model_of(clock), live=True, started=START)
    summer = read(meter, 8, "0.0.1.0.0.255", 2, datetime(2024, 1, 10, 1, 0, tzinfo=UTC))
    winter = read(meter, 8, "0.0.1.0.0.255", 2, datetime(2024, 7, 10, 1, 0, tzinfo=UTC))
    assert isinstance(summer, Data) and isinstance(winter, Data)
    assert summer.as_date_time().deviation == -660
    assert winter.as_date_time().deviation == -600
    off = Meter(model_of({**clock, "dst": {"enabled": False}}), live=True, started=START)
    value = read(off, 8, "0.0.1.0.0.255", 2, datetime(2024, 1, 10, 1, 0, tzinfo=UTC))
    assert isinstance(value, Data) and value.as_date_time().deviation == -600
    assert read(off, 8, "0.0.1.0.0.255", 8) == Data.boolean(False)


def test_live_values_are_deterministic_and_energy_only_grows(bundled: MeterModel) -> None:
    meter = Meter(bundled, live=True, started=START)
    assert read(meter, 3, "1.0.1.8.0.255", 2) == Data.uint32(123456)
    energies: list[int] = []
    for s in range(0, 7200, 97):
        energy = read(meter, 3, "1.0.1.8.0.255", 2, START + timedelta(seconds=s))
        assert isinstance(energy, Data) and isinstance(energy.value, int)
        energies.append(energy.value)
    assert energies == sorted(energies)
    assert energies[-1] == 123456 + (125 * 7178) // 3600
    later = START + timedelta(seconds=1234.5)
    again = Meter(bundled, live=True, started=START)
    for obis in ("1.0.32.7.0.255", "1.0.1.7.0.255", "1.0.31.7.0.255", "1.0.14.7.0.255"):
        assert read(meter, 3, obis, 2, later) == read(again, 3, obis, 2, later)
    voltages = {read(meter, 3, "1.0.32.7.0.255", 2, START + timedelta(seconds=s)).value
                for s in range(0, 90, 7)}
    assert len(voltages) > 3
    assert all(isinstance(v, int) and 2301 - 25 <= v <= 2301 + 25 for v in voltages)
    # Without --live the base values are served whatever the time.
    static = Meter(bundled)
    assert read(static, 3, "1.0.32.7.0.255", 2, later) == Data.uint16(2301)


def test_live_value_is_clamped_to_its_type() -> None:
    model = model_of({"class": "data", "obis": "0.128.0.0.0.255", "value": {
        "type": "unsigned", "value": 250, "live": {"mode": "increase", "per_hour": 3600}}})
    meter = Meter(model, live=True, started=START)
    assert read(meter, 1, "0.128.0.0.0.255", 2, START + timedelta(hours=1)) == Data.uint8(255)


# ------------------------------------------------------------------ access, errors
def test_data_access_results(bundled: MeterModel) -> None:
    meter = Meter(bundled)
    assert read(meter, 3, "1.0.99.99.0.255", 2) is DataAccessResult.OBJECT_UNDEFINED
    assert read(meter, 1, "1.0.1.8.0.255", 2) is DataAccessResult.OBJECT_CLASS_INCONSISTENT
    assert read(meter, 3, "1.0.1.8.0.255", 4) is DataAccessResult.OBJECT_UNDEFINED
    assert read(meter, 3, "1.0.1.8.0.255", 0) is DataAccessResult.OBJECT_UNDEFINED
    assert read(meter, 3, "1.0.1.8.0.255", -1) is DataAccessResult.OBJECT_UNDEFINED
    assert read(meter, 15, "0.0.40.0.0.255", 7) is DataAccessResult.READ_WRITE_DENIED


def test_object_list_matches_the_model(bundled: MeterModel) -> None:
    meter = Meter(bundled)
    object_list = read(meter, 15, "0.0.40.0.0.255", 2)
    assert isinstance(object_list, Data)
    # It survives an encode/decode round trip unchanged.
    assert decode_data_all(encode_data(object_list)) == object_list
    entries = object_list.as_items()
    assert len(entries) == len(bundled.objects)
    for entry, obj in zip(entries, bundled.objects, strict=True):
        class_id, version, name, rights = entry.as_items()
        assert class_id == Data.uint16(obj.cls.class_id)
        assert version == Data.uint8(obj.cls.version)
        assert name == Data.octets(obj.logical_name.to_bytes())
        attributes, methods = rights.as_items()
        assert len(attributes.as_items()) == len(obj.cls.attributes)
        assert len(methods.as_items()) == len(obj.cls.methods)
        for i, item in enumerate(attributes.as_items(), start=1):
            expected = (AttributeAccess.NO_ACCESS if (obj.cls.class_id, i) == (15, 7)
                        else AttributeAccess.READ_ONLY)
            # Blue Book 4.4.3 access_selectors: a profile's buffer offers 1 (range) and 2
            # (entry); every other attribute none.
            selectors = (Data.array(Data.int8(1), Data.int8(2))
                         if (obj.cls.class_id, i) == (7, 2) else Data.null())
            assert item == Data.structure(Data.int8(i), Data.enum(int(expected)), selectors)
        for i, item in enumerate(methods.as_items(), start=1):
            assert item == Data.structure(Data.int8(i), Data.enum(0))


def test_association_attributes(bundled: MeterModel) -> None:
    meter = Meter(bundled)
    assert read(meter, 15, "0.0.40.0.0.255", 3) == Data.structure(Data.int8(16), Data.uint16(1))
    context = read(meter, 15, "0.0.40.0.0.255", 4)
    assert isinstance(context, Data)
    assert [i.value for i in context.as_items()] == [2, 16, 756, 5, 8, 1, 1]
    info = read(meter, 15, "0.0.40.0.0.255", 5)
    assert isinstance(info, Data)
    assert info.as_items()[0] == Data.bit_string(BitString(24, bytes.fromhex("001219")))
    assert info.as_items()[1] == Data.uint16(1024)
    assert read(meter, 15, "0.0.40.0.0.255", 8) == Data.enum(2)


# ------------------------------------------------------------------ the model format
def test_every_typed_value_form() -> None:
    model = model_of(
        {"class": "data", "obis": "0.128.0.0.1.255", "value": {"type": "uint64",
                                                                "value": "18446744073709551615"}},
        {"class": "data", "obis": "0.128.0.0.2.255", "value": {"type": "octet-string",
                                                                "hex": "01:02 03"}},
        {"class": "data", "obis": "0.128.0.0.3.255", "value": {"type": "date-time",
                                                                "hex": "07E8060106" "0C000000"
                                                                       "FF8880"}},
        {"class": "data", "obis": "0.128.0.0.4.255",
         "value": {"type": "date", "hex": "FFFF0CFFFF"}},
        {"class": "data", "obis": "0.128.0.0.5.255", "value": {"type": "time", "value": "06:07"}},
        {"class": "data", "obis": "1-0:99.1.0", "value": {"type": "dont-care"}},
        {"class": 3, "obis": "1.0.1.8.1.255", "value": {"type": "float64", "value": 1},
         "unit": 30, "comment": "class by id, unit by code"},
    )
    meter = Meter(model)
    assert read(meter, 1, "0.128.0.0.1.255", 2) == Data.uint64(2**64 - 1)
    assert read(meter, 1, "0.128.0.0.2.255", 2) == Data.octets(b"\x01\x02\x03")
    dt = read(meter, 1, "0.128.0.0.3.255", 2)
    assert isinstance(dt, Data) and dt.as_date_time() == DateTime(
        2024, 6, 1, 6, 12, 0, 0, 0, -120, ClockStatus(0x80))
    assert read(meter, 1, "0.128.0.0.4.255", 2) == Data.date(Date(None, 12, None, None))
    assert read(meter, 1, "0.128.0.0.5.255", 2) == Data.time(Time(6, 7, 0, 0))
    assert read(meter, 1, "1.0.99.1.0.255", 2) == Data.dont_care()
    assert read(meter, 3, "1.0.1.8.1.255", 2) == Data.float64(1.0)


def test_a_problem_names_its_path_and_value() -> None:
    problems = problems_of({"objects": [
        {"class": "register", "obis": "1.0.1.8.0.255",
         "value": {"type": "long-unsigned", "value": 70000}, "unit": "Wh"}]})
    assert len(problems) == 1
    assert "test.json: $.objects[0].value.value" in problems[0]
    assert "70000 is not allowed: must be an integer from 0 to 65535" in problems[0]


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of({"objects": [
        {"class": "register", "obis": "1.0.1.8.0.256", "value": {"type": "unsigned", "value": 1}},
        {"class": "meter", "obis": "1.0.1.8.0.255"},
        {"class": "data", "obis": "0.0.96.1.0.255", "value": {"type": "octet-string",
                                                               "hex": "0G"}},
        {"class": "data", "obis": "0.0.96.1.1.255", "value": {"type": "visible-string",
                                                               "value": "x", "live": {}}},
        {"class": "register", "obis": "1.0.2.8.0.255",
         "value": {"type": "visible-string", "value": "x"}, "unit": "m³", "scaler": 300},
        {"class": "data", "obis": "0.0.40.0.0.255", "value": {"type": "null-data"}},
        {"class": "clock", "obis": "0.0.1.0.0.255", "time": "yesterday", "dst": {"active": 1}},
        {"class": "data", "obis": "1-0:96.1.0", "value": {"type": "array", "value": [
            {"type": "unsigned", "value": 1}, {"type": "long", "value": 1}]}},
        {"class": "data", "obis": "0.0.96.1.0.255", "value": {"type": "null-data"}},
    ], "extra": 1})
    text = "\n".join(problems)
    for fragment in (
        "$.extra: unknown key",
        "$.objects[0].obis", "256",
        "$.objects[1].class: \"meter\"",
        "$.objects[2].value.hex: \"0G\"",
        "$.objects[3].value.live: unknown key",
        "$.objects[4].value.type: \"visible-string\" is not allowed: must be a numeric type",
        "$.objects[4].unit: \"m³\" is the symbol of units [13, 14]",
        "$.objects[4].scaler: 300 is not allowed: must be an integer from -128 to 127",
        "$.objects[5].obis: 0.0.40.0.0.255 is the association LN",
        "$.objects[6].time: \"yesterday\"",
        "$.objects[6].dst.active: 1 is not allowed: must be a boolean",
        "$.objects[7].value.value: the elements of an array",
        "$.objects[8].obis: 0.0.96.1.0.255 is already used by $.objects[2]",
    ):
        assert fragment in text, fragment


def test_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"objects": [\n  {"class": "data",}\n]}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.json: not valid JSON: .* line 2 column"):
        load_model(bad)
    with pytest.raises(ConfigError, match="cannot read the model"):
        load_model(tmp_path / "missing.json")
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"objects": []}), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_model(empty)
    assert "$.objects: [] is not allowed: must be a non-empty list" in info.value.problems[0]


# ------------------------------------------------------------------ the schema
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SIM_DIR / "model_schema.json").read_text("utf-8"))
    return schema


def test_the_schema_agrees_with_the_code() -> None:
    schema = _schema()
    defs = schema["$defs"]
    assert set(defs["value"]["properties"]["type"]["enum"]) == set(model_module._TYPE_NAMES)
    numeric = {name for name, t in model_module._TYPE_NAMES.items() if t in model_module._NUMERIC}
    assert set(defs["numeric_value"]["then"]["properties"]["type"]["enum"]) == numeric
    classes = defs["object"]["properties"]["class"]["enum"]
    assert set(classes) == set(CLASSES) | {c.class_id for c in CLASSES.values()}
    assert "sim/*.json" in (SIM_DIR.parent.parent / "pyproject.toml").read_text("utf-8")
    bundled_doc = json.loads(bundled_model_path().read_text("utf-8"))
    assert list(model_module._VALIDATOR.iter_errors(bundled_doc)) == []


_DATA = {"class": "data", "obis": "0.128.0.0.0.255"}


@pytest.mark.parametrize(("doc", "expected"), [
    ([1], '$: [1] is not allowed: must be a JSON object with an "objects" list'),
    ({"objects": "x"}, '$.objects: "x" is not allowed: must be a non-empty list of objects'),
    ({"objects": [5]}, "$.objects[0]: 5 is not allowed: must be an object"),
    ({"objects": [{"obis": "1.0.1.8.0.255"}]}, "$.objects[0]: missing required key 'class'"),
    ({"objects": [{"class": 15, "obis": "1.0.1.8.0.255"}]},
     "$.objects[0].class: 15 is not allowed: must be one of data, register, extended-register, "
     "demand-register, profile-generic, clock or their class ids 1, 3, 4, 5, 7, 8 (the "
     "association 0.0.40.0.0.255 is generated from the model)"),
    ({"objects": [{**_DATA, "value": {"type": "null-data"}, "vlaue": 1}]},
     "$.objects[0].vlaue: unknown key (allowed: base_name, class, name, obis, value)"),
    ({"objects": [{**_DATA, "value": {"type": "null-data", "value": 0}}]},
     "$.objects[0].value.value: unknown key (allowed: type)"),
    ({"objects": [{**_DATA, "value": {"type": "int9", "value": 0}}]},
     '$.objects[0].value.type: "int9" is not allowed: must be a data type (one of array, bcd'),
    ({"objects": [{**_DATA, "value": {"type": "uint8"}}]},
     "$.objects[0].value: missing required key 'value'"),
    ({"objects": [{**_DATA, "value": {"type": "uint8", "value": 1.0}}]},
     "$.objects[0].value.value: 1.0 is not allowed: must be an integer (or a decimal string)"),
    ({"objects": [{**_DATA, "value": {"type": "uint8", "value": "1e3"}}]},
     '$.objects[0].value.value: "1e3" is not allowed: must be an integer (or a decimal string)'),
    ({"objects": [{**_DATA, "value": {"type": "bit-string", "value": "012"}}]},
     '$.objects[0].value.value: "012" is not allowed: must be a string of 0 and 1'),
    ({"objects": [{**_DATA, "value": {"type": "octet-string", "hex": "01", "text": "a"}}]},
     '$.objects[0].value: {"type": "octet-string", "hex": "01", "text": "a"} is not allowed: '
     'must have exactly one of "value"/"hex" (hex digits) or "text" (stored as UTF-8)'),
    ({"objects": [{**_DATA, "value": {"type": "date-time", "hex": "07E8"}}]},
     '$.objects[0].value.hex: "07E8" is not allowed: must be 12 octets in hex (24 hex digits'),
    ({"objects": [{**_DATA, "value": {"type": "date-time", "clock_status": 0}}]},
     "$.objects[0].value: missing required key 'value'"),
    ({"objects": [{**_DATA, "value": {"type": "structure", "value": [
        {"type": "uint8", "value": 1, "live": {"mode": "increase", "per_hour": 1}}]}}]},
     "$.objects[0].value.value[0].live: {\"mode\": \"increase\", \"per_hour\": 1} is not "
     "allowed: only an attribute's own value may be live"),
    ({"objects": [{**_DATA, "value": {"type": "uint8", "value": 1,
                                      "live": {"mode": "increase", "per_hour": -1}}}]},
     "$.objects[0].value.live.per_hour: -1 is not allowed: must be a number of at least 0 "
     "(an increasing value only goes up)"),
    ({"objects": [{**_DATA, "value": {"type": "uint8", "value": 1,
                                      "live": {"mode": "oscillate", "amplitude": 1,
                                               "period": 0}}}]},
     "$.objects[0].value.live.period: 0 is not allowed: must be a positive number of seconds"),
    ({"objects": [{**_DATA, "value": {"type": "uint8", "value": 1,
                                      "live": {"mode": "oscillate"}}}]},
     "$.objects[0].value.live: missing required key 'amplitude'"),
    ({"objects": [{**_DATA, "value": {"type": "uint8", "value": 1, "live": {"mode": "up"}}}]},
     '$.objects[0].value.live.mode: "up" is not allowed: must be one of "increase", '
     '"oscillate"'),
    ({"objects": [{"class": "demand-register", "obis": "1.0.1.4.0.255",
                   "current_average_value": {"type": "uint8", "value": 1},
                   "last_average_value": {"type": "uint8", "value": 1}, "period": 900.0}]},
     "$.objects[0].period: 900.0 is not allowed: must be an integer"),
    ({"objects": [{"class": "clock", "obis": "0.0.1.0.0.255"}]},
     "$.objects[0]: missing required key 'time'"),
    ({"objects": [{"class": "clock", "obis": "0.0.1.0.0.255", "time": "2024-06-01T12:00:00Z",
                   "dst": {"deviation": 180}}]},
     "$.objects[0].dst.deviation: 180 is not allowed: must be an integer from -120 to 120"),
    ({"objects": [{"class": "clock", "obis": "0.0.1.0.0.255", "time": "2024-06-01T12:00:00Z",
                   "dst": {"begin": {"clock_status": 1}}}]},
     "$.objects[0].dst.begin: missing required key 'value'"),
    ({"objects": [{"class": "register", "obis": "1.0.1.8.0.255",
                   "value": {"type": "uint8", "value": 1}, "unit": 1.5}]},
     '$.objects[0].unit: 1.5 is not allowed: must be a unit symbol ("Wh", "V", ...) or code'),
    ({"objects": [{**_DATA, "value": {"type": "null-data"}}], "seed": -1},
     "$.seed: -1 is not allowed: must be an integer from 0 to 9223372036854775807"),
])
def test_the_schema_names_path_value_and_what_is_allowed(doc: Any, expected: str) -> None:
    problems = problems_of(doc)
    assert any(p.startswith(f"test.json: {expected}") for p in problems), problems


@pytest.mark.parametrize(("value", "expected"), [
    ({"type": "uint64", "value": "18446744073709551616"},
     '$.objects[0].value.value: "18446744073709551616" is not allowed: must be an integer '
     "from 0 to 18446744073709551615 (long64-unsigned)"),
    ({"type": "date", "value": "2024-13-01"},
     '$.objects[0].value.value: "2024-13-01" is not allowed: must be an ISO date'),
    ({"type": "time", "value": "25:00"},
     '$.objects[0].value.value: "25:00" is not allowed: must be an ISO time'),
    ({"type": "date-time", "value": "soon"},
     '$.objects[0].value.value: "soon" is not allowed: must be an ISO 8601 date-time'),
    ({"type": "array", "value": [{"type": "uint8", "value": 1}, {"type": "uint16", "value": 1}]},
     "$.objects[0].value.value: the elements of an array must all have the same type"),
])
def test_the_checks_after_the_schema(value: dict[str, Any], expected: str) -> None:
    problems = problems_of({"objects": [{**_DATA, "value": value}]})
    assert len(problems) == 1 and problems[0].startswith(f"test.json: {expected}"), problems


def test_nesting_is_limited() -> None:
    value: dict[str, Any] = {"type": "null-data"}
    for _ in range(17):
        value = {"type": "structure", "value": [value]}
    problems = problems_of({"objects": [{**_DATA, "value": value}]})
    assert problems == ["test.json: $.objects[0].value" + ".value[0]" * 16
                        + ".value: nested deeper than 16 levels"]


def test_schema_and_python_problems_are_reported_together() -> None:
    # A bad scaler (schema) does not hide a bad unit symbol (the table) nor a value out
    # of its type's range (A-XDR) in the same object, nor problems of other objects.
    problems = problems_of({"objects": [
        {"class": "register", "obis": "1.0.1.8.0.255", "scaler": "1",
         "value": {"type": "unsigned", "value": 256}, "unit": "furlong"},
        {"class": "data", "obis": "1.0.1.8.0.255", "value": {"type": "null-data"}},
        {"class": "data", "obis": "1.0.1.8", "value": {"type": "null-data"}},
    ]})
    assert problems == [
        'test.json: $.objects[0].scaler: "1" is not allowed: must be an integer',
        "test.json: $.objects[0].value.value: 256 is not allowed: must be an integer from 0 "
        "to 255 (unsigned)",
        'test.json: $.objects[0].unit: "furlong" is not allowed: must be a unit symbol '
        '("Wh", "V", ...) or code',
        "test.json: $.objects[1].obis: 1.0.1.8.0.255 is already used by $.objects[0]",
        "test.json: $.objects[2].obis: OBIS code '1.0.1.8' is not in the form 'A.B.C.D.E.F' "
        "(1.0.1.8.0.255) or 'A-B:C.D.E*F' (1-0:1.8.0*255, 1-0:1.8.0)",
    ]


def test_nan_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "nan.json"
    path.write_text('{"objects": [{"class": "data", "obis": "0.128.0.0.0.255", '
                    '"value": {"type": "float64", "value": NaN}}]}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"nan\.json: not valid JSON: NaN is not a JSON number"):
        load_model(path)
