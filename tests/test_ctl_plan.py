"""The pure parts of dlmsctl discover and probe: OBIS names, the object list with its
access rights, the SAP assignment, the generated configuration, the probe plan."""

from __future__ import annotations

import ast
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dlmsd.config import parse_config
from dlmsd.ctl.plan import (
    CosemObject,
    Discovery,
    ObjectValue,
    access_text,
    generate_config,
    parse_objects,
    parse_sap_assignment,
    probe_plan,
)
from dlmsd.errors import DecodeError
from dlmsd.protocol.axdr import Data, decode_data_all, encode_data
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.obis_names import class_name, obis_name

ROOT = Path(__file__).resolve().parent.parent

# IEC 62056-6-1:2017 6.4 / Blue Book 7.5 (electricity) and 7.4 (abstract objects): the
# codes every meter has, with the names those clauses give them.
NAMES = [
    ("1.0.1.8.0.255", "Active energy import (+A), total"),
    ("1.0.1.8.1.255", "Active energy import (+A), tariff 1"),
    ("1.0.2.8.0.255", "Active energy export (-A), total"),
    ("1.0.3.8.0.255", "Reactive energy import (+R), total"),
    ("1.0.5.8.0.255", "Reactive energy QI (+Ri), total"),
    ("1.0.21.8.0.255", "Active energy import L1 (+A), total"),
    ("1.0.1.7.0.255", "Active power import (+P)"),
    ("1.0.21.7.0.255", "Active power import L1 (+P)"),
    ("1.0.32.7.0.255", "Voltage L1"),
    ("1.0.52.7.0.255", "Voltage L2"),
    ("1.0.72.7.0.255", "Voltage L3"),
    ("1.0.31.7.0.255", "Current L1"),
    ("1.0.91.7.0.255", "Current, neutral (L0)"),
    ("1.0.13.7.0.255", "Power factor"),
    ("1.0.14.7.0.255", "Supply frequency"),
    ("1.0.1.6.0.255", "Active power import (+P), maximum 1, total"),
    ("1.0.1.4.0.255", "Active power import (+P), current average 1, total"),
    ("1.0.1.8.0.101", "Active energy import (+A), total, billing period 101"),
    ("1.1.1.8.0.255", "Active energy import (+A), total, channel 1"),
    ("1.0.0.2.0.255", "Active firmware identifier"),
    ("1.0.99.1.0.255", "Load profile 1"),
    ("0.0.1.0.0.255", "Clock"),
    ("0.0.40.0.0.255", "Current association"),
    ("0.0.40.0.3.255", "Association 3"),
    ("0.0.41.0.0.255", "SAP assignment"),
    ("0.0.42.0.0.255", "COSEM logical device name"),
    ("0.0.43.1.0.255", "Invocation counter, security setup 0"),
    ("0.0.96.1.0.255", "Device ID 1 (serial number)"),
    ("0.0.96.1.1.255", "Device ID 2"),
    ("0.0.96.9.0.255", "Ambient temperature"),
    ("0.0.25.9.0.255", "Push setup"),
]


@pytest.mark.parametrize(("code", "name"), NAMES)
def test_obis_names(code: str, name: str) -> None:
    assert obis_name(Obis.parse(code)) == name


@pytest.mark.parametrize("code", ["7.0.1.8.0.255", "1.0.1.99.0.255", "0.128.128.0.0.255",
                                  "1.0.200.7.0.255", "0.0.96.1.12.255"])
def test_unknown_codes_get_no_name(code: str) -> None:
    assert obis_name(Obis.parse(code)) == ""


def test_class_names() -> None:
    assert class_name(3) == "Register" and class_name(15) == "Association LN"
    assert class_name(9999) == "class 9999"


def _ln_element(class_id: int, version: int, obis: str,
                attributes: list[tuple[int, int]], methods: list[tuple[int, Any]]) -> Data:
    """Blue Book 4.4.3 object_list_element with access_rights."""
    return Data.structure(
        Data.uint16(class_id), Data.uint8(version), Data.octets(Obis.parse(obis).to_bytes()),
        Data.structure(
            Data.array(*[Data.structure(Data.int8(a), Data.enum(m), Data.null())
                         for a, m in attributes]),
            Data.array(*[Data.structure(Data.int8(i), Data.boolean(m) if isinstance(m, bool)
                                        else Data.enum(m)) for i, m in methods])))


