"""``dlmsctl decode`` against frames captured from gurux_dlms (test-only).

Every vector here is made by gurux_dlms 1.0.203: its client talking to its meter
(tests/interop), its client's request builders, and its push generator
(GXDLMSNotify).  The decoded tree is checked field by field against what gurux was
asked to send or what its meter serves (tests/interop/NOTES.md, the default object
model), and, where gurux's translator handles the APDU, against its XML.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from gurux_dlms import GXByteBuffer  # type: ignore[import-untyped]
from gurux_dlms.enums import (  # type: ignore[import-untyped]
    Authentication,
    Conformance,
    DataType,
    InterfaceType,
    TranslatorOutputType,
)
from gurux_dlms.GXDLMSNotify import GXDLMSNotify  # type: ignore[import-untyped]
from gurux_dlms.GXDLMSTranslator import GXDLMSTranslator  # type: ignore[import-untyped]
from gurux_dlms.objects import GXDLMSClock, GXDLMSRegister  # type: ignore[import-untyped]
from gurux_dlms.secure import GXDLMSSecureClient  # type: ignore[import-untyped]
from interop.gurux_client import GuruxSession
from interop.gurux_meter import GuruxMeter

from dlmsd.protocol.explain import Explainer, Keys, Node, render_text
from dlmsd.protocol.hdlc_frame import Frame
from dlmsd.protocol.obis import Obis
from dlmsd.secret import Secret

pytestmark = pytest.mark.interop

BCK = bytes(range(16))  # GuruxMeter's default block cipher key
AK = bytes(range(0xD0, 0xE0))  # and authentication key
CLIENT_TITLE = b"DLMSDCLI"
PASSWORD = b"S3cr3tPw"
OBJECTS = [(3, "1.0.1.8.0.255", 2), (3, "1.0.32.7.0.255", 3), (3, "1.0.31.7.0.255", 2),
           (1, "0.0.96.1.0.255", 2), (1, "0.0.42.0.0.255", 2), (8, "0.0.1.0.0.255", 2),
           (15, "0.0.40.0.0.255", 2)]


def _frames(x: Any) -> Iterator[bytes]:
    if isinstance(x, bytes | bytearray):
        yield bytes(x)
    else:
        for item in x:
            yield from _frames(item)


def _merged(frames: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """TCP reads of one direction joined (a frame may span reads)."""
    out: list[tuple[str, bytes]] = []
    for direction, data in frames:
        if out and out[-1][0] == direction:
            out[-1] = (direction, out[-1][1] + data)
        else:
            out.append((direction, data))
    return out


def _session(interface: str, password: bytes | None = None, **kw: Any
             ) -> tuple[list[tuple[str, bytes]], list[Any]]:
    meter_kw = {"password": password} if password else {}
    if password:
        kw["password"] = password
    with GuruxMeter(interface, **meter_kw) as meter:
        with GuruxSession(meter.host, meter.port, interface=interface, trace=True,
                          server_physical=17 if interface == "hdlc" else None,
                          address_size=2 if interface == "hdlc" else None, **kw) as s:
            results = [s.read(*obj) for obj in OBJECTS]
        frames = list(s.frames)
        meter.wait_idle()
        assert meter.errors == []
    return _merged(frames), results


def _explain(frames: list[tuple[str, bytes]], keys: Keys | None = None) -> list[Node]:
    ex = Explainer(keys)
    out: list[Node] = []
    for direction, data in frames:
        out += ex.explain(data, direction=direction, device="m")
    return out


def _text(nodes: list[Node]) -> str:
    return "\n".join(line for n in nodes for line in render_text(n))


def _named(nodes: list[Node], name: str) -> list[Node]:
    return [n for root in nodes for n in root.walk() if n.name == name]


def _apdus(nodes: list[Node], prefix: str) -> list[Node]:
    return [n for root in nodes for n in root.walk() if n.name.startswith(prefix)]


def _translate(apdu: bytes) -> str:
    t = GXDLMSTranslator(TranslatorOutputType.SIMPLE_XML)
    t.comments = True
    return str(t.pduToXml(apdu))


# ============================================================ a whole HDLC session
def test_hdlc_session_low_auth_field_by_field() -> None:
    frames, results = _session("hdlc", authentication="low", password=PASSWORD)
    nodes = _explain(frames)
    text = _text(nodes)
    # gurux's meter sends its RLRE without the LLC header and with a length (0E) that
    # is shorter than its content: the one error, named where it is.
    errors = [n for r in nodes for n in r.walk() if n.error and n.name == "error"]
    assert [e.value for e in errors] == [
        "APDU: at offset 7: expected user-information (15 bytes), but 9 left"]
    assert "LLC: missing" in text

    snrm, ua = nodes[0], nodes[1]
    assert snrm.find("control").value.startswith("SNRM")  # type: ignore[union-attr]
    assert snrm.find("destination address").value == "upper 1, lower 17 (2 bytes)"  # type: ignore[union-attr]
    assert ua.find("control").value.startswith("UA")  # type: ignore[union-attr]
    assert "max info field length receive" in text

    aarq = _apdus(nodes, "AARQ")[0]
    assert aarq.find("mechanism-name").value == "low (1)"  # type: ignore[union-attr]
    assert aarq.find("application-context-name").value == (  # type: ignore[union-attr]
        "logical-name-referencing-no-ciphering")
    auth = aarq.find("calling-authentication-value")
    assert auth is not None and auth.value == "password, 8 bytes (not shown)"
    assert PASSWORD.decode() not in text and PASSWORD.hex(" ").upper() not in text
    aare = _apdus(nodes, "AARE")[0]
    assert aare.find("result").value == "accepted (0)"  # type: ignore[union-attr]
    assert aare.find("vaa-name").value == "0x0007 (LN)"  # type: ignore[union-attr]

    requests = _apdus(nodes, "get-request (normal)")
    descriptors = [r.find("cosem-attribute-descriptor") for r in requests]
    shown = [d.value for d in descriptors if d is not None]
    assert "Register 1.0.1.8.0.255 attribute 2" in shown
    assert "Clock 0.0.1.0.0.255 attribute 2" in shown
    assert "Association LN 0.0.40.0.0.255 attribute 2" in shown

    responses = _apdus(nodes, "get-response (normal)")
    values = [n.value for r in responses for n in r.walk() if n.name == "data"]
    assert f"double-long-unsigned {results[0].value}" in values  # 12345678
    assert "double-long 5123" in values
    assert "visible-string 'GRX-12345678'" in values
    notes = [n.note for r in responses for n in r.walk()]
    assert "scaler_unit: 10^-1 V (volt)" in notes
    assert "text 'GRX0000012345678'" in notes
    assert "date-time 2024-05-06T07:08:09+00:00" in notes  # the clock's octet-string

    # The object list comes segmented (max info 128) and is reassembled.
    whole = [n for n in nodes if n.note.startswith("reassembled from")]
    assert whole, "the object list should span HDLC segments"
    listing = _text(whole)
    assert "(OBIS 1.0.1.8.0.255)" in listing and "(OBIS 0.0.40.0.0.255)" in listing
    assert _apdus(nodes, "RLRQ") and _apdus(nodes, "RLRE")
    assert any((n.find("control") or Node("")).value.startswith("DISC") for n in nodes)

    # Second opinion: gurux's translator on the same APDUs agrees on each value.
    checked = 0
    for direction, data in frames:
        if direction != "rx" or not data.startswith(b"\x7e"):
            continue
        frame = Frame.from_bytes(data)
        if frame.segmented or not frame.information.startswith(b"\xe6\xe7\x00\xc4\x01"):
            continue
        apdu = frame.information[3:]
        node = Explainer().apdu(apdu, "APDU")
        xml = _translate(apdu)
        value = node.find("data")
        assert value is not None, xml
        kind, _, shown = value.value.partition(" ")
        if kind == "double-long-unsigned":
            assert f'<UInt32 Value="{int(shown):08X}" />' in xml
        elif kind == "double-long":
            assert f'<Int32 Value="{int(shown):08X}" />' in xml
        elif kind == "visible-string":
            assert shown.strip("'").encode().hex().upper() in xml or shown.strip("'") in xml
        elif kind == "octet-string" and value.note.startswith("date-time"):
            assert f'<OctetString Value="{value.raw[2:].hex().upper()}" />' in xml
        else:
            continue
        checked += 1
    assert checked >= 4
    # ... and on the attribute descriptors of the requests.
    requests_checked = 0
    for direction, data in frames:
        if direction != "tx" or not data.startswith(b"\x7e"):
            continue
        frame = Frame.from_bytes(data)
        if not frame.information.startswith(b"\xe6\xe6\x00\xc0\x01"):
            continue
        apdu = frame.information[3:]
        descriptor = Explainer().apdu(apdu, "APDU").find("cosem-attribute-descriptor")
        assert descriptor is not None
        class_id, instance, attribute = descriptor.children
        xml = _translate(apdu)
        assert f'<ClassId Value="{class_id.raw.hex().upper()}" />' in xml
        assert f'<InstanceId Value="{instance.raw.hex().upper()}" />' in xml
        assert f'<!--{instance.value}-->' in xml  # gurux's comment: the dotted OBIS
        assert f'<AttributeId Value="{attribute.raw.hex().upper()}" />' in xml
        requests_checked += 1
    assert requests_checked == len(OBJECTS)


# ============================================================ ciphered, over the wrapper
@pytest.fixture(scope="module")
def ciphered_session() -> list[tuple[str, bytes]]:
    frames, _ = _session("wrapper", authentication="gmac", security="authenc",
                         system_title=CLIENT_TITLE, block_cipher_key=BCK,
                         authentication_key=AK, invocation_counter=100)
    return frames


def test_ciphered_session_deciphered_with_keys(ciphered_session: list[tuple[str, bytes]]
                                               ) -> None:
    keys = Keys(block_cipher_key=Secret(BCK), authentication_key=Secret(AK))
    nodes = _explain(ciphered_session, keys)
    text = _text(nodes)
    # Only gurux's RLRE (length shorter than its content, see the HDLC test) is bad.
    errors = [n.value for n in _named(nodes, "error")]
    assert len(errors) == 1 and "user-information" in errors[0], text
    # The system titles come from the AARQ and AARE: none was given.
    aarq = _apdus(nodes, "AARQ")[0]
    assert aarq.find("calling-AP-title").value == (  # type: ignore[union-attr]
        f"system title {CLIENT_TITLE.hex().upper()}")
    assert aarq.find("mechanism-name").value == "high-gmac (5)"  # type: ignore[union-attr]
    ciphered = [n for r in nodes for n in r.walk()
                if n.name in ("general-glo-ciphering", "glo-get-request", "glo-get-response")]
    assert ciphered
    sc = ciphered[0].find("security control")
    assert sc is not None and "authenticated+encrypted" in sc.value
    values = [n.value for n in _apdus(nodes, "deciphered APDU") for n in n.walk()
              if n.name == "data"]
    assert "double-long-unsigned 12345678" in values
    for secret in (BCK, AK):
        assert secret.hex().upper() not in text.replace(" ", "")


def test_ciphered_session_without_keys_says_what_is_needed(
        ciphered_session: list[tuple[str, bytes]]) -> None:
    nodes = _explain(ciphered_session)
    needs = _named(nodes, "not deciphered")
    assert needs and all("--block-cipher-key" in n.value and "--authentication-key" in n.value
                         for n in needs)
    assert _named(nodes, "invocation counter")


def test_ciphered_wrong_key_is_an_error(ciphered_session: list[tuple[str, bytes]]) -> None:
    keys = Keys(block_cipher_key=Secret(bytes(16)), authentication_key=Secret(AK))
    nodes = _explain(ciphered_session, keys)
    failed = [n for n in _named(nodes, "not deciphered") if n.error]
    assert failed and "authentication tag" in failed[0].value


# ============================================================ gurux's request builders
def _client(ln: bool = True) -> Any:
    c = GXDLMSSecureClient(ln, 16, 1, Authentication.NONE, None, InterfaceType.WRAPPER)
    c.negotiatedConformance |= (Conformance.MULTIPLE_REFERENCES | Conformance.READ
                                | Conformance.WRITE)
    return c


def _one(frames: Any) -> Node:
    (raw,) = list(_frames(frames))
    (node,) = Explainer().explain(raw)
    assert not node.error, "\n".join(render_text(node))
    assert node.name == "wrapper frame"
    return node.children[-1]


def test_gurux_set_request_normal() -> None:
    reg = GXDLMSRegister("1.0.1.8.0.255")
    reg.value = 1234
    apdu = _one(_client().write(reg, 2))
    assert apdu.name == "set-request (normal)"
    assert apdu.find("cosem-attribute-descriptor").value == (  # type: ignore[union-attr]
        "Register 1.0.1.8.0.255 attribute 2")
    assert apdu.find("value").value.endswith(" 1234")  # type: ignore[union-attr]


def test_gurux_action_request_normal() -> None:
    reg = GXDLMSRegister("1.0.1.8.0.255")
    apdu = _one(_client().method(reg, 1, 0, DataType.INT8))
    assert apdu.name == "action-request (normal)"
    assert apdu.find("cosem-method-descriptor").value == (  # type: ignore[union-attr]
        "Register 1.0.1.8.0.255 method 1")
    assert apdu.find("method-invocation-parameters").value == "integer 0"  # type: ignore[union-attr]


def test_gurux_get_request_with_list() -> None:
    reg, clock = GXDLMSRegister("1.0.1.8.0.255"), GXDLMSClock("0.0.1.0.0.255")
    apdu = _one(_client().readList([(reg, 2), (clock, 2)]))
    assert apdu.name == "get-request (with-list)"
    assert apdu.find("attribute count").value == "2"  # type: ignore[union-attr]
    shown = [n.value for n in apdu.walk() if n.name == "cosem-attribute-descriptor"]
    assert shown == ["Register 1.0.1.8.0.255 attribute 2", "Clock 0.0.1.0.0.255 attribute 2"]


def test_gurux_sn_read_and_write_requests() -> None:
    reg = GXDLMSRegister("1.0.1.8.0.255")
    reg.shortName = 0x100
    reg.value = 5
    read = _one(_client(ln=False).read(reg, 2))
    assert read.name == "read-request"
    assert read.find("variable-name").value == "0x0108"  # type: ignore[union-attr]
    write = _one(_client(ln=False).write(reg, 2))
    assert write.name == "write-request"
    assert write.find("variable-name").value == "0x0108"  # type: ignore[union-attr]
    assert write.find("value [0]").value == "double-long 5"  # type: ignore[union-attr]


def test_gurux_meter_answers_set_and_action() -> None:
    """SET and ACTION on gurux's meter: its set-response and action-response."""
    with GuruxMeter("wrapper") as meter:
        with GuruxSession(meter.host, meter.port, interface="wrapper", trace=True) as s:
            reg = GXDLMSRegister("1.0.1.8.0.255")
            reg.value = 1
            s.transact(s.client.write(reg, 2))
            s.transact(s.client.method(reg, 1, 0, DataType.INT8))
        frames = _merged(list(s.frames))
    nodes = _explain(frames)
    set_response = _apdus(nodes, "set-response (normal)")[0]
    action_response = _apdus(nodes, "action-response (normal)")[0]
    result = set_response.find("result")
    assert result is not None
    dar = int(result.raw[0])
    assert result.value.endswith(f"({dar})")
    (raw,) = [d for direction, d in frames if direction == "rx" and d[8:9] == b"\xc5"]
    xml = _translate(raw[8:])
    assert "<SetResponseNormal>" in xml
    word = "".join(w.capitalize() for w in result.value.split(" (")[0].split("-"))
    assert f'<Result Value="{word}" />' in xml
    single = action_response.find("single-response")
    assert single is not None and single.find("result") is not None


