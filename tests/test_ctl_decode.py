"""``dlmsctl decode``: the push codecs, the input splitter, the explainer's APDU forms
and bad input, and every option of the command.

Vectors name their source: gurux_dlms 1.0.203 captures (GXDLMSNotify, recorded here as
hex), or dlmsd's own encoders (xdlms.py, sn.py, security.py) checked against gurux's
translator (GXDLMSTranslator.pduToXml) where it reads the APDU.  Frames captured from a
live gurux client and meter are in test_ctl_decode_gurux.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsd.ctl.cli import main
from dlmsd.ctl.inputs import InputError, parse_hex, parse_input
from dlmsd.errors import DecodeError
from dlmsd.protocol import security
from dlmsd.protocol.axdr import Data, encode_data
from dlmsd.protocol.explain import Explainer, Keys, Node, render_text
from dlmsd.protocol.hdlc_frame import Control, Frame, FrameType, HdlcAddress, add_llc
from dlmsd.protocol.push import DataNotification, GbtReassembler, GeneralBlockTransfer
from dlmsd.protocol.sn import InformationReportRequest, VariableName, WriteResponse
from dlmsd.protocol.xdlms import (
    ActionResponseNormal,
    ActionResult,
    ConfirmedServiceError,
    ConfirmedServiceErrorChoice,
    DataAccessResult,
    ExceptionResponse,
    ExceptionServiceError,
    GetResponseWithDatablock,
    GetResponseWithList,
    InitiateRequest,
    ServiceErrorType,
    StateError,
)
from dlmsd.secret import Secret

# gurux_dlms 1.0.203 GXDLMSNotify(True, 16, 1, WRAPPER).generateDataNotificationMessages(
#   2024-05-06T07:08:09Z, {double-long-unsigned 1234, octet-string 1.0.1.8.0.255}), APDU part.
GURUX_NOTIFICATION = bytes.fromhex(
    "0fc00000010c07e80506ff07080900000000020206000004d209060100010800ff")
# gurux_dlms 1.0.203, the same over HDLC with general-block-transfer: the last block.
GURUX_GBT_LAST = bytes.fromhex("e0810003ffff50") + bytes(80)
BCK = bytes(range(16))
AK = bytes(range(0xD0, 0xE0))
METER_TITLE = b"MTR12345"


def _one(data: bytes, **kw: object) -> Node:
    nodes = Explainer(kw.pop("keys", None)).explain(data, **kw)  # type: ignore[arg-type]
    assert len(nodes) == 1
    return nodes[0]


def _text(node: Node) -> str:
    return "\n".join(render_text(node))


def _translate(apdu: bytes) -> str:
    gurux = pytest.importorskip("gurux_dlms.GXDLMSTranslator")
    from gurux_dlms.enums import TranslatorOutputType  # type: ignore[import-untyped]

    t = gurux.GXDLMSTranslator(TranslatorOutputType.SIMPLE_XML)
    return str(t.pduToXml(apdu))


def _hdlc(apdu: bytes, *, response: bool = True, segmented: bool = False,
          llc: bool = True, ui: bool = False) -> bytes:
    info = add_llc(apdu, response=response) if llc else apdu
    dst, src = (HdlcAddress(16), HdlcAddress(1, 17, 2)) if response else (
        HdlcAddress(1, 17, 2), HdlcAddress(16))
    control = Control(FrameType.UI, False) if ui else Control(FrameType.I, True, 0, 0)
    return Frame(dst, src, control, info, segmented).to_bytes()


# ============================================================ push codecs, both ways
def test_data_notification_codec_gurux_vector() -> None:
    dn = DataNotification.from_bytes(GURUX_NOTIFICATION)
    assert dn.long_invoke_id == 1 and dn.confirmed and dn.high_priority
    stamp = dn.time_as_date_time()
    assert stamp is not None and stamp.isoformat() == "2024-05-06T07:08:09+00:00"
    assert dn.body == Data.structure(Data.uint32(1234), Data.octets(bytes.fromhex(
        "0100010800ff")))
    assert dn.to_bytes() == GURUX_NOTIFICATION
    bare = DataNotification(5, Data.uint8(7))
    assert DataNotification.from_bytes(bare.to_bytes()) == bare
    assert bare.to_bytes() == bytes.fromhex("0f00000005001107")


@pytest.mark.parametrize("bad", [GURUX_NOTIFICATION[:-1], GURUX_NOTIFICATION + b"\x00",
                                 bytes.fromhex("0f00000001050102030405" + "1107")])
def test_data_notification_codec_refuses(bad: bytes) -> None:
    with pytest.raises(DecodeError):
        DataNotification.from_bytes(bad)


def test_general_block_transfer_codec_gurux_vector() -> None:
    gbt = GeneralBlockTransfer.from_bytes(GURUX_GBT_LAST)
    assert (gbt.last_block, gbt.streaming, gbt.window, gbt.block_number,
            gbt.block_number_ack, gbt.block_data) == (True, False, 1, 3, 0xFFFF, bytes(80))
    assert gbt.to_bytes() == GURUX_GBT_LAST
    with pytest.raises(DecodeError):
        GeneralBlockTransfer.from_bytes(GURUX_GBT_LAST[:-1])


def test_gbt_reassembler_order_and_bounds() -> None:
    r = GbtReassembler(max_size=10)
    assert r.add(GeneralBlockTransfer(1, b"abc")) is None and r.pending == 1
    assert r.add(GeneralBlockTransfer(2, b"de", last_block=True)) == b"abcde"
    r.add(GeneralBlockTransfer(1, b"x"))
    with pytest.raises(DecodeError, match="out of sequence"):
        r.add(GeneralBlockTransfer(3, b"y"))
    with pytest.raises(DecodeError, match="larger than 10"):
        r.add(GeneralBlockTransfer(1, bytes(11)))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_push_codecs_decode_or_decode_error(data: bytes) -> None:
    """Any bytes decode (and what decoded encodes to an equal value) or raise
    DecodeError (A-XDR may normalise: a boolean 05 encodes as 01)."""
    for codec, tag in ((DataNotification, b"\x0f"), (GeneralBlockTransfer, b"\xe0")):
        try:
            decoded = codec.from_bytes(tag + data)
        except DecodeError:
            continue
        assert codec.from_bytes(decoded.to_bytes()) == decoded


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_explainer_never_raises(data: bytes) -> None:
    for kind in ("auto", "hdlc", "wrapper", "apdu", "data"):
        for node in Explainer().explain(data, kind=kind):
            render_text(node)
            json.dumps(node.to_json())


# ============================================================ input
@pytest.mark.parametrize("text", ["0fc0000001", "0F C0 00 00 01", "0x0f 0xc0 0x00 0x00 0x01",
                                  "0f:c0:00\n00,01", "  0fc0\r\n000001\n"])
def test_hex_forms(text: str) -> None:
    assert parse_hex(text) == bytes.fromhex("0fc0000001")


def test_hex_errors_name_the_place() -> None:
    with pytest.raises(InputError, match=r"character 4: expected a hex digit, got 'g'"):
        parse_hex("0f g0")
    with pytest.raises(InputError, match="3 hex digits"):
        parse_hex("0f0")


def test_log_text_json_and_flight_recorder() -> None:
    text = (
        "2026-12-08T02:35:37.426+00:00 [info     ] dlms_tx device=m1 "
        "hex='7E A0 07 21 21 93 8C B7 7E' port=127.0.0.1:1 size=9 summary='SNRM(P)'\n"
        "2026-12-08T02:35:37.500+00:00 [info     ] signal_update device=m1 value=1\n"
        '{"device": "m2", "hex": "7E A0 07 21 21 73 8C B7 7E", "event": "dlms_rx"}\n'
        "2026-12-08T02:35:38.000+00:00 [warning  ] flight_frame age_ms=0 device=m3 dir=tx "
        "hex='00 01' summary='x'\n")
    chunks = parse_input(text)
    # The flight recorder repeats traced frames: used only in a log without traces.
    assert [(c.direction, c.device, c.line) for c in chunks] == [("tx", "m1", 1),
                                                                 ("rx", "m2", 3)]
    assert chunks[0].data == bytes.fromhex("7EA0072121938CB77E")
    (flight,) = parse_input(text.splitlines()[3])
    assert (flight.direction, flight.device, flight.data) == ("tx", "m3", b"\x00\x01")


# ============================================================ APDU forms (dlmsd encoders)
def test_exception_response_matches_gurux_translator() -> None:
    apdu = ExceptionResponse(StateError.SERVICE_NOT_ALLOWED,
                             ExceptionServiceError.SERVICE_NOT_SUPPORTED).to_bytes()
    node = _one(apdu)
    assert node.name == "exception-response"
    assert node.find("state-error").value == "service-not-allowed (1)"  # type: ignore[union-attr]
    assert node.find("service-error").value == "service-not-supported (2)"  # type: ignore[union-attr]
    xml = _translate(apdu)
    assert '"ServiceNotAllowed"' in xml and '"ServiceNotSupported"' in xml
    counter = ExceptionResponse(StateError.SERVICE_UNKNOWN,
                                ExceptionServiceError.INVOCATION_COUNTER_ERROR, 77).to_bytes()
    assert _one(counter).find("invocation-counter").value == "77"  # type: ignore[union-attr]


def test_confirmed_service_error_matches_gurux_translator() -> None:
    apdu = ConfirmedServiceError(ConfirmedServiceErrorChoice.INITIATE_ERROR,
                                 ServiceErrorType.INITIATE, 1).to_bytes()
    node = _one(apdu)
    assert node.name == "confirmed-service-error"
    assert node.find("service").value == "initiate-error (1)"  # type: ignore[union-attr]
    assert node.find("service-error").value == "initiate (6)"  # type: ignore[union-attr]
    assert node.find("error").value == "dlms-version-too-low (1)"  # type: ignore[union-attr]
    assert '"DlmsVersionTooLow"' in _translate(apdu)


def test_get_response_with_datablock_reassembled() -> None:
    value = encode_data(Data.array(*(Data.uint16(i) for i in range(40))))
    first = GetResponseWithDatablock(False, 1, value[:50]).to_bytes()
    last = GetResponseWithDatablock(True, 2, value[50:]).to_bytes()
    ex = Explainer()
    a = ex.explain(first, device="m", direction="rx")[0]
    b = ex.explain(last, device="m", direction="rx")[0]
    assert a.name == "get-response (with-datablock)"
    assert a.find("block-number").value == "1"  # type: ignore[union-attr]
    assert a.find("GET data reassembled from 2 blocks") is None
    whole = b.find("GET data reassembled from 2 blocks")
    assert whole is not None and whole.find("data").value == "array, 40 elements"  # type: ignore[union-attr]
    assert whole.find("[39]").value == "long-unsigned 39"  # type: ignore[union-attr]


def test_get_response_with_list_and_errors() -> None:
    apdu = GetResponseWithList((Data.int8(-3), DataAccessResult.OBJECT_UNDEFINED)).to_bytes()
    node = _one(apdu)
    assert node.name == "get-response (with-list)"
    assert node.find("[0]").value == "data"  # type: ignore[union-attr]
    assert node.find("[1]").value == "object-undefined (4)"  # type: ignore[union-attr]


def test_action_response_with_return_parameters() -> None:
    apdu = ActionResponseNormal(ActionResult.SUCCESS, Data.octets(b"ok!")).to_bytes()
    node = _one(apdu)
    single = node.find("single-response")
    assert single is not None and single.value == "success (0)"
    assert single.find("data").note == "text 'ok!'"  # type: ignore[union-attr]


def test_set_request_datablock_forms() -> None:
    """SET with a first datablock and a datablock (decoded here, not by xdlms.py)."""
    first = bytes.fromhex("c102c1" "00030100010800ff02" "00" "00" "00000001" "03" "010203")
    node = _one(first)
    assert node.name == "set-request (with-first-datablock)"
    block = node.find("datablock")
    assert block is not None and block.find("raw-data").value == "3 bytes"  # type: ignore[union-attr]
    nxt = _one(bytes.fromhex("c103c1" "01" "00000002" "02" "0405"))
    assert nxt.name == "set-request (with-datablock)"
    assert nxt.find("last-block").value == "true"  # type: ignore[union-attr]
    response = _one(bytes.fromhex("c503c1" "00" "00000002"))
    assert response.name == "set-response (last-datablock)"
    assert response.find("result").value == "success (0)"  # type: ignore[union-attr]


def test_sn_write_response_and_information_report() -> None:
    wr = WriteResponse((DataAccessResult.SUCCESS, DataAccessResult.READ_WRITE_DENIED))
    node = _one(wr.to_bytes())
    assert node.name == "write-response"
    assert node.find("[1]").find("data-access-result").value == (  # type: ignore[union-attr]
        "read-write-denied (3)")
    stamp = bytes.fromhex("07e80506ff07080900000000")
    report = InformationReportRequest((VariableName(0x0108),), (Data.uint32(9),), stamp)
    node = _one(report.to_bytes())
    assert node.name == "information-report-request"
    assert node.find("current-time").note == "date-time 2024-05-06T07:08:09+00:00"  # type: ignore[union-attr]
    assert node.find("value [0]").value == "double-long-unsigned 9"  # type: ignore[union-attr]


def test_event_notification() -> None:
    apdu = bytes.fromhex("c200" "00030100010800ff02" "0600000001")
    node = _one(apdu)
    assert node.name == "event-notification-request"
    assert node.find("attribute-value").value == "double-long-unsigned 1"  # type: ignore[union-attr]
    assert "<EventNotificationRequest>" in _translate(apdu)


def test_bare_data_annotations() -> None:
    data = encode_data(Data.structure(
        Data.octets(bytes.fromhex("0100010800ff")), Data.octets(bytes.fromhex(
            "07e80506ff07080900ff8880")), Data.structure(Data.int8(-2), Data.enum(27)),
        Data.visible("abc"), Data.null()))
    node = _one(data)
    assert node.name == "A-XDR data"
    items = node.find("data").children  # type: ignore[union-attr]
    assert items[0].note == "OBIS 1.0.1.8.0.255"
    assert items[1].note == "date-time 2024-05-06T07:08:09+02:00"
    assert items[2].note == "scaler_unit: 10^-2 W (watt)"
    assert items[3].value == "visible-string 'abc'"
    assert items[4].value == "null-data"


# ============================================================ ciphering
def _glo(plain: bytes, tag: int | None = None) -> bytes:
    return security.protect(plain, security_control=0x30, system_title=METER_TITLE,
                            invocation_counter=42, block_cipher_key=BCK,
                            authentication_key=AK, tag=tag)


def test_glo_and_general_glo_deciphered_with_keys() -> None:
    plain = GetResponseWithList((Data.uint8(5),)).to_bytes()
    keys = Keys(Secret(BCK), Secret(AK), system_titles=(METER_TITLE,))
    for tag in (None, security.GENERAL_GLO_CIPHERING):
        node = _one(_glo(plain, tag), keys=keys)
        assert not node.error, _text(node)
        assert node.find("invocation counter").value == "42"  # type: ignore[union-attr]
        inner = node.find("deciphered APDU")
        assert inner is not None and inner.find("[0]").value == "data"  # type: ignore[union-attr]
        text = _text(node)
        assert BCK.hex(" ").upper() not in text and AK.hex(" ").upper() not in text


def test_ciphered_without_keys_names_what_is_needed() -> None:
    node = _one(_glo(GetResponseWithList((Data.uint8(5),)).to_bytes()))
    needs = node.find("not deciphered")
    assert needs is not None and not needs.error
    assert "--block-cipher-key" in needs.value and "--authentication-key" in needs.value
    assert "--system-title" in needs.value
    assert node.find("security control").value.startswith("0x30: suite 0")  # type: ignore[union-attr]


def test_general_ciphering_without_key_info() -> None:
    plain = ExceptionResponse(StateError.SERVICE_NOT_ALLOWED,
                              ExceptionServiceError.OTHER_REASON).to_bytes()
    general = _glo(plain, security.GENERAL_GLO_CIPHERING)
    content = general[2 + 8:]  # DB 08 <title> | length SC IC payload
    apdu = (b"\xdd" + b"\x01\x07" + b"\x08" + METER_TITLE + b"\x00" + b"\x00" + b"\x00"
            + b"\x00" + content)
    node = _one(apdu, keys=Keys(Secret(BCK), Secret(AK)))
    assert node.name == "general-ciphering"
    assert node.find("originator-system-title").value == METER_TITLE.hex().upper()  # type: ignore[union-attr]
    assert node.find("key-info present").value == "no"  # type: ignore[union-attr]
    inner = node.find("deciphered APDU")
    assert inner is not None and inner.children[0].name == "exception-response", _text(node)


# ============================================================ frames and bad input
def test_hdlc_segments_reassembled_per_direction() -> None:
    apdu = GetResponseWithList(tuple(Data.uint32(i) for i in range(30))).to_bytes()
    one = _hdlc(apdu[:60], segmented=True)
    two = _hdlc(apdu[60:], llc=False)
    nodes = Explainer().explain(one + two)
    assert [n.name for n in nodes] == ["HDLC frame", "HDLC frame 2", "get-response (with-list)"]
    assert nodes[2].note == "reassembled from 2 HDLC segments"
    assert nodes[2].find("result count").value == "30"  # type: ignore[union-attr]


def test_truncated_frame_names_offset_and_keeps_what_decoded() -> None:
    good = _hdlc(GetResponseWithList((Data.uint8(1),)).to_bytes())
    nodes = Explainer().explain(good + good[:12])
    assert not nodes[0].error and nodes[0].find("control") is not None
    error = nodes[1].find("error")
    assert error is not None and error.error
    assert error.value == (f"HDLC input: at offset {len(good) + 1}: expected the rest of an "
                           f"HDLC frame of length {len(good) - 2} ({len(good) - 12} bytes "
                           "missing)")


def test_bad_data_tag_names_offset() -> None:
    node = _one(bytes.fromhex("c401c100 0202 1101 ee".replace(" ", "")))
    error = node.find("error")
    assert error is not None
    assert error.value == "APDU: at offset 8: expected [1]: a Data tag, got 0xEE"
    assert node.find("[0]").value == "unsigned 1"  # type: ignore[union-attr]


def test_bad_fcs_is_marked() -> None:
    frame = bytearray(_hdlc(GetResponseWithList((Data.uint8(1),)).to_bytes()))
    frame[-2] ^= 0xFF
    node = _one(bytes(frame))
    fcs = node.find("FCS")
    assert fcs is not None and fcs.error and fcs.value.startswith("MISMATCH")


def test_wrapper_frame() -> None:
    apdu = GetResponseWithList((Data.uint8(1),)).to_bytes()
    frame = bytes.fromhex("00010001 0010") + len(apdu).to_bytes(2, "big") + apdu
    node = _one(frame)
    assert node.name == "wrapper frame" and node.value == f"wPort 1 -> 16, {len(apdu)} bytes"
    assert node.children[-1].name == "get-response (with-list)"


# ============================================================ the command, every option
GET_RESPONSE = "C4 01 C1 00 06 00 00 30 39"  # get-response normal, 12345


def _run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["decode", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_cli_hex_arguments_and_stdin() -> None:
    code, out, _ = _run(*GET_RESPONSE.split())
    assert code == 0 and "data: double-long-unsigned 12345  [06 00 00 30 39]" in out
    code, out2, _ = _run(stdin="0x" + GET_RESPONSE.replace(" ", "") + "\n")
    assert code == 0 and out2 == out


def test_cli_file_log_and_json(tmp_path: Path) -> None:
    log = tmp_path / "dlms.log"
    frame = _hdlc(bytes.fromhex(GET_RESPONSE)).hex(" ").upper()
    log.write_text(f"x [info     ] dlms_rx device=m1 hex='{frame}' size=1\n"
                   f'{{"event": "dlms_tx", "device": "m2", "hex": "{frame}"}}\n')
    code, out, _ = _run("-f", str(log))
    assert code == 0
    assert out.startswith("#1 rx device=m1 (line 1)\n") and "#2 tx device=m2 (line 2)" in out
    code, out, _ = _run("--file", str(log), "--json")
    doc = json.loads(out)
    assert [d["direction"] for d in doc] == ["rx", "tx"] and doc[0]["device"] == "m1"
    tree = doc[0]["decoded"][0]
    assert tree["name"] == "HDLC frame" and tree["children"][0] == {
        "name": "flag", "value": "7E", "raw": "7E", "offset": 0}


def test_cli_as_every_kind() -> None:
    code, out, _ = _run("--as", "data", "0f", "05")
    assert code == 0 and "data: integer 5" in out
    code, out, _ = _run("--as", "apdu", "0f", "05")
    assert code == 1 and "data-notification" in out
    code, out, _ = _run("--as", "auto", "0f", "05")  # no data-notification: an integer
    assert code == 0 and "(not a valid data-notification)" in out and "integer 5" in out
    wrapped = "0001 0001 0010 0002 0f05"
    code, out, _ = _run("--as", "wrapper", wrapped)
    assert code == 1 and out.startswith("wrapper frame: ")
    code, out, err = _run("--as", "hdlc", wrapped)
    assert code == 1 and "expected flag 7E at the start of an HDLC frame, got 00" in err
    code, _, err = _run("--as", "xml", wrapped)
    assert code == 2


def test_cli_keys_options_and_no_secret_in_output() -> None:
    apdu = _glo(GetResponseWithList((Data.uint8(5),)).to_bytes()).hex()
    code, out, err = _run(apdu)
    assert code == 0 and "needs --block-cipher-key" in out
    code, out, _ = _run("--block-cipher-key", BCK.hex(), "--authentication-key", AK.hex(),
                        "--system-title", METER_TITLE.hex(), apdu)
    assert code == 0 and "deciphered APDU: system title" in out and "unsigned 5" in out
    assert BCK.hex().upper() not in out.replace(" ", "").upper()
    assert AK.hex().upper() not in out.replace(" ", "").upper()
    code, out, err = _run("--block-cipher-key", "00" * 16, "--authentication-key", AK.hex(),
                          "--system-title", METER_TITLE.hex(), apdu)
    assert code == 1 and "authentication tag" in err
    code, _, err = _run("--block-cipher-key", "zz", apdu)
    assert code == 2 and "must be hex" in err
    code, _, err = _run("--system-title", "0102", apdu)
    assert code == 2 and "must be 8 bytes" in err


def test_cli_keys_from_config(tmp_path: Path) -> None:
    config = tmp_path / "dlms.json"
    config.write_text(json.dumps({
        "devices": [{"name": "M", "device_alias": "m1", "protocol": "DLMS",
                     "client_address": 1, "ip": "127.0.0.1", "port": 4059,
                     "auth": "HighGmac", "system_title": METER_TITLE.hex(),
                     "block_cipher_key": BCK.hex(), "authentication_key": AK.hex()}],
        "signals": []}))
    apdu = _glo(GetResponseWithList((Data.uint8(5),)).to_bytes()).hex()
    code, out, err = _run("-c", str(config), "--device", "m1", apdu)
    assert code == 0, out + err
    assert "unsigned 5" in out and AK.hex().upper() not in out.replace(" ", "")
    code, _, err = _run("--config", str(config), "--device", "nope", apdu)
    assert code == 2 and "no device 'nope' (devices: m1)" in err
    code, _, err = _run("--config", str(config), apdu)
    assert code == 2 and "go together" in err


def test_cli_bad_input_messages() -> None:
    code, out, err = _run("c4", "01", "c1", "00", "02", "02", "11", "01", "ee")
    assert code == 1
    assert "[0]: unsigned 1" in out  # what decoded before the error is shown
    assert "dlmsctl decode: APDU: at offset 8: expected [1]: a Data tag, got 0xEE" in err
    code, _, err = _run("c4", "0g")
    assert code == 1 and "character 5: expected a hex digit, got 'g'" in err
    code, _, err = _run(stdin="")
    assert code == 1 and "no input" in err


def test_cli_help_lists_decode() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0 and "decode" in result.output


def test_dedicated_key_from_the_initiate_request_is_used_never_shown() -> None:
    dk = bytes(range(0x40, 0x50))
    client = b"CLIENT01"
    initiate = security.protect(
        InitiateRequest(dedicated_key=dk).to_bytes(), security_control=0x30,
        system_title=client, invocation_counter=1, block_cipher_key=BCK,
        authentication_key=AK)
    answer = security.protect(
        GetResponseWithList((Data.uint8(9),)).to_bytes(), security_control=0x30,
        system_title=METER_TITLE, invocation_counter=2, authentication_key=AK,
        dedicated_key=dk, dedicated=True)
    ex = Explainer(Keys(Secret(BCK), Secret(AK), system_titles=(client, METER_TITLE)))
    first = ex.explain(initiate)[0]
    second = ex.explain(answer)[0]
    text = _text(first) + _text(second)
    assert not first.error and not second.error, text
    key = first.find("dedicated-key")
    assert key is not None and key.value.startswith("16 bytes (not shown")
    assert second.name == "ded-get-response" and "unsigned 9" in text
    assert dk.hex(" ").upper() not in text and dk.hex().upper() not in text
    # Without the initiate request, the ded- APDU says what it needs.
    alone = Explainer(Keys(Secret(BCK), Secret(AK), system_titles=(METER_TITLE,)))
    needs = alone.explain(answer)[0].find("not deciphered")
    assert needs is not None and "the dedicated key" in needs.value


def test_a_whole_dlms_log_against_dlms_sim(tmp_path: Path) -> None:
    """``dlms --once -d7 --dlms`` against dlms-sim (HDLC): every traced frame decodes,
    in order, with its direction and device, and the read value is in the tree."""
    import subprocess
    import sys

    from test_sim_gurux import running

    with running("--hdlc-port", "0") as sim:
        config = tmp_path / "dlms.json"
        config.write_text(json.dumps({
            "devices": [{"name": "M", "device_alias": "m1", "protocol": "DLMS",
                         "mode": "dlms-hdlc", "client_address": 16, "ip": "127.0.0.1",
                         "port": sim.ports["hdlc"], "logical_address": 1,
                         "physical_address": 1, "address_size": 2}],
            "signals": [{"signal_name": "E", "signal_alias": "e", "device_alias": "m1",
                         "obis": "1.0.1.8.0.255"}]}))
        command = [sys.executable, "-m", "dlmsd", "-c", str(config), "--once", "-d7",
                   "--dlms"]
        run = subprocess.run(command, capture_output=True, text=True, timeout=60)
        as_json = subprocess.run([*command, "--log-format", "json"], capture_output=True,
                                 text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert as_json.returncode == 0, as_json.stderr
    log = tmp_path / "dlms.log"
    log.write_text(run.stderr)
    code, out, err = _run("-f", str(log))
    assert code == 0, err
    headings = [line for line in out.splitlines() if line.startswith("#")]
    assert len(headings) == run.stderr.count("dlms_tx") + run.stderr.count("dlms_rx")
    assert headings[0].startswith("#1 tx device=m1") and " rx device=m1" in headings[1]
    assert "SNRM(P)" in out and "AARE" in out and "RLRE" in out
    assert "Register 1.0.1.8.0.255 attribute 2" in out
    assert "(scaler_unit: 10^" in out
    # The same session logged as JSON lines decodes to the same frames.
    json_log = tmp_path / "dlms.jsonl"
    json_log.write_text(as_json.stderr)
    code, json_out, err = _run("-f", str(json_log), "--json")
    assert code == 0, err
    doc = json.loads(json_out)
    assert len(doc) == len(headings)
    assert [d["direction"] for d in doc][:2] == ["tx", "rx"] and doc[0]["device"] == "m1"


# dlmsd's AARQ and dlms-sim's AARE in HDLC frames (a `dlms -d7 --dlms` trace).
TRACED_AARQ = bytes.fromhex(
    "7EA02C0203211094 9CE6E600601DA109060760857405080101BE10040E01000000065F1F040000721DFFFF"
    "15EA7E".replace(" ", ""))
TRACED_AARE = bytes.fromhex(
    "7EA03821020330 07C4E6E7006129A109060760857405080101A203020100A305A103020100BE10040E"
    "0800065F1F040000121904000007 04BA7E".replace(" ", ""))


def test_traced_association_frames() -> None:
    aarq = _one(TRACED_AARQ)
    assert aarq.find("proposed-dlms-version-number").value == "6"  # type: ignore[union-attr]
    assert aarq.find("client-max-receive-pdu-size").value == "65535"  # type: ignore[union-attr]
    aare = _one(TRACED_AARE)
    assert aare.find("server-max-receive-pdu-size").value == "1024"  # type: ignore[union-attr]
    assert aare.find("conformance").value == (  # type: ignore[union-attr]
        "block-transfer-with-get-or-read, multiple-references, get, set, action")


SEEDS = [TRACED_AARQ, TRACED_AARE, TRACED_AARQ[12:-3], TRACED_AARE[12:-3],
         GURUX_NOTIFICATION, GURUX_GBT_LAST]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)),
                                        max_size=4), st.integers(0, 200))
def test_explainer_never_raises_on_mutated_frames(seed: bytes, changes: list[tuple[int, int]],
                                                  cut: int) -> None:
    data = bytearray(seed)
    for at, value in changes:
        data[at % len(data)] = value
    data = data[:max(1, len(data) - cut)]
    for kind in ("auto", "apdu"):
        for node in Explainer(Keys(Secret(BCK), Secret(AK), system_titles=(METER_TITLE,))
                              ).explain(bytes(data), kind=kind):
            render_text(node)
            json.dumps(node.to_json())


def test_general_ciphering_key_info_forms() -> None:
    plain = ExceptionResponse(StateError.SERVICE_NOT_ALLOWED,
                              ExceptionServiceError.OTHER_REASON).to_bytes()
    content = _glo(plain, security.GENERAL_GLO_CIPHERING)[10:]
    head = b"\xdd" + b"\x00" + b"\x08" + METER_TITLE + b"\x00" * 3
    identified = head + b"\x01\x00\x00" + content  # identified-key, global unicast
    node = _one(identified, keys=Keys(Secret(BCK), Secret(AK)))
    assert node.find("key-id").value == "global-unicast-encryption-key (0)"  # type: ignore[union-attr]
    assert node.find("deciphered APDU") is not None, _text(node)
    wrapped = head + b"\x01\x01\x00\x02\xaa\xbb" + content  # wrapped-key
    node = _one(wrapped, keys=Keys(Secret(BCK), Secret(AK)))
    assert node.find("key-info choice").value == "wrapped-key (1)"  # type: ignore[union-attr]
    assert node.find("not deciphered").value == (  # type: ignore[union-attr]
        "wrapped and agreed keys are not supported")


def test_push_in_segmented_ui_frames() -> None:
    """A data-notification longer than one frame, pushed in UI frames (no GBT)."""
    body = Data.array(*(Data.structure(Data.octets(bytes.fromhex("0100010800ff")),
                                       Data.uint32(i)) for i in range(20)))
    push = DataNotification(0x40000007, body, bytes.fromhex("07e80506ff07080900800000")
                            ).to_bytes()
    frames = (_hdlc(push[:100], segmented=True, ui=True)
              + _hdlc(push[100:200], segmented=True, ui=True, llc=False)
              + _hdlc(push[200:], ui=True, llc=False))
    nodes = Explainer().explain(frames)
    assert [n.find("control").value for n in nodes[:3]] == ["UI()"] * 3  # type: ignore[union-attr]
    whole = nodes[3]
    assert whole.name == "data-notification"
    assert whole.note == "reassembled from 3 HDLC segments"
    assert whole.find("date-time").value == "2024-05-06T07:08:09"  # type: ignore[union-attr]
    assert whole.find("long-invoke-id-and-priority").value == (  # type: ignore[union-attr]
        "long-invoke-id 7, confirmed, priority normal (0x40000007)")
    assert whole.find("[19]").find("[1]").value == "double-long-unsigned 19"  # type: ignore[union-attr]


def test_input_is_bounded() -> None:
    from dlmsd.protocol.explain import MAX_INPUT

    (node,) = Explainer().explain(bytes(MAX_INPUT + 1))
    assert node.error and node.value == f"input of {MAX_INPUT + 1} bytes exceeds {MAX_INPUT}"


def test_segments_kept_per_sender_when_the_direction_is_unknown() -> None:
    """Bare hex of both directions: a client frame between two segments of the meter's
    answer does not join them."""
    answer = GetResponseWithList(tuple(Data.uint32(i) for i in range(30))).to_bytes()
    request = _hdlc(bytes.fromhex("c001c1000f0000280000ff0200"), response=False)
    stream = _hdlc(answer[:60], segmented=True) + request + _hdlc(answer[60:], llc=False)
    nodes = Explainer().explain(stream)
    assert nodes[1].find("get-request (normal)") is not None
    assert nodes[-1].name == "get-response (with-list)" and not nodes[-1].error


# Green Book 9.5 (xDLMS ASN.1), encoded by hand in A-XDR: the forms the captures above
# do not reach.  (name of the APDU node, a field, its meaning)
DESCRIPTOR = "00030100010800ff02"  # Register 1.0.1.8.0.255 attribute 2
METHOD = "00030100010800ff01"  # Register 1.0.1.8.0.255 method 1
FORMS = [
    ("c002c100000005", "get-request (next)", "block-number", "5"),
    ("c104c102" + DESCRIPTOR + "00" + DESCRIPTOR.replace("02", "03", 1)[:-2] + "0300"
     + "02" + "1101" + "1102", "set-request (with-list)", "value [1]", "unsigned 2"),
    ("c105c101" + DESCRIPTOR + "00" + "01" + "00000001" + "02" + "0a0b",
     "set-request (with-list-and-first-datablock)", "block-number", "1"),
    ("c502c100000007", "set-response (datablock)", "block-number", "7"),
    ("c504c1020003" + "00000009", "set-response (last-datablock-with-list)",
     "result [1]", "read-write-denied (3)"),
    ("c505c10200" + "04", "set-response (with-list)", "result [1]", "object-undefined (4)"),
    ("c302c100000002", "action-request (next-pblock)", "block-number", "2"),
    ("c303c101" + METHOD + "01" + "0f05", "action-request (with-list)",
     "method-invocation-parameters [0]", "integer 5"),
    ("c304c1" + METHOD + "00" + "00000001" + "02" + "0f01",
     "action-request (with-first-pblock)", "raw-data", "2 bytes"),
    ("c305c101" + METHOD + "01" + "00000001" + "01" + "ff",
     "action-request (with-list-and-first-pblock)", "last-block", "true"),
    ("c306c1" + "01" + "00000002" + "01" + "ff", "action-request (with-pblock)",
     "block-number", "2"),
    ("c702c1" + "01" + "00000003" + "01" + "ff", "action-response (with-pblock)",
     "block-number", "3"),
    ("c703c102" + "0000" + "0b00", "action-response (with-list)", "[1]",
     "object-unavailable (11)"),
    ("c704c100000004", "action-response (next-pblock)", "block-number", "4"),
    ("0c03" + "001101" + "030002" + "02" + "01" + "0003" + "03" + "010203",
     "read-response", "[2]", "data-block-result"),
    ("050204" + "0108" + "01" + "1105" + "0500 03", "read-request", "[1]",
     "block-number-access"),
    ("160102" + "0108" + "01" + "1107", "unconfirmed-write-request", "value [0]",
     "unsigned 7"),
    ("0d0102" + "0003", "write-response", "[0]", "block-number"),
]


@pytest.mark.parametrize(("hex_", "name", "field", "meaning"), FORMS,
                         ids=[f[1] for f in FORMS])
def test_apdu_forms(hex_: str, name: str, field: str, meaning: str) -> None:
    node = _one(bytes.fromhex(hex_.replace(" ", "")), kind="apdu")
    assert not any(n.error for n in node.walk()), _text(node)
    assert node.name == name
    found = node.find(field)
    assert found is not None and found.value == meaning, _text(node)


def test_general_ded_ciphering_with_the_configured_dedicated_key() -> None:
    dk = bytes(range(0x60, 0x70))
    apdu = security.protect(GetResponseWithList((Data.uint8(3),)).to_bytes(),
                            security_control=0x30, system_title=METER_TITLE,
                            invocation_counter=9, authentication_key=AK, dedicated_key=dk,
                            tag=security.GENERAL_DED_CIPHERING)
    node = _one(apdu, keys=Keys(Secret(BCK), Secret(AK), dedicated_key=Secret(dk)))
    assert node.name == "general-ded-ciphering" and not node.error, _text(node)
    assert node.find("system-title").value == METER_TITLE.hex().upper()  # type: ignore[union-attr]
    assert "unsigned 3" in _text(node)


def test_the_readme_example_prints_what_the_readme_shows() -> None:
    """README, "Field tools": the hex of the first command, and the tree it shows."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Field tools: `dlmsctl`")[1]
    command = next(line for line in section.splitlines() if line.startswith("dlmsctl decode 7E"))
    shown = section.split("The first prints")[1].split("```")[1].strip("\n")
    code, out, err = _run(*command.split()[2:])
    assert code == 0, err
    assert out.rstrip("\n") == shown
