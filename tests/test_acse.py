"""ACSE APDUs (AARQ, AARE, RLRQ, RLRE), the xDLMS initiate PDUs and Conformance.

Vector sources (each vector below names one of these):

* GB: the DLMS UA Green Book (DLMS UA 1000-2 Ed. 10) encoding examples of AARQ/AARE,
  as quoted byte for byte in u9n/dlms-cosem ``tests/test_asce/test_aarq.py`` (GB p.444),
  ``test_aare.py`` and ``test_conformance.py`` (GB p.437) - read for reference only, no
  code taken.  The LLS AARQ also appears with an ASN.1 decoder listing in
  milanbella/gocosem ``asn1_test.go``.
* SPODES: a real meter session (SPODES meter KPZ101000017410, HDLC information fields)
  logged in the test data of the PyPI package DLMS_Firmware_updater 0.2.0, found with
  the code index.
* GURUX: bytes produced by gurux_dlms 1.0.203 in this venv.
* OURS: computed by us from the ASN.1 in the Green Book (said so where used).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsd.errors import AssociationRejected, DecodeError, LocalProtocolError, ServiceError
from dlmsd.protocol.acse import (
    Aare,
    Aarq,
    AcseServiceProvider,
    AcseServiceUser,
    ApplicationContextName,
    AssociationResult,
    MechanismName,
    ReleaseRequestReason,
    ReleaseResponseReason,
    Rlre,
    Rlrq,
    association_rejected,
)
from dlmsd.protocol.apdu import decode_apdu
from dlmsd.protocol.xdlms import (
    DEFAULT_CONFORMANCE,
    ConfirmedServiceError,
    ConfirmedServiceErrorChoice,
    Conformance,
    InitiateRequest,
    InitiateResponse,
    ServiceErrorType,
    decode_conformance,
    encode_conformance,
)

LN = ApplicationContextName.LOGICAL_NAME_REFERENCING_NO_CIPHERING
LN_CIPHERED = ApplicationContextName.LOGICAL_NAME_REFERENCING_WITH_CIPHERING
GB_REQUEST = InitiateRequest(Conformance(0x007E1F), 1200)
GB_RESPONSE = InitiateResponse(Conformance(0x00501F), 500)
SPODES_REQUEST = InitiateRequest(Conformance(0x7FFFFF), 0x0400)
CIPHERED_INITIATE = bytes.fromhex(
    "21303001234567801302FF8A7874133D414CED25B42534D28DB0047720606B175BD52211BE6841DB204D"
    "39EE6FDB8E356855"
)


@dataclass(frozen=True)
class Vector:
    name: str
    source: str
    hex: str
    obj: Aarq | Aare | Rlrq | Rlre

    @property
    def data(self) -> bytes:
        return bytes.fromhex(self.hex)


VECTORS = [
    Vector("aarq-ln-no-security", "GB p.444",
           "601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0",
           Aarq(LN, GB_REQUEST)),
    Vector("aarq-ln-lls-12345678", "GB p.444; milanbella/gocosem asn1_test.go",
           "6036A1090607608574050801018A0207808B0760857405080201AC0A80083132333435363738"
           "BE10040E01000000065F1F0400007E1F04B0",
           Aarq(LN, GB_REQUEST, MechanismName.LOW, b"12345678")),
    Vector("aarq-ln-hls-gmac", "GB p.444",
           "6036A1090607608574050801018A0207808B0760857405080205AC0A80084B35366956616759"
           "BE10040E01000000065F1F0400007E1F04B0",
           Aarq(LN, GB_REQUEST, MechanismName.HIGH_GMAC, b"K56iVagY")),
    Vector("aarq-ln-ciphered-lls", "GB (u9n test_aarq.py test_parse_ciphered_low_security2)",
           "6066A109060760857405080103A60A04084D4D4D0000BC614E8A0207808B0760857405080201"
           "AC0A80083132333435363738BE340432" + CIPHERED_INITIATE.hex(),
           Aarq(LN_CIPHERED, CIPHERED_INITIATE, MechanismName.LOW, b"12345678",
                calling_ap_title=bytes.fromhex("4D4D4D0000BC614E"))),
    Vector("aarq-spodes-no-security", "SPODES",
           "601DA109060760857405080101BE10040E01000000065F1F04007FFFFF0400",
           Aarq(LN, SPODES_REQUEST)),
    Vector("aarq-spodes-hls", "SPODES",
           "603EA1090607608574050801018A0207808B0760857405080202AC128010D92543230FFCC3343D"
           "5B4CC4BEC596A8BE10040E01000000065F1F04007FFFFF0400",
           Aarq(LN, SPODES_REQUEST, MechanismName.HIGH,
                bytes.fromhex("D92543230FFCC3343D5B4CC4BEC596A8"))),
    Vector("aare-accepted", "GB (u9n test_aare.py)",
           "6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F040000501F"
           "01F40007",
           Aare(user_information=GB_RESPONSE)),
    Vector("aare-rejected-context", "GB (u9n test_aare.py)",
           "6129A109060760857405080101A203020101A305A103020102BE10040E0800065F1F040000501F"
           "01F40007",
           Aare(AssociationResult.REJECTED_PERMANENT,
                AcseServiceUser.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED,
                user_information=GB_RESPONSE)),
    Vector("aare-rejected-dlms-version", "GB (u9n test_aare.py)",
           "611FA109060760857405080101A203020101A305A103020101BE0604040E010601",
           Aare(AssociationResult.REJECTED_PERMANENT, AcseServiceUser.NO_REASON_GIVEN,
                user_information=ConfirmedServiceError(
                    ConfirmedServiceErrorChoice.INITIATE_ERROR, ServiceErrorType.INITIATE, 1))),
    Vector("aare-hls-gmac", "GB (u9n test_aare.py)",
           "6142A109060760857405080101A203020100A305A10302010E88020780890760857405080205AA0A"
           "8008503677524A323146BE10040E0800065F1F040000501F01F40007",
           Aare(diagnostic=AcseServiceUser.AUTHENTICATION_REQUIRED, user_information=GB_RESPONSE,
                mechanism_name=MechanismName.HIGH_GMAC,
                responding_authentication_value=b"P6wRJ21F")),
    Vector("aare-spodes-no-security", "SPODES",
           "6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F04000010100400"
           "0007",
           Aare(user_information=InitiateResponse(Conformance(0x001010), 0x0400))),
    Vector("aare-spodes-hls", "SPODES",
           "614AA109060760857405080101A203020100A305A10302010E88020780890760857405080202AA12"
           "80100ACAAD2EB4C11FD8750E5192491D56B1BE10040E0800065F1F040000189D04000007",
           Aare(diagnostic=AcseServiceUser.AUTHENTICATION_REQUIRED,
                user_information=InitiateResponse(Conformance(0x00189D), 0x0400),
                mechanism_name=MechanismName.HIGH,
                responding_authentication_value=bytes.fromhex(
                    "0ACAAD2EB4C11FD8750E5192491D56B1"))),
    Vector("rlrq-normal", "GURUX releaseRequest(); u9n test_rlrq.py",
           "6203800100", Rlrq()),
    Vector("rlrq-ciphered", "u9n test_rlrq.py",
           "6239800100BE340432" + CIPHERED_INITIATE.hex(),
           Rlrq(user_information=CIPHERED_INITIATE)),
    Vector("rlre-normal", "OURS (RLRE-apdu, reason [0] normal)", "6303800100", Rlre()),
    Vector("rlre-empty", "OURS (all of RLRE-apdu is optional)", "6300", Rlre(reason=None)),
]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_vector_encodes(vector: Vector) -> None:
    assert vector.obj.to_bytes().hex().upper() == vector.hex.upper()


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_vector_decodes(vector: Vector) -> None:
    assert type(vector.obj).from_bytes(vector.data) == vector.obj
    assert decode_apdu(vector.data) == vector.obj


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_vector_with_trailing_byte_is_rejected(vector: Vector) -> None:
    with pytest.raises(DecodeError, match="trailing"):
        type(vector.obj).from_bytes(vector.data + b"\x00")


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_vector_truncated_is_rejected(vector: Vector) -> None:
    for cut in range(len(vector.data)):
        with pytest.raises(DecodeError):
            type(vector.obj).from_bytes(vector.data[:cut])


# ------------------------------------------------------------------ Conformance
def test_conformance_bit_order_green_book() -> None:
    # GB p.437: the proposed conformance 00 7E 1F names these bits.
    proposed = Conformance.from_bit_numbers(9, 10, 11, 12, 13, 14, 19, 20, 21, 22, 23)
    assert proposed == DEFAULT_CONFORMANCE == Conformance(0x007E1F)
    assert proposed == (
        Conformance.PRIORITY_MGMT_SUPPORTED | Conformance.ATTRIBUTE0_SUPPORTED_WITH_GET
        | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ | Conformance.BLOCK_TRANSFER_WITH_SET_OR_WRITE
        | Conformance.BLOCK_TRANSFER_WITH_ACTION | Conformance.MULTIPLE_REFERENCES | Conformance.GET
        | Conformance.SET | Conformance.SELECTIVE_ACCESS | Conformance.EVENT_NOTIFICATION
        | Conformance.ACTION
    )
    assert encode_conformance(proposed) == bytes.fromhex("5F1F0400007E1F")
    # GB p.437: the negotiated 00 50 1F.
    negotiated, pos = decode_conformance(bytes.fromhex("5F1F040000501FEE"), 0)
    assert pos == 7
    assert negotiated.names() == ("priority-mgmt-supported", "block-transfer-with-get-or-read",
                                  "get", "set", "selective-access", "event-notification", "action")


def test_conformance_bit_numbers_round_trip() -> None:
    assert Conformance.RESERVED_ZERO.bit_numbers() == (0,)
    assert Conformance.ACTION.bit_numbers() == (23,)
    assert Conformance.GENERAL_PROTECTION.value == 0x400000
    assert Conformance(0xFFFFFF).bit_numbers() == tuple(range(24))
    with pytest.raises(LocalProtocolError):
        Conformance.from_bit_numbers(24)


def test_conformance_decode_errors() -> None:
    with pytest.raises(DecodeError, match="5F 1F 04"):
        decode_conformance(bytes.fromhex("5F1F0300007E1F"), 0)
    with pytest.raises(DecodeError, match="unused bits"):
        decode_conformance(bytes.fromhex("5F1F0408007E1F"), 0)
    with pytest.raises(DecodeError, match="truncated"):
        decode_conformance(bytes.fromhex("5F1F0400007E"), 0)


# ------------------------------------------------------------------ InitiateRequest/Response
def test_initiate_request_optional_fields_round_trip() -> None:
    # OURS: dedicated key (16 bytes), response-allowed FALSE, QoS -1, version 6.
    request = InitiateRequest(Conformance.GET, 0x0100, 6, bytes(range(16)), False, -1)
    data = request.to_bytes()
    assert data == bytes.fromhex("010110" + bytes(range(16)).hex() + "0100" + "01FF"
                                 + "06" + "5F1F0400000010" + "0100")
    assert InitiateRequest.from_bytes(data) == request
    assert "dedicated_key" not in repr(request)
    assert bytes(range(16)).hex() not in request.describe()
    assert "dedicated-key=***" in request.describe()


def test_initiate_response_decode_with_position() -> None:
    body = bytes.fromhex("0800065F1F040000501F01F40007")  # GB AARE user-information
    value, pos = InitiateResponse.decode(b"\xAA" + body + b"\xEE", 1)
    assert value == GB_RESPONSE and pos == 1 + len(body)
    assert GB_RESPONSE.to_bytes() == body


def test_initiate_range_checks() -> None:
    with pytest.raises(LocalProtocolError, match="client-max-receive-pdu-size"):
        InitiateRequest(client_max_receive_pdu_size=0x10000)
    with pytest.raises(LocalProtocolError, match="vaa-name"):
        InitiateResponse(Conformance.GET, 100, vaa_name=-1)


def test_initiate_bad_presence_flag() -> None:
    with pytest.raises(DecodeError, match="presence flag 0x02"):
        InitiateRequest.from_bytes(bytes.fromhex("0102"))


# ------------------------------------------------------------------ secrets
def test_password_is_kept_out_of_repr_and_describe() -> None:
    aarq = Aarq(LN, GB_REQUEST, MechanismName.LOW, b"s3cretPW")
    for text in (repr(aarq), str(aarq), aarq.describe()):
        assert "s3cretPW" not in text
        assert b"s3cretPW".hex() not in text.lower()
    assert "auth=***" in aarq.describe()
    assert aarq.describe().startswith("AARQ LN mechanism=low auth=*** InitiateRequest v6")


def test_authentication_value_needs_a_mechanism() -> None:
    with pytest.raises(LocalProtocolError, match="mechanism-name"):
        Aarq(calling_authentication_value=b"x")
    # 8A/8B left out but AC present: a decoding error, not a crash.
    bad = _aarq_with(b"\xAC\x04\x80\x02ab")
    with pytest.raises(DecodeError, match="without mechanism-name"):
        Aarq.from_bytes(bad)


# ------------------------------------------------------------------ AARE helpers
def test_check_returns_the_negotiated_values() -> None:
    aare = Aare.from_bytes(VECTORS[6].data)
    negotiated = aare.check()
    assert negotiated.server_max_receive_pdu_size == 500
    assert Conformance.GET in negotiated.negotiated_conformance
    assert Conformance.MULTIPLE_REFERENCES not in negotiated.negotiated_conformance
    assert negotiated.vaa_name == 0x0007


def test_association_rejected_message_and_fields() -> None:
    aare = Aare(AssociationResult.REJECTED_PERMANENT, AcseServiceUser.AUTHENTICATION_FAILURE)
    error = association_rejected(aare)
    assert str(error) == ("association rejected-permanent: authentication-failure "
                          "(acse-service-user 13)")
    assert (error.result, error.diagnostic, error.source, error.code) == (1, 13, "user", 1)
    with pytest.raises(AssociationRejected, match="authentication-failure"):
        aare.check()


def test_association_rejected_by_provider_and_with_initiate_error() -> None:
    aare = Aare(AssociationResult.REJECTED_TRANSIENT, AcseServiceProvider.NO_COMMON_ACSE_VERSION)
    assert str(association_rejected(aare)) == (
        "association rejected-transient: no-common-acse-version (acse-service-provider 2)")
    assert association_rejected(aare).source == "provider"
    assert Aare.from_bytes(aare.to_bytes()) == aare
    gb = Aare.from_bytes(VECTORS[8].data)
    assert str(association_rejected(gb)) == (
        "association rejected-permanent: no-reason-given (acse-service-user 1); "
        "confirmed-service-error initiate-error: initiate dlms-version-too-low (6/1)")


def test_unknown_diagnostic_value_is_kept_and_named() -> None:
    # OURS: a meter sending acse-service-user 99 (not defined) still yields a readable error.
    aare = Aare(AssociationResult.REJECTED_PERMANENT, AcseServiceUser(99))
    decoded = Aare.from_bytes(aare.to_bytes())
    assert int(decoded.diagnostic) == 99 and isinstance(decoded.diagnostic, AcseServiceUser)
    assert "unknown-99 (acse-service-user 99)" in str(association_rejected(decoded))


def test_accepted_without_initiate_response() -> None:
    with pytest.raises(DecodeError, match="InitiateResponse"):
        Aare(user_information=b"\x28\x01\x02").check()
    with pytest.raises(ServiceError, match="dlms-version-too-low"):
        Aare(user_information=ConfirmedServiceError(
            ConfirmedServiceErrorChoice.INITIATE_ERROR, ServiceErrorType.INITIATE, 1)).check()


def test_describe_aare() -> None:
    assert Aare.from_bytes(VECTORS[9].data).describe() == (
        "AARE accepted LN user:authentication-required mechanism=high-gmac StoC=<8 bytes> "
        "InitiateResponse v6 max-pdu=500 vaa=0x0007 conformance=0x00501F(priority-mgmt-supported,"
        "block-transfer-with-get-or-read,get,set,selective-access,event-notification,action)")
    assert Rlrq().describe() == "RLRQ normal"
    assert Rlre(ReleaseResponseReason.NOT_FINISHED).describe() == "RLRE not-finished"
    assert Rlrq(ReleaseRequestReason.URGENT).to_bytes() == bytes.fromhex("6203800101")


def test_confirmed_service_error_vector() -> None:
    data = bytes.fromhex("0E010601")  # GB: AARE user-information of the version-too-low example
    error = ConfirmedServiceError.from_bytes(data)
    assert error.to_bytes() == data
    assert error.describe() == (
        "confirmed-service-error initiate-error: initiate dlms-version-too-low (6/1)")
    assert isinstance(error.to_error(), ServiceError)
    assert ConfirmedServiceError.decode(data + b"\x99", 0) == (error, 4)


# ------------------------------------------------------------------ robustness
def _aarq_with(*extra: bytes) -> bytes:
    body = bytes.fromhex("A109060760857405080101") + b"".join(extra)
    return bytes([0x60, len(body)]) + body


def _aare_with(*extra: bytes) -> bytes:
    body = bytes.fromhex("A109060760857405080101") + b"".join(extra)
    return bytes([0x61, len(body)]) + body


def test_unknown_and_unused_elements_are_skipped() -> None:
    # OURS: protocol-version, called-AP-title, implementation-information and a
    # high-tag-number element all skipped.
    data = _aarq_with(
        bytes.fromhex("80020780"),
        bytes.fromhex("A2060604 2B060102".replace(" ", "")),
        bytes.fromhex("9D03414243"),
        bytes.fromhex("BF2A0101"),
        bytes.fromhex("BE10040E01000000065F1F0400007E1F04B0"),
    )
    assert Aarq.from_bytes(data) == Aarq(LN, GB_REQUEST)


def test_calling_ae_invocation_id_round_trip() -> None:
    aarq = Aarq(LN, GB_REQUEST, calling_ae_invocation_id=300)
    data = aarq.to_bytes()
    assert bytes.fromhex("A904020201 2C".replace(" ", "")) in data
    assert Aarq.from_bytes(data) == aarq


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (bytes.fromhex("6100"), "application-context-name missing"),
        (bytes.fromhex("6005A1030601FF"), "OBJECT IDENTIFIER ends"),
        (bytes.fromhex("600BA109060760857405080109"), r"unknown application context name 2\.16"),
        (bytes.fromhex("6080"), "invalid first byte 0x80"),
        (bytes.fromhex("6005A109060760"), "length 9, only 3"),
        (bytes.fromhex("6185000000000A"), "invalid first byte 0x85"),
        (_aarq_with(bytes.fromhex("8B0760857405080209")), "unknown authentication mechanism"),
        (_aarq_with(bytes.fromhex("AC03810100")), "charstring"),
        (bytes.fromhex("610BA109060760857405080101"), "result missing"),
        (bytes.fromhex("6110A109060760857405080101A203020100"), "result-source-diagnostic"),
        (_aare_with(bytes.fromhex("A203020100A305A303020100")), "expected acse-service"),
        (_aare_with(bytes.fromhex("A2030201FFA305A103020100")), "outside 0..255"),
        (_aare_with(bytes.fromhex("A203020100A305A103020100BE03050100")), "OCTET STRING"),
    ],
    ids=lambda v: v if isinstance(v, str) else v.hex(),
)
def test_decode_errors(data: bytes, message: str) -> None:
    decoder = Aare.from_bytes if data[:1] == b"\x61" else Aarq.from_bytes
    with pytest.raises(DecodeError, match=message):
        decoder(data)


# ------------------------------------------------------------------ properties
mechanisms = st.none() | st.sampled_from(list(MechanismName))


@st.composite
def aarqs(draw: st.DrawFn) -> Aarq:
    mechanism = draw(mechanisms)
    auth = draw(st.none() | st.binary(max_size=200)) if mechanism is not None else None
    request = InitiateRequest(
        Conformance(draw(st.integers(0, 0xFFFFFF))), draw(st.integers(0, 0xFFFF)),
        draw(st.integers(0, 255)), draw(st.none() | st.binary(max_size=40)),
        draw(st.booleans()), draw(st.none() | st.integers(-128, 127)))
    return Aarq(
        draw(st.sampled_from(list(ApplicationContextName))),
        draw(st.sampled_from([request, None, b"\x21\x05hello"])),
        mechanism, auth,
        draw(st.none() | st.binary(min_size=8, max_size=8)),
        draw(st.none() | st.integers(-(2**31), 2**31 - 1)),
    )


@settings(max_examples=150, deadline=None)
@given(aarqs())
def test_aarq_round_trip(aarq: Aarq) -> None:
    assert Aarq.from_bytes(aarq.to_bytes()) == aarq


@settings(max_examples=150, deadline=None)
@given(
    result=st.sampled_from(list(AssociationResult)),
    diagnostic=st.sampled_from(list(AcseServiceUser) + list(AcseServiceProvider)),
    pdu=st.integers(0, 0xFFFF), conformance=st.integers(0, 0xFFFFFF),
    mechanism=mechanisms, stoc=st.none() | st.binary(max_size=64),
    title=st.none() | st.binary(min_size=8, max_size=8),
)
def test_aare_round_trip(result: AssociationResult,
                         diagnostic: AcseServiceUser | AcseServiceProvider, pdu: int,
                         conformance: int, mechanism: MechanismName | None, stoc: bytes | None,
                         title: bytes | None) -> None:
    aare = Aare(result, diagnostic, LN, InitiateResponse(Conformance(conformance), pdu),
                title, mechanism, stoc)
    assert Aare.from_bytes(aare.to_bytes()) == aare


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_fuzz_mutated_acse_vectors_only_decode_error(data: st.DataObject) -> None:
    vector = data.draw(st.sampled_from(VECTORS))
    raw = bytearray(vector.data)
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(DecodeError):
        type(vector.obj).from_bytes(bytes(raw))


# ------------------------------------------------------------ interop (gurux_dlms, tests only)
def _gurux() -> tuple[Any, Any]:
    return pytest.importorskip("gurux_dlms"), pytest.importorskip("gurux_dlms.enums")


def _gurux_client(auth: str, password: str | None) -> Any:
    gurux, enums = _gurux()
    return gurux.GXDLMSClient(True, 0x10, 1, getattr(enums.Authentication, auth), password,
                              enums.InterfaceType.WRAPPER)


def _gurux_aarq(client: Any) -> Aarq:
    data = b"".join(bytes(f) for f in client.aarqRequest())
    assert data[:8] == bytes.fromhex("00010010000100") + bytes([len(data) - 8])
    return Aarq.from_bytes(data[8:])  # after the wrapper header


def _gurux_bits(value: Any) -> tuple[int, ...]:
    # gurux numbers the conformance flags as 1 << (the standard's bit number)
    return tuple(n for n in range(24) if int(value) & (1 << n))


def _to_gurux(client: Any, apdu: bytes) -> Any:
    gurux, _ = _gurux()
    frame = bytes.fromhex("000100010010") + len(apdu).to_bytes(2, "big") + apdu
    reply = gurux.GXReplyData()
    client.getData(gurux.GXByteBuffer(frame), reply)
    return reply


@pytest.mark.interop
def test_gurux_aarq_without_authentication() -> None:
    client = _gurux_client("NONE", None)
    aarq = _gurux_aarq(client)
    assert aarq.mechanism_name is None and aarq.calling_authentication_value is None
    request = aarq.initiate_request
    assert request is not None
    assert request.client_max_receive_pdu_size == 0xFFFF
    assert request.proposed_dlms_version_number == 6
    assert request.proposed_conformance.bit_numbers() == _gurux_bits(client.proposedConformance)


@pytest.mark.interop
def test_gurux_aarq_with_low_level_security() -> None:
    aarq = _gurux_aarq(_gurux_client("LOW", "12345678"))
    assert aarq.mechanism_name is MechanismName.LOW
    assert aarq.calling_authentication_value == b"12345678"
    assert Aarq.from_bytes(aarq.to_bytes()) == aarq


@pytest.mark.interop
def test_gurux_conformance_names_match_our_bit_numbers() -> None:
    _, enums = _gurux()
    ours = {(m.name or "").replace("_", ""): m.bit_numbers()[0] for m in Conformance}
    theirs = {m.name.replace("_", ""): m.value.bit_length() - 1
              for m in enums.Conformance if m.value}
    assert theirs == ours


@pytest.mark.interop
def test_gurux_parses_our_accepted_aare() -> None:
    client = _gurux_client("NONE", None)
    client.aarqRequest()
    aare = Aare(user_information=InitiateResponse(Conformance(0x00501F), 500))
    client.parseAareResponse(_to_gurux(client, aare.to_bytes()).data)
    assert client.maxReceivePDUSize == 500
    assert _gurux_bits(client.negotiatedConformance) == Conformance(0x00501F).bit_numbers()


@pytest.mark.interop
def test_gurux_reports_our_rejection() -> None:
    client = _gurux_client("LOW", "wrong")
    client.aarqRequest()
    aare = Aare(AssociationResult.REJECTED_PERMANENT, AcseServiceUser.AUTHENTICATION_FAILURE,
                user_information=GB_RESPONSE)
    with pytest.raises(Exception) as info:  # gurux raises its own GXDLMSException
        client.parseAareResponse(_to_gurux(client, aare.to_bytes()).data)
    assert (int(info.value.result), int(info.value.diagnostic)) == (1, 13)  # type: ignore[attr-defined]


@pytest.mark.interop
def test_gurux_release_request_and_our_release_response() -> None:
    client = _gurux_client("NONE", None)
    client.aarqRequest()
    aare = Aare(user_information=GB_RESPONSE)
    client.parseAareResponse(_to_gurux(client, aare.to_bytes()).data)
    frames = client.releaseRequest()
    data = b"".join(bytes(f) for f in frames)
    assert Rlrq.from_bytes(data[8:]) == Rlrq()
    assert _to_gurux(client, Rlre().to_bytes()).error == 0
