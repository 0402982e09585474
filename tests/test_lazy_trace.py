"""Issue 16: traces are described only when printed or dumped, and what the CPU work
of a scan now keeps (decoded addresses, OBIS codes, descriptors) is a value, never
state.  Vectors: the frames and APDUs are this project's own (see test_xdlms.py for
their Green Book sources); what is checked is that the lazy and the eager paths say
and decode the same."""

from __future__ import annotations

from typing import Any

import pytest

from dlmsd.errors import DecodeError
from dlmsd.protocol.actions import Trace, text_of
from dlmsd.protocol.apdu import describe_apdu
from dlmsd.protocol.axdr import AxdrReader, decode_data
from dlmsd.protocol.client import LnClient
from dlmsd.protocol.hdlc_frame import Control, Frame, FrameType, HdlcAddress, crc16_x25
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.security import is_ciphered
from dlmsd.protocol.xdlms import (
    CosemAttributeDescriptor,
    CosemMethodDescriptor,
    GetRequestWithList,
    GetResponseNormal,
)
from dlmsd.trace import FrameTracer

# GET-Response-Normal, invoke-id 0xC1, data double-long-unsigned 0x01020304
GET_RESPONSE = bytes.fromhex("C401C1000601020304")


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))

    warning = info


class Counting:
    """A deferred summary that counts how often it is made."""

    def __init__(self, text: str) -> None:
        self.text, self.calls = text, 0

    def __call__(self) -> str:
        self.calls += 1
        return self.text


def test_a_quiet_tracer_makes_no_summary_until_the_recorder_is_dumped() -> None:
    log = Log()
    tracer = FrameTracer(log, False)
    frame, apdu = Counting("I(ns=0,nr=0,P)"), Counting("GET.res")
    tracer.frame("rx", b"\x7e\x7e", frame)
    tracer.apdu("rx", apdu)
    assert (frame.calls, apdu.calls, log.lines) == (0, 0, [])
    tracer.dump("test")
    assert frame.calls == 1 and apdu.calls == 0  # an APDU trace is not recorded
    assert [f["summary"] for e, f in log.lines if e == "flight_frame"] == ["I(ns=0,nr=0,P)"]


def test_a_printing_tracer_makes_each_summary_once() -> None:
    log = Log()
    tracer = FrameTracer(log, True)
    frame, apdu = Counting("SNRM(P)"), Counting("AARQ")
    tracer.frame("tx", b"\x7e\x7e", frame)
    tracer.apdu("tx", apdu)
    tracer.dump("test")
    assert (frame.calls, apdu.calls) == (1, 1)
    summaries = [f["summary"] for _e, f in log.lines if "summary" in f]
    assert summaries == ["SNRM(P)", "AARQ", "SNRM(P)"]


def test_trace_action_resolves_its_summary_once_and_compares_by_text() -> None:
    made = Counting("x")
    trace = Trace("rx", made, b"\x01")
    assert trace.describe is made and made.calls == 0
    assert trace.summary == "x" and trace.summary == "x" and made.calls == 1
    assert trace == Trace("rx", "x", b"\x01") and trace != Trace("tx", "x", b"\x01")
    assert text_of("plain") == "plain" and text_of(lambda: "made") == "made"


def test_deferred_apdu_summary_says_what_the_eager_one_said() -> None:
    client = LnClient()
    deferred = client.deferred_summary(GET_RESPONSE, "rx")
    assert deferred() == client.summary(GET_RESPONSE, "rx") == describe_apdu(GET_RESPONSE)
    assert describe_apdu(GET_RESPONSE).startswith("GET.res normal")


def test_deferred_ciphered_summary_keeps_the_plain_apdu_of_its_moment() -> None:
    client = LnClient()
    tag = next(t for t in range(256) if is_ciphered(bytes([t, 0])))
    ciphered = bytes([tag, 0])
    client.last_plain_rx = GET_RESPONSE
    deferred = client.deferred_summary(ciphered, "rx")
    client.last_plain_rx = b"\xc4\x01\xc2\x00\x00"  # the next answer, deciphered
    text = deferred()
    assert text.endswith("decrypted: " + describe_apdu(GET_RESPONSE)), text


def test_numbers_keep_their_bounds_on_the_fast_path() -> None:
    # double-long-unsigned (tag 6) with three of its four octets
    with pytest.raises(DecodeError, match=r"truncated at offset 1 reading "
                                          r"double-long-unsigned \(need 4 bytes, have 3\)"):
        decode_data(bytes.fromhex("06010203"))
    # a structure of three unsigned (tag 17): four values with the structure
    raw = bytes.fromhex("0203110111021103")
    with pytest.raises(DecodeError, match="structure of 3 values exceeds the limit of 3"):
        AxdrReader(raw, 0, "A-XDR", max_nodes=3).data("Data")
    # a compact-array (tag 19) of unsigned: each number counted as it is decoded
    compact = bytes.fromhex("1311040102030400")[:-1]
    with pytest.raises(DecodeError, match="4 values exceed the limit of 3 values"):
        AxdrReader(compact, 0, "A-XDR", max_nodes=3).data("Data")
    assert len(AxdrReader(compact, 0, "A-XDR", max_nodes=5).data("Data").value) == 4
    assert AxdrReader(raw, 0, "A-XDR", max_nodes=4).data("Data").value[2].value == 3
    with pytest.raises(DecodeError, match="unknown Data tag 200 \\(offset 0\\)"):
        decode_data(b"\xc8")