# ============================================================ pushes (GXDLMSNotify)
PUSH_TIME = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
BODY = bytes.fromhex("020206000004D209060100010800FF")  # {1234, 1.0.1.8.0.255}


def test_gurux_data_notification_over_the_wrapper() -> None:
    notify = GXDLMSNotify(True, 16, 1, InterfaceType.WRAPPER)
    (raw,) = _frames(notify.generateDataNotificationMessages(PUSH_TIME, GXByteBuffer(BODY)))
    (frame,) = Explainer().explain(raw)
    apdu = frame.children[-1]
    assert apdu.name == "data-notification"
    assert apdu.find("date-time").value == "2024-05-06T07:08:09+00:00"  # type: ignore[union-attr]
    iid = apdu.find("long-invoke-id-and-priority")
    assert iid is not None and iid.value.startswith("long-invoke-id 1,")
    body = apdu.find("notification-body")
    assert body is not None and body.children[1].note == "OBIS 1.0.1.8.0.255"
    xml = _translate(raw[8:])
    assert '<DateTime Value="07E80506FF07080900000000" />' in xml
    assert '<UInt32 Value="000004D2" />' in xml and body.children[0].value.endswith("1234")


def test_gurux_general_block_transfer_push_over_hdlc() -> None:
    """A push too long for one PDU: general-block-transfer blocks in HDLC frames,
    themselves split into segments (gurux's max info 128)."""
    notify = GXDLMSNotify(True, 16, 1, InterfaceType.HDLC)
    notify.settings.negotiatedConformance |= Conformance.GENERAL_BLOCK_TRANSFER
    notify.settings.maxPduSize = 128
    payload = bytes(range(256)) + bytes(44)
    frames = list(_frames(notify.generateDataNotificationMessages(
        PUSH_TIME, GXByteBuffer(b"\x09\x82\x01\x2c" + payload))))
    assert len(frames) > 3
    nodes = Explainer().explain(b"".join(frames))
    assert not [n for r in nodes for n in r.walk() if n.error]
    blocks = _apdus(nodes, "general-block-transfer")
    assert [b.find("block-number").value for b in blocks] == ["1", "2", "3"]  # type: ignore[union-attr]
    (push,) = [n for r in nodes for n in r.walk()
               if n.note == "reassembled from the general-block-transfer blocks"]
    assert push.name == "data-notification"
    assert push.find("date-time").value == "2024-05-06T07:08:09+00:00"  # type: ignore[union-attr]
    body = push.find("notification-body")
    assert body is not None and body.raw == b"\x09\x82\x01\x2c" + payload