def test_ln_object_list_with_access_rights_both_ways() -> None:
    """Built as the Blue Book's object_list type (4.4.3), encoded to A-XDR and decoded
    again: every field survives, version-0 boolean method access included."""
    value = Data.array(
        _ln_element(3, 0, "1.0.1.8.0.255", [(1, 1), (2, 3), (3, 1)], [(1, 1)]),
        _ln_element(8, 0, "0.0.1.0.0.255", [(1, 1), (2, 6)], [(1, True), (2, False)]),
        _ln_element(1, 0, "0.0.96.1.0.255", [(1, 1), (2, 0)], []),
        _ln_element(3, 0, "1.0.1.8.0.255", [(1, 1)], []))  # a repeat: the first wins
    decoded = decode_data_all(encode_data(value))
    objects = parse_objects(decoded, short_names=False)
    assert [o.obis for o in objects] == [Obis.parse(c) for c in
                                         ("1.0.1.8.0.255", "0.0.1.0.0.255", "0.0.96.1.0.255")]
    register, clock, data = objects
    assert register.attributes == ((1, 1), (2, 3), (3, 1)) and register.methods == ((1, 1),)
    assert access_text(register) == "1:r 2:rw 3:r m1:x"
    assert access_text(clock) == "1:r 2:arw m1:x m2:-"
    assert register.readable(2) and clock.readable(2) and data.readable(2) is False
    assert data.readable(9) is None


def test_sn_object_list() -> None:
    """Blue Book 4.4.4: {base_name long, class_id, version, logical_name}: no rights."""
    value = Data.array(Data.structure(Data.int16(-1536), Data.uint16(12), Data.uint8(0),
                                      Data.octets(bytes([0, 0, 40, 0, 0, 255]))),
                       Data.structure(Data.int16(0x1000), Data.uint16(3), Data.uint8(0),
                                      Data.octets(bytes([1, 0, 1, 8, 0, 255]))))
    objects = parse_objects(decode_data_all(encode_data(value)), short_names=True)
    assert objects[0].base_name == 0xFA00 and objects[1].base_name == 0x1000
    assert objects[1].class_id == 3 and access_text(objects[1]) == "?"
    assert objects[1].readable(2) is None


@pytest.mark.parametrize(("value", "where"), [
    (Data.uint8(1), "object_list: expected an array"),
    (Data.array(Data.structure(Data.uint16(3), Data.uint8(0))), "object_list[0]: too few"),
    (Data.array(Data.structure(Data.uint16(3), Data.uint8(0), Data.octets(b"\x01\x02"))),
     "object_list[0]: logical_name is not an octet-string of 6"),
    (Data.array(Data.structure(Data.visible("x"), Data.uint8(0), Data.octets(bytes(6)))),
     "object_list[0].class_id: expected an integer"),
])
def test_bad_object_lists_name_the_element(value: Data, where: str) -> None:
    with pytest.raises(DecodeError, match=where.replace("[", r"\[").replace("]", r"\]")):
        parse_objects(value, short_names=False)


def test_sap_assignment() -> None:
    """Blue Book 4.4.5: SAP_assignment_list."""
    value = Data.array(Data.structure(Data.uint16(1), Data.octets(b"SIM0000012345678")),
                       Data.structure(Data.uint16(17), Data.octets(b"GAS0000000000001")))
    assert parse_sap_assignment(decode_data_all(encode_data(value))) == [
        (1, "SIM0000012345678"), (17, "GAS0000000000001")]
    with pytest.raises(DecodeError, match=r"SAP_assignment_list\[0\]"):
        parse_sap_assignment(Data.array(Data.structure(Data.uint16(1))))


def _item(code: str, class_id: int, value: Any, *, numeric: bool = True,
          error: str | None = None, base: int = 0) -> ObjectValue:
    return ObjectValue(CosemObject(Obis.parse(code), class_id, 0, base_name=base), value,
                       numeric=numeric, read=error is None, error=error)


DEVICE = {"name": "m", "device_alias": "m", "protocol": "DLMS", "client_address": 16,
          "ip": "127.0.0.1", "port": 4059, "mode": "DLMS-WRAPPER", "logical_address": 1}