def test_decoded_values_made_once_are_still_right_and_errors_are_not_kept() -> None:
    assert Obis.from_bytes(bytes((1, 0, 1, 8, 0, 255))) == Obis(1, 0, 1, 8, 0)
    body = bytes.fromhex("A00703210D")  # control 0x0D: SREJ, not in IEC 62056-46
    rej = b"\x7e" + body + crc16_x25(body).to_bytes(2, "little") + b"\x7e"
    for _ in range(2):  # a refused control field is refused again, not remembered
        with pytest.raises(DecodeError, match="supervisory control field 0x0D"):
            Frame.from_bytes(rej)
    frame = Frame(HdlcAddress(1, 17, 2), HdlcAddress(16), Control(FrameType.SNRM, True))
    for _ in range(2):
        again = Frame.from_bytes(frame.to_bytes())
        assert again == frame and again.destination == HdlcAddress(1, 17, 2)


def test_descriptors_as_received_keep_their_kind() -> None:
    octets = bytes.fromhex("000F0000280000FF01")  # 15 / 0.0.40.0.0.255 / 1
    attribute = CosemAttributeDescriptor.from_bytes(octets)
    method = CosemMethodDescriptor.from_bytes(octets)
    assert type(attribute) is CosemAttributeDescriptor and type(method) is CosemMethodDescriptor
    assert attribute.describe() == "15/0.0.40.0.0.255/1"
    assert method.describe() == "15/0.0.40.0.0.255/m1"
    assert attribute.to_bytes() == method.to_bytes() == octets
    request = GetRequestWithList.of(attribute, CosemAttributeDescriptor(3, Obis(1, 0, 1, 8, 0), 2))
    assert GetRequestWithList.from_bytes(request.to_bytes()) == request
    with pytest.raises(DecodeError, match=r"Cosem-Attribute-Descriptor: truncated at offset 0 "
                                          r"reading descriptor \(need 9 bytes, have 8\)"):
        CosemAttributeDescriptor.from_bytes(octets[:-1])


def test_apdu_dispatch_names_the_service_only_when_it_fails() -> None:
    from dlmsd.protocol.apdu import decode_apdu
    assert isinstance(decode_apdu(GET_RESPONSE), GetResponseNormal)
    with pytest.raises(DecodeError, match=r"get-response \(0xC4\) truncated before its choice"):
        decode_apdu(b"\xc4")
    with pytest.raises(DecodeError, match=r"get-response \(0xC4\) choice 9 is not supported"):
        decode_apdu(b"\xc4\x09\xc1")


def test_signal_and_device_updates_carry_every_other_field() -> None:
    """update_signal and device_online build their states field by field (not with
    dataclasses.replace): a field added later must not be reset by them."""
    import dataclasses

    from dlmsd.signals import DeviceState, DeviceStatus, SignalState, SignalStatus, SignalTable

    # a new field must be carried by update_signal / device_online: add it there, then here
    assert [f.name for f in dataclasses.fields(SignalState)] == [
        "device_alias", "signal_alias", "signal_name", "obis", "attribute", "value", "raw",
        "unit", "status", "error", "timestamp", "stale"]
    assert [f.name for f in dataclasses.fields(DeviceState)] == [
        "device_alias", "port", "status", "error", "last_ok", "connects", "scans", "failures"]
    table = SignalTable()
    table._signals["s"] = SignalState("d", "s", "name", "1.0.1.8.0.255", 2, value=1, raw=1,
                                      unit="Wh", status=SignalStatus.ERROR, error="x",
                                      timestamp=1.0, stale=True)
    table._devices["d"] = DeviceState("d", "p", DeviceStatus.OFFLINE, "x", 1.0, 3, 4, 5)
    old_signal, old_device = table.signal("s"), table.device("d")
    new_signal = table.update_signal("s", value=2, raw=2, unit="kWh", now=2.0)
    table.device_online("d", now=2.0)
    new_device = table.device("d")
    updated = {"value", "raw", "unit", "status", "error", "timestamp", "stale"}
    for f in dataclasses.fields(SignalState):
        if f.name not in updated:
            assert getattr(new_signal, f.name) == getattr(old_signal, f.name), f.name
    assert new_signal == dataclasses.replace(old_signal, value=2, raw=2, unit="kWh",
                                             status=SignalStatus.OK, error=None,
                                             timestamp=2.0, stale=False)
    assert new_device == dataclasses.replace(old_device, status=DeviceStatus.ONLINE,
                                             error=None, last_ok=2.0, scans=5)