def test_gurux_ciphered_data_notification() -> None:
    notify = GXDLMSNotify(True, 16, 1, InterfaceType.WRAPPER)
    notify.settings.cipher = GXDLMSSecureClient(True).ciphering
    ciph = notify.settings.cipher
    from gurux_dlms.enums import Security  # type: ignore[import-untyped]

    ciph.security = Security.AUTHENTICATION_ENCRYPTION
    ciph.systemTitle = bytearray(b"GRX12345")
    ciph.blockCipherKey = bytearray(BCK)
    ciph.authenticationKey = bytearray(AK)
    ciph.invocationCounter = 7
    (raw,) = _frames(notify.generateDataNotificationMessages(PUSH_TIME, GXByteBuffer(BODY)))
    keys = Keys(block_cipher_key=Secret(BCK), authentication_key=Secret(AK),
                system_titles=(b"GRX12345",))
    (frame,) = Explainer(keys).explain(raw)
    text = "\n".join(render_text(frame))
    assert not frame.error, text
    assert re.search(r"invocation counter: 7\b", text)
    (inner,) = _apdus([frame], "deciphered APDU")
    assert inner.children[0].name == "data-notification"
    assert inner.value == f"system title {b'GRX12345'.hex().upper()}"
    assert "OBIS 1.0.1.8.0.255" in text and "2024-05-06T07:08:09+00:00" in text