def test_generated_configuration() -> None:
    discovery = Discovery((
        _item("1.0.1.8.0.255", 3, 1),
        _item("1.0.1.8.0.255", 3, 2),  # the same name twice: a unique alias
        _item("1.0.1.6.0.255", 4, 1), _item("1.0.1.4.0.255", 5, 1),
        _item("0.0.96.9.0.255", 1, 21),
        _item("0.0.96.1.0.255", 1, "text", numeric=False),
        _item("0.0.1.0.0.255", 8, "2024-06-01T12:00:00", numeric=False),
        _item("1.0.32.7.0.255", 3, None, error="read-write-denied"),
        _item("0.128.0.0.0.255", 1, 5),
    ))
    doc = generate_config(DEVICE, discovery)
    aliases = [s["signal_alias"] for s in doc["signals"]]
    assert aliases == ["m_active_energy_import_plus_a_total",
                       "m_active_energy_import_plus_a_total_2",
                       "m_active_power_import_plus_p_maximum_1_total",
                       "m_active_power_import_plus_p_current_average_1_total",
                       "m_ambient_temperature", "m_obis_0_128_0_0_0_255"]
    assert doc["signals"][0] == {"signal_name": "Active energy import (+A), total",
                                 "device_alias": "m",
                                 "signal_alias": "m_active_energy_import_plus_a_total",
                                 "obis": "1.0.1.8.0.255", "class_id": 3}
    assert doc["signals"][-1]["signal_name"] == "Data 0.128.0.0.0.255"
    assert doc["devices"] == [DEVICE]
    parse_config(doc)  # the daemon accepts it
    every = generate_config(DEVICE, discovery, include_all=True)
    assert [s["obis"] for s in every["signals"]][-3:] == [
        "0.0.96.1.0.255", "0.0.1.0.0.255", "0.128.0.0.0.255"]  # the unread one left out
    parse_config(every)


def test_generated_sn_signals_carry_the_short_name() -> None:
    """Attribute 2 of the object at base_name b is b + 8 (Blue Book 4.1.3 SN)."""
    doc = generate_config({**DEVICE, "type": "SN"},
                          Discovery((_item("1.0.1.8.0.255", 3, 1, base=0x1000),)))
    assert doc["signals"][0]["address"] == 0x1008


def test_probe_plan_tcp() -> None:
    plan = probe_plan(tcp=True)
    described = [a.describe() for a in plan]
    assert described[:4] == ["DLMS-WRAPPER client 16 wPort 1", "DLMS-WRAPPER client 1 wPort 1",
                             "DLMS-WRAPPER client 32 wPort 1",
                             "DLMS-HDLC client 16 server 1 (1 byte)"]
    assert len(plan) == 3 + 3 * (3 + 6 + 6)
    assert "DLMS-HDLC client 32 server logical 0 physical 17 (4 bytes)" in described
    hdlc = {(a.settings["client_address"], a.settings["logical_address"],
             a.settings["physical_address"], a.settings["address_size"])
            for a in plan if a.settings["mode"] == "DLMS-HDLC"}
    assert len(hdlc) == 45  # no combination twice
    for attempt in plan:  # every one a valid device
        parse_config({"devices": [{"name": "p", "device_alias": "p", "protocol": "DLMS",
                                   "ip": "h", "port": 1, **attempt.settings}],
                      "signals": []})


def test_probe_plan_serial_number_and_modes() -> None:
    plan = probe_plan(tcp=False, serial_number=2250259, clients=[16])
    assert plan[0].describe() == ("IEC client 16 serial-number address (SN 2250259, 4 bytes)")
    assert {a.settings["mode"] for a in plan} == {"IEC", "DLMS-HDLC"}
    assert len(plan) == 2 * (1 + 15)
    only = probe_plan(tcp=True, modes=["DLMS-WRAPPER"])
    assert [a.settings["client_address"] for a in only] == [16, 1, 32]


