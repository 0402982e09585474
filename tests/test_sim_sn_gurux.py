"""``dlms-sim --referencing SN`` as a separate process, read by gurux_dlms 1.0.203 (an
independent implementation, GPLv2, test-only) with short-name referencing
(``useLogicalNameReferencing=False``), over HDLC and the wrapper.  Values are compared
exactly with the model; gurux's renderings are those of test_sim_gurux.py.

gurux 1.0.203 cannot read an SN data-block-result at all (test_sn.py,
test_gurux_stock_bug_sn_block_transfer), so every answer here must fit one APDU: the
simulator's default max PDU (1024) holds the bundled model's object list (~780 bytes).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_sim_gurux import SimProcess, as_gurux, model_value, running

from dlmsd.protocol.axdr import DataType
from dlmsd.protocol.obis import Obis
from dlmsd.sim.model import bundled_model_path, load_model

gurux = pytest.importorskip("gurux_dlms")
from gurux_dlms.enums import Conformance as GuruxConformance  # type: ignore[import-untyped]  # noqa: E402
from gurux_dlms.objects import GXDLMSData, GXDLMSRegister  # type: ignore[import-untyped]  # noqa: E402
from interop.gurux_client import GuruxClientError, GuruxSession, read_objects  # noqa: E402

pytestmark = pytest.mark.interop

BUNDLED = load_model(bundled_model_path())
LAYOUT = BUNDLED.short_names
# Every object's (base_name, class_id, logical name), the association first.
PLACED = [(b, o.cls.class_id, str(o.logical_name)) for b, o in LAYOUT.objects]
REGISTERS = [(b, c, n) for b, c, n in PLACED if c in (3, 4, 5)]
DATA = [(b, c, n) for b, c, n in PLACED if c == 1 and n != "0.128.128.0.24.255"]
VALUE_AND_SCALER = {3: (2, 3), 4: (2, 3), 5: (2, 4)}  # the value, its scaler_unit


def base(obis: str) -> int:
    found = LAYOUT.base_name(Obis.parse(obis))
    assert found is not None
    return found


@pytest.fixture(scope="module")
def sn_sim() -> Iterator[SimProcess]:
    with running("--hdlc-port", "0", "--wrapper-port", "0", "--referencing", "SN") as sim:
        yield sim


def sn_kwargs(sim: SimProcess, kind: str) -> dict[str, Any]:
    return {**sim.kwargs(kind), "use_ln": False}


@pytest.mark.parametrize("kind", ["hdlc", "wrapper"])
def test_gurux_reads_registers_and_data_by_short_name(sn_sim: SimProcess, kind: str) -> None:
    wanted = ([(c, b, a) for b, c, _ in REGISTERS for a in VALUE_AND_SCALER[c]]
              + [(1, b, 2) for b, _, _ in DATA] + [(8, base("0.0.1.0.0.255"), 2)])
    results = read_objects("127.0.0.1", objects=wanted, **sn_kwargs(sn_sim, kind))
    names = {b: n for b, _, n in PLACED}
    for (class_id, base_name, attribute), got in zip(wanted, results, strict=True):
        want = model_value(BUNDLED, class_id, names[base_name], attribute)
        where = (names[base_name], attribute)
        assert got.error is None, (where, got.error)
        assert got.dlms_type == int(want.type), where
        assert got.value == as_gurux(want), where
    by_name = {(names[r.obis], r.attribute): r for r in results}  # type: ignore[index]
    assert by_name[("1.0.1.8.0.255", 2)].value == 123456
    assert by_name[("1.0.1.8.0.255", 3)].value == [1, 30]
    assert by_name[("1.0.32.7.0.255", 3)].value == [-1, 35]
    assert by_name[("1.0.1.4.0.255", 4)].value == [0, 27]  # demand register: attribute 4
    assert by_name[("0.128.128.0.15.255", 2)].value == 2**53 + 1
    assert by_name[("0.0.42.0.0.255", 2)].value == b"SIM0000012345678"
    assert len(results) == 2 * len(REGISTERS) + len(DATA) + 1


@pytest.mark.parametrize("kind", ["hdlc", "wrapper"])
def test_gurux_reads_the_sn_object_list_and_errors(sn_sim: SimProcess, kind: str) -> None:
    reset = base("1.0.1.8.0.255") + 0x28  # the register's method 1: no access
    listing, rights, unknown, method = read_objects(
        "127.0.0.1", objects=[(12, 0xFA00, 2), (12, 0xFA00, 3), (3, 0x1238, 2), (3, reset, 1)],
        **sn_kwargs(sn_sim, kind))
    assert listing.error is None and listing.dlms_type == int(DataType.ARRAY)
    assert [(item[0] & 0xFFFF, item[1], bytes(item[3])) for item in listing.value] == [
        (b, c, Obis.parse(n).to_bytes()) for b, c, n in PLACED]
    assert listing.value[0][:3] == [-1536, 12, 2]  # base_name long, Association SN v2
    # gurux proposes no block-transfer-with-read (1C 03 20): the ~1.4 KB
    # access_rights_list does not fit the 1024-byte PDU, so it is other-reason.
    assert rights.error == 250
    assert (unknown.error, method.error) == (4, 3)  # object-undefined, read-write-denied


@pytest.mark.parametrize("kind", ["hdlc", "wrapper"])
def test_gurux_read_list(sn_sim: SimProcess, kind: str) -> None:
    energy = GXDLMSRegister("1.0.1.8.0.255")
    energy.shortName = base("1.0.1.8.0.255")
    voltage = GXDLMSRegister("1.0.32.7.0.255")
    voltage.shortName = base("1.0.32.7.0.255")
    serial = GXDLMSData("0.0.96.1.0.255")
    serial.shortName = base("0.0.96.1.0.255")
    with GuruxSession("127.0.0.1", **sn_kwargs(sn_sim, kind)) as s:
        assert s.client.negotiatedConformance & GuruxConformance.MULTIPLE_REFERENCES
        assert s.client.negotiatedConformance & GuruxConformance.READ
        assert not s.client.negotiatedConformance & GuruxConformance.GET
        assert not (s.client.negotiatedConformance
                    & GuruxConformance.BLOCK_TRANSFER_WITH_GET_OR_READ)
        values: list[Any] = []
        for message in s.client.readList([(energy, 2), (energy, 3), (voltage, 2),
                                          (serial, 2)]):
            values += list(s.transact(message).value)
    assert values[0] == 123456
    assert [int(v) for v in values[1]] == [1, 30]
    assert values[2] == 2301
    assert bytes(values[3]) == b"12345678"


def test_gurux_sees_no_multiple_references() -> None:
    with running("--wrapper-port", "0", "--referencing", "SN", "--no-get-with-list") as sim, \
            GuruxSession("127.0.0.1", **sn_kwargs(sim, "wrapper")) as s:
        assert not s.client.negotiatedConformance & GuruxConformance.MULTIPLE_REFERENCES
        register = GXDLMSRegister("1.0.1.8.0.255")
        register.shortName = base("1.0.1.8.0.255")
        with pytest.raises(ValueError, match="multiple objects"):
            s.client.readList([(register, 2)])
        assert s.read(3, base("1.0.1.8.0.255"), 2).value == 123456


def test_gurux_ln_client_is_rejected_by_the_sn_sim(sn_sim: SimProcess) -> None:
    with pytest.raises(GuruxClientError, match="association rejected"):
        read_objects("127.0.0.1", **sn_sim.kwargs("wrapper"))  # LN