# ============================================================ SN: gurux's client, dlms-sim
def test_gurux_sn_client_session_read_responses() -> None:
    """gurux's SN client reads ``dlms-sim --referencing SN``: its ReadRequests and the
    ReadResponses, with the values gurux decoded as the second opinion."""
    from test_sim_gurux import running

    from dlmsd.sim.model import bundled_model_path, load_model

    layout = load_model(bundled_model_path()).short_names
    energy = layout.base_name(Obis.parse("1.0.1.8.0.255"))
    assert energy is not None
    with running("--wrapper-port", "0", "--referencing", "SN") as sim:
        with GuruxSession("127.0.0.1", port=sim.ports["wrapper"], interface="wrapper",
                          use_ln=False, trace=True) as s:
            value = s.read(3, energy, 2)
            scaler = s.read(3, energy, 3)
        frames = _merged(list(s.frames))
    nodes = _explain(frames)
    assert not _named(nodes, "error"), _text(nodes)
    requests = _apdus(nodes, "read-request")
    names = [n.value for r in requests for n in r.walk() if n.name == "variable-name"]
    assert f"0x{energy + 8:04X}" in names and f"0x{energy + 16:04X}" in names
    responses = _apdus(nodes, "read-response")
    data = [n for r in responses for n in r.walk() if n.name == "data"]
    assert f"double-long-unsigned {value.value}" in [d.value for d in data]
    scaler_unit = [d for d in data if d.note.startswith("scaler_unit")]
    assert scaler_unit and scaler_unit[0].note == (
        f"scaler_unit: 10^{scaler.value[0]} Wh (watt-hour)")