@pytest.mark.parametrize("name", ["plan.py"])
def test_plan_is_pure(name: str) -> None:
    """dlmsd/ctl/plan.py is part of the pure core (no I/O imports)."""
    tree = ast.parse((ROOT / "dlmsd" / "ctl" / name).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert not imported & {"asyncio", "socket", "serial", "time", "threading", "os"}


class _Context:
    """What the Discover job sees of the reader (JobContext), with a real LN client."""

    def __init__(self) -> None:
        from dlmsd.protocol.client import LnClient
        self.client = LnClient()
        self.scalers: dict[Any, Any] = {}

    def remember_scaler(self, key: Any, value: Any) -> None:  # pragma: no cover - unused
        self.scalers[key] = value

    def directory(self) -> Any:  # pragma: no cover - unused by Discover
        raise AssertionError

    def suspect(self, reason: str, *, directory: bool, scalers: Any) -> bool:
        raise AssertionError  # pragma: no cover


def test_discover_job_in_memory() -> None:
    """The job's requests and what it makes of every kind of answer: a register and its
    scaler_unit, an unreadable scaler_unit, an attribute the list says is not readable
    (not requested), a profile (not requested), a refused read, the SAP assignment."""
    from dlmsd.ctl.plan import Discover
    from dlmsd.protocol.reader import Fetch
    from dlmsd.protocol.xdlms import DataAccessResult

    object_list = Data.array(
        _ln_element(15, 1, "0.0.40.0.0.255", [(1, 1), (2, 1)], []),
        _ln_element(17, 0, "0.0.41.0.0.255", [(1, 1), (2, 1)], []),
        _ln_element(3, 0, "1.0.1.8.0.255", [(1, 1), (2, 1), (3, 1)], [(1, 1)]),
        _ln_element(3, 0, "1.0.2.8.0.255", [(1, 1), (2, 1), (3, 1)], []),
        _ln_element(1, 0, "0.0.96.1.0.255", [(1, 1), (2, 0)], []),
        _ln_element(7, 1, "1.0.99.1.0.255", [(1, 1), (2, 1)], []),
        _ln_element(1, 0, "0.0.96.9.0.255", [(1, 1), (2, 1)], []))
    job = Discover().run(_Context())  # type: ignore[arg-type]
    first = next(job)
    assert isinstance(first, Fetch) and [t.describe() for t in first.targets] == [
        "15/0.0.40.0.0.255/2"]
    second = job.send([object_list])
    assert [t.describe() for t in second.targets] == [
        "17/0.0.41.0.0.255/2", "3/1.0.1.8.0.255/2", "3/1.0.1.8.0.255/3",
        "3/1.0.2.8.0.255/2", "3/1.0.2.8.0.255/3", "1/0.0.96.9.0.255/2"]
    sap = Data.array(Data.structure(Data.uint16(1), Data.octets(b"MGMT")),
                     Data.structure(Data.uint16(17), Data.octets(b"E-METER")))
    answers = [sap, Data.uint32(123456), Data.structure(Data.int8(-2), Data.enum(30)),
               Data.uint32(5), DataAccessResult.READ_WRITE_DENIED,
               DataAccessResult.OBJECT_UNAVAILABLE]
    with pytest.raises(StopIteration) as done:
        job.send(answers)
    discovery = done.value.value
    by = {str(o.obj.obis): o for o in discovery.objects}
    assert discovery.sap_assignment == ((1, "MGMT"), (17, "E-METER"))
    assert discovery.sap_error is None
    energy = by["1.0.1.8.0.255"]
    assert (energy.value, energy.unit, energy.read) == (Decimal("1234.56"), "Wh", True)
    assert by["1.0.2.8.0.255"].error == "scaler_unit: read-write-denied (3)"
    assert by["1.0.2.8.0.255"].value == 5  # shown raw, with the error
    assert by["0.0.96.1.0.255"].error == "attribute 2 is not readable in this association"
    assert by["1.0.99.1.0.255"].error == "a profile: its buffer is not read here"
    assert by["0.0.96.9.0.255"].error == "object-unavailable (11)"
    assert by["0.0.40.0.0.255"].error == "the object list (read above)"
    assert generate_config(DEVICE, discovery)["signals"][0]["obis"] == "1.0.1.8.0.255"
    assert len(generate_config(DEVICE, discovery)["signals"]) == 1


def test_discover_job_refused_object_list() -> None:
    from dlmsd.ctl.plan import Discover
    from dlmsd.errors import DataAccessError
    from dlmsd.protocol.xdlms import DataAccessResult

    job = Discover().run(_Context())  # type: ignore[arg-type]
    next(job)
    with pytest.raises(DataAccessError, match=r"cannot read the object list .*"
                                              "read-write-denied"):
        job.send([DataAccessResult.READ_WRITE_DENIED])


def test_dlmsctl_command_group() -> None:
    """The console script's group: both subcommands, --version and -h."""
    from click.testing import CliRunner

    from dlmsd import __version__
    from dlmsd.ctl.cli import main

    runner = CliRunner()
    helped = runner.invoke(main, ["-h"])
    assert helped.exit_code == 0 and "discover" in helped.output and "probe" in helped.output
    version = runner.invoke(main, ["--version"])
    assert version.exit_code == 0 and __version__ in version.output
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dlmsctl = "dlmsd.ctl.cli:main"' in pyproject