# ============================================================ blocks, lists, rejections
def test_gurux_datablocks_with_list_and_rejected_association() -> None:
    with GuruxMeter("wrapper", max_pdu=256) as meter:
        with GuruxSession(meter.host, meter.port, interface="wrapper", trace=True,
                          max_pdu=256) as s:
            listing = s.read(15, "0.0.40.0.0.255", 2)
            reg, clock = GXDLMSRegister("1.0.1.8.0.255"), GXDLMSClock("0.0.1.0.0.255")
            s.transact(list(_frames(s.client.readList([(reg, 2), (clock, 2)]))))
        frames = _merged(list(s.frames))
        rejected = GuruxSession(meter.host, meter.port, interface="wrapper", trace=True,
                                authentication="low", password=b"wrong")
        with pytest.raises(Exception, match="rejected"):
            rejected.open()
        rejected.close()
        frames += _merged(list(rejected.frames))
    nodes = _explain(frames)

    # The object list, in GET-Response-With-Datablock blocks of at most 256 bytes.
    blocks = _apdus(nodes, "get-response (with-datablock)")
    assert len(blocks) >= 2
    assert [b.find("block-number").value for b in blocks] == [  # type: ignore[union-attr]
        str(i) for i in range(1, len(blocks) + 1)]
    (whole,) = [n for r in nodes for n in r.walk() if n.name.startswith("GET data reassembled")]
    entries = whole.find("data")
    assert entries is not None and entries.value == f"array, {len(listing.decoded)} elements"
    logical_names = [c.children[2].note for c in entries.children]
    assert logical_names == [f"OBIS {o['obis']}" for o in listing.decoded]
    classes = {1: "Data", 3: "Register", 8: "Clock", 15: "Association LN"}
    assert [c.note for c in entries.children] == [
        f"{classes[o['class_id']]} {o['obis']}" for o in listing.decoded]

    (response,) = _apdus(nodes, "get-response (with-list)")
    assert response.find("result count").value == "2"  # type: ignore[union-attr]
    first = response.find("[0]")
    assert first is not None and first.find("data").value == (  # type: ignore[union-attr]
        "double-long-unsigned 12345678")
    second = response.find("[1]")
    assert second is not None
    assert second.find("data").note == "date-time 2024-05-06T07:08:09+00:00"  # type: ignore[union-attr]

    aare = _apdus(nodes, "AARE")[-1]
    assert aare.find("result").value == "rejected-permanent (1)"  # type: ignore[union-attr]
    assert aare.find("result-source-diagnostic").value == (  # type: ignore[union-attr]
        "acse-service-user: authentication-failure (13)")
    aarq = _apdus(nodes, "AARQ")[-1]
    assert aarq.find("calling-authentication-value").value == (  # type: ignore[union-attr]
        "password, 5 bytes (not shown)")
    assert b"wrong".hex(" ").upper() not in _text([aarq])


def test_gurux_hls_and_glo_ciphering_without_general_protection() -> None:
    frames, _ = _session("wrapper", authentication="high", password=b"0123456789ABCDEF")
    nodes = _explain(frames)
    aarq = _apdus(nodes, "AARQ")[0]
    challenge = aarq.find("calling-authentication-value")
    assert challenge is not None and challenge.value.startswith("challenge, ")
    assert aarq.find("mechanism-name").value == "high (2)"  # type: ignore[union-attr]
    aare = _apdus(nodes, "AARE")[0]
    assert aare.find("responding-authentication-value").value.startswith(  # type: ignore[union-attr]
        "challenge, ")
    # HLS pass 3/4: ACTION reply_to_HLS_authentication on the association.
    action = _apdus(nodes, "action-request (normal)")[0]
    assert action.find("cosem-method-descriptor").value == (  # type: ignore[union-attr]
        "Association LN 0.0.40.0.0.255 method 1")

    frames, _ = _session("wrapper", authentication="gmac", security="authenc",
                         system_title=CLIENT_TITLE, block_cipher_key=BCK,
                         authentication_key=AK, general_protection=False)
    keys = Keys(block_cipher_key=Secret(BCK), authentication_key=Secret(AK))
    nodes = _explain(frames, keys)
    assert _apdus(nodes, "glo-get-request") and _apdus(nodes, "glo-get-response")
    values = [n.value for d in _apdus(nodes, "deciphered APDU") for n in d.walk()
              if n.name == "data"]
    assert "double-long-unsigned 12345678" in values
