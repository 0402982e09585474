"""The pure SN client: association, multi-variable read, blocks, refusals, release.

As in tests/test_client.py the meter's side is built with our own codec classes, so
these tests check the client's state handling; where a captured meter APDU exists it is
used as is (sources named as in tests/test_sn.py: TOHASAN = tohasan/hdlc-translator
ApduFrameSpec.groovy, LG = the captured Landis+Gyr session of meter 51282380).
"""

from __future__ import annotations

import pytest

from dlmsd.errors import (
    AssociationRejected,
    DecodeError,
    LocalProtocolError,
    RemoteProtocolError,
    ServiceError,
)
from dlmsd.protocol.acse import (
    Aare,
    Aarq,
    AcseServiceUser,
    ApplicationContextName,
    AssociationResult,
    MechanismName,
    Rlre,
    Rlrq,
)
from dlmsd.protocol.axdr import Data, encode_data
from dlmsd.protocol.client import (
    Associated,
    ClientState,
    GetComplete,
    Released,
    SendApdu,
    StaleResponse,
    WithListRefused,
)
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.sn import (
    BlockNumber,
    BlockNumberAccess,
    DataBlockResult,
    InformationReportRequest,
    ParameterizedAccess,
    ReadRequest,
    ReadResponse,
    VariableName,
    attribute_short_name,
    base_name_of,
    decode_sn_apdu,
    parse_sn_object_list,
)
from dlmsd.protocol.sn_client import NO_INVOKE_ID, SN_CLIENT_CONFORMANCE, SnClient
from dlmsd.protocol.xdlms import (
    ConfirmedServiceError,
    ConfirmedServiceErrorChoice,
    Conformance,
    DataAccessResult,
    ExceptionResponse,
    InitiateResponse,
    ServiceErrorType,
)

SN = ApplicationContextName.SHORT_NAME_REFERENCING_NO_CIPHERING
# TOHASAN: the SN meter's AARE (conformance 1C 13 20, max PDU 122, vaa-name FA00)
TOHASAN_AARE = bytes.fromhex("6129A109060760857405080102A203020100A305A103020100BE10040E08"
                             "00065F1F04001C1320007AFA00")
# TOHASAN: AARQ, lowest level security, conformance 1C 03 20, client max PDU 0
TOHASAN_AARQ = bytes.fromhex("601DA109060760857405080102BE10040E01000000065F1F04001C03200000")
# LG: AARE of the L+G meter: conformance written 5F 04 00 18 02 20 (no 1F), max PDU 2400
LG_AARE = bytes.fromhex("6128A109060760857405080102A203020100A305A103020100BE0F040D0800065F"
                        "04001802200960FA00")
LG_READ_TWO = bytes.fromhex("050202FD0802FF08")
LG_ANSWER_TWO = bytes.fromhex("0C020009104C475A35313238323338300000000000000A03423332")
TOHASAN_LDN = bytes.fromhex("0C01020100010F01000A0B5A49503031373639333236")


TOHASAN_CONFORMANCE = Conformance(0x1C1320)


def accepted(conformance: Conformance = TOHASAN_CONFORMANCE, pdu: int = 1024,
             context: ApplicationContextName = SN) -> bytes:
    return Aare(application_context_name=context,
                user_information=InitiateResponse(conformance, pdu, vaa_name=0xFA00)).to_bytes()


def associated(**kwargs: object) -> SnClient:
    client = SnClient()
    client.associate()
    event = client.receive_apdu(accepted(**kwargs))  # type: ignore[arg-type]
    assert isinstance(event, Associated)
    return client


def blocks_of(results: tuple[Data | DataAccessResult, ...], size: int) -> list[bytes]:
    """The ReadResponses carrying ``results`` in blocks of ``size`` raw-data bytes."""
    raw = ReadResponse(results).to_bytes()[1:]  # the encoded result list
    parts = [raw[i : i + size] for i in range(0, len(raw), size)]
    return [ReadResponse((DataBlockResult(n == len(parts), n, part),)).to_bytes()
            for n, part in enumerate(parts, start=1)]


# ------------------------------------------------------------------ association
def test_associate_builds_the_sn_aarq() -> None:
    aarq = Aarq.from_bytes(SnClient(max_receive_pdu_size=512).associate())
    assert aarq.application_context_name is SN
    assert aarq.initiate_request is not None
    assert aarq.initiate_request.proposed_conformance == SN_CLIENT_CONFORMANCE
    assert int(SN_CLIENT_CONFORMANCE) == 0x1C1B20  # as the TOHASAN LLS AARQ
    assert aarq.initiate_request.client_max_receive_pdu_size == 512
    assert aarq.mechanism_name is None
    # TOHASAN: the meter's own client sends exactly these bytes for these settings
    client = SnClient(max_receive_pdu_size=0, conformance=Conformance(0x1C0320))
    assert client.associate() == TOHASAN_AARQ


def test_captured_aare_gives_the_negotiation() -> None:
    client = SnClient()
    client.associate()
    event = client.receive_apdu(TOHASAN_AARE)
    assert isinstance(event, Associated)
    assert event.server_max_receive_pdu_size == 122
    assert event.conformance == Conformance(0x1C1320)
    assert client.vaa_name == 0xFA00 and client.supports_with_list
    assert client.state is ClientState.ASSOCIATED


def test_landis_gyr_aare_with_short_conformance_tag() -> None:
    client = SnClient()
    client.associate()
    event = client.receive_apdu(LG_AARE)
    assert isinstance(event, Associated)
    assert event.server_max_receive_pdu_size == 2400
    assert event.conformance == Conformance(0x180220)


def test_low_level_security_password_in_aarq_not_in_repr() -> None:
    client = SnClient(mechanism=MechanismName.LOW, authentication_value=b"12345678")
    aarq = Aarq.from_bytes(client.associate())
    assert aarq.mechanism_name is MechanismName.LOW
    assert aarq.calling_authentication_value == b"12345678"
    assert "12345678" not in repr(client) and "12345678" not in aarq.describe()


def test_rejection_names_result_and_diagnostic() -> None:
    client = SnClient(mechanism=MechanismName.LOW, authentication_value=b"wrong")
    client.associate()
    aare = Aare(result=AssociationResult.REJECTED_PERMANENT,
                diagnostic=AcseServiceUser.AUTHENTICATION_FAILURE, application_context_name=SN)
    with pytest.raises(AssociationRejected) as info:
        client.receive_apdu(aare.to_bytes())
    assert info.value.result == 1 and info.value.diagnostic == 13
    assert client.state is ClientState.IDLE


def test_ln_context_accepted_is_refused() -> None:
    client = SnClient()
    client.associate()
    with pytest.raises(RemoteProtocolError, match="LN application context; SN was proposed"):
        client.receive_apdu(accepted(context=ApplicationContextName(1)))
    assert client.state is ClientState.IDLE


def test_accepted_without_initiate_response_and_wrong_apdu() -> None:
    client = SnClient()
    client.associate()
    error = ConfirmedServiceError(ConfirmedServiceErrorChoice.INITIATE_ERROR,
                                  ServiceErrorType.INITIATE, 1)
    with pytest.raises(RemoteProtocolError, match="without an InitiateResponse"):
        client.receive_apdu(Aare(application_context_name=SN, user_information=error).to_bytes())
    client = SnClient()
    client.associate()
    with pytest.raises(RemoteProtocolError, match=r"expected AARE, got READ.res"):
        client.receive_apdu(LG_ANSWER_TWO)


# ------------------------------------------------------------------ reading
def test_read_one_and_several_variables() -> None:
    client = associated()
    assert ReadRequest.from_bytes(client.read([0x1208])) == ReadRequest.of(0x1208)
    assert client.receive_apdu(ReadResponse((Data.uint32(7),)).to_bytes()) == GetComplete(
        (Data.uint32(7),))
    # LG: the two-variable read and its captured answer
    assert client.read([0xFD08, 0xFF08]) == LG_READ_TWO
    assert client.receive_apdu(LG_ANSWER_TWO) == GetComplete(
        (Data.octets(b"LGZ51282380" + bytes(5)), Data.visible("B32")))
    assert client.state is ClientState.ASSOCIATED


def test_read_with_data_access_error_per_variable() -> None:
    client = associated()
    client.read([0x1208, 0x1308])
    reply = ReadResponse((Data.uint32(5), DataAccessResult.OBJECT_UNDEFINED))
    assert client.receive_apdu(reply.to_bytes()) == GetComplete(
        (Data.uint32(5), DataAccessResult.OBJECT_UNDEFINED))


def test_read_parameterized() -> None:
    client = associated()
    selection = ParameterizedAccess(0xC008, 2, Data.structure(Data.uint32(1), Data.uint32(2)))
    request = ReadRequest.from_bytes(client.read([selection, 0x1208]))
    assert request.variables == (selection, VariableName(0x1208))
    no_pa = associated(conformance=Conformance.READ)
    with pytest.raises(LocalProtocolError, match="parameterized-access"):
        no_pa.read([selection])


def test_local_refusals() -> None:
    client = associated(conformance=Conformance.READ)
    with pytest.raises(LocalProtocolError, match="multiple-references"):
        client.read([0x1208, 0x1210])
    with pytest.raises(LocalProtocolError, match="at least one variable"):
        client.read([])
    small = associated(pdu=10)
    with pytest.raises(LocalProtocolError, match="exceeds the meter's max PDU 10"):
        small.read([0x1208, 0x1210, 0x1218])
    assert small.state is ClientState.ASSOCIATED


@pytest.mark.parametrize("answer", [
    ExceptionResponse.from_bytes(bytes.fromhex("D80102")).to_bytes(),  # service-not-supported
    ConfirmedServiceError(ConfirmedServiceErrorChoice.READ, ServiceErrorType.SERVICE,
                          2).to_bytes(),  # read: service service-unsupported
    ReadResponse((Data.uint32(1),)).to_bytes(),  # the first variable only
    ReadResponse((DataAccessResult.OTHER_REASON,)).to_bytes(),  # one refusal for all
])
def test_several_variables_refused_by_meter(answer: bytes) -> None:
    client = associated()
    client.read([0x1208, 0x1210])
    event = client.receive_apdu(answer)
    assert isinstance(event, WithListRefused)
    assert client.state is ClientState.ASSOCIATED


def test_single_variable_refused_raises() -> None:
    client = associated()
    client.read([0x1208])
    with pytest.raises(ServiceError, match="service-not-allowed: service-not-supported"):
        client.receive_apdu(bytes.fromhex("D80102"))
    client.read([0x1208])
    error = ConfirmedServiceError(ConfirmedServiceErrorChoice.READ, ServiceErrorType.ACCESS, 2)
    with pytest.raises(ServiceError, match="confirmed-service-error read: access"):
        client.receive_apdu(error.to_bytes())
    assert client.state is ClientState.ASSOCIATED


def test_wrong_answers() -> None:
    client = associated()
    client.read([0x1208, 0x1210, 0x1218])
    with pytest.raises(RemoteProtocolError, match="2 results for 3 variables"):
        client.receive_apdu(ReadResponse((Data.uint8(1), Data.uint8(2))).to_bytes())
    assert client.state is ClientState.ASSOCIATED
    client.read([0x1208])
    with pytest.raises(RemoteProtocolError, match="block-number 2, which acknowledges"):
        client.receive_apdu(ReadResponse((BlockNumber(2),)).to_bytes())
    client.read([0x1208])
    mixed = ReadResponse((DataBlockResult(True, 1, b""), Data.uint8(1)))
    with pytest.raises(RemoteProtocolError, match="mixes a data-block-result"):
        client.receive_apdu(mixed.to_bytes())
    client.read([0x1208])
    with pytest.raises(RemoteProtocolError, match=r"expected a ReadResponse, got READ\.req"):
        client.receive_apdu(ReadRequest.of(1).to_bytes())
    with pytest.raises(RemoteProtocolError, match="unexpected APDU in client state associated"):
        client.receive_apdu(ReadResponse((Data.uint8(1),)).to_bytes())


def test_pushed_reports_are_stale_and_change_nothing() -> None:
    client = associated()
    client.read([0x1208])
    report = InformationReportRequest((VariableName(0x1208),), (Data.int32(5),))
    assert client.receive_apdu(report.to_bytes()) == StaleResponse(NO_INVOKE_ID)
    assert client.state is ClientState.WAITING
    assert client.receive_apdu(ReadResponse((Data.uint8(3),)).to_bytes()) == GetComplete(
        (Data.uint8(3),))


# ------------------------------------------------------------------ blocks
def test_captured_single_block_answer() -> None:
    client = associated()
    client.read([0xFD08])  # TOHASAN: logical device name, answered in one last block
    assert client.receive_apdu(TOHASAN_LDN) == GetComplete((Data.visible("ZIP01769326"),))


def test_block_transfer_reassembles_and_acknowledges() -> None:
    client = associated()
    value = Data.array(*[Data.uint32(i) for i in range(60)])
    client.read([0xC008, 0x1208])
    answers = blocks_of((value, DataAccessResult.READ_WRITE_DENIED), 100)
    assert len(answers) == 4
    for number, answer in enumerate(answers[:-1], start=1):
        event = client.receive_apdu(answer)
        assert isinstance(event, SendApdu) and event.block_number == number
        assert ReadRequest.from_bytes(event.apdu) == ReadRequest((BlockNumberAccess(number),))
        assert client.state is ClientState.WAITING
    assert client.receive_apdu(answers[-1]) == GetComplete(
        (value, DataAccessResult.READ_WRITE_DENIED))
    assert client.state is ClientState.ASSOCIATED


def test_block_numbers_are_checked_and_repeats_are_stale() -> None:
    client = associated()
    client.read([0xC008])
    answers = blocks_of((Data.octets(bytes(300)),), 100)
    assert isinstance(client.receive_apdu(answers[0]), SendApdu)
    assert client.receive_apdu(answers[0]) == StaleResponse(NO_INVOKE_ID)  # block 1 again
    assert isinstance(client.receive_apdu(answers[1]), SendApdu)
    with pytest.raises(RemoteProtocolError, match="READ block number 1, expected 3"):
        client.receive_apdu(answers[0])
    assert client.state is ClientState.ASSOCIATED  # ready for the next request
    client.read([0xC008])
    with pytest.raises(RemoteProtocolError, match="READ block number 2, expected 1"):
        client.receive_apdu(answers[1])


def test_block_transfer_ended_by_the_meter() -> None:
    client = associated()
    client.read([0xC008, 0xC010])
    answers = blocks_of((Data.octets(bytes(300)), Data.uint8(1)), 100)
    client.receive_apdu(answers[0])
    abort = ReadResponse((DataAccessResult.DATA_BLOCK_NUMBER_INVALID,)).to_bytes()
    assert client.receive_apdu(abort) == GetComplete(
        (DataAccessResult.DATA_BLOCK_NUMBER_INVALID,) * 2)
    client.read([0xC008, 0xC010])
    client.receive_apdu(answers[0])
    with pytest.raises(ServiceError):  # the request was accepted: no with-list fallback
        client.receive_apdu(bytes.fromhex("D80101"))
    client.read([0xC008])
    client.receive_apdu(answers[0])
    with pytest.raises(RemoteProtocolError, match="expected the next block"):
        client.receive_apdu(ReadResponse((Data.uint8(1),)).to_bytes())
    assert client.state is ClientState.ASSOCIATED


def test_block_transfer_forms_and_bounds() -> None:
    # gurux_dlms servers put the bare Data of one variable in the blocks
    client = associated()
    client.read([0xC008])
    raw = encode_data(Data.visible("bare"))
    reply = ReadResponse((DataBlockResult(True, 1, raw),)).to_bytes()
    assert client.receive_apdu(reply) == GetComplete((Data.visible("bare"),))
    # raw data that is neither form
    client.read([0xC008, 0xC010])
    with pytest.raises(DecodeError):
        client.receive_apdu(ReadResponse((DataBlockResult(True, 1, raw),)).to_bytes())
    assert client.state is ClientState.ASSOCIATED
    # the size bound
    small = SnClient(max_response_size=150)
    small.associate()
    small.receive_apdu(accepted())
    small.read([0xC008])
    answers = blocks_of((Data.octets(bytes(300)),), 100)
    small.receive_apdu(answers[0])
    with pytest.raises(RemoteProtocolError, match="exceeds 150 bytes"):
        small.receive_apdu(answers[1])
    assert small.state is ClientState.ASSOCIATED


@pytest.mark.parametrize("head", [
    "01 00 01 84 00100000",  # the result list: one result, data [0], array of 1 Mi
    "01 84 00100000",  # a gurux_dlms server's bare Data
    "02 00 02 83 0FFFFA",  # the first of two results, a structure
])
def test_block_transfer_null_bomb_refused_at_the_first_block(head: str) -> None:
    # dlms-sim --fault null-bomb (SN): an array of nulls whose count the response cannot
    # hold is refused at block 1 by the check a long GET makes, not after 1 MiB.
    client = associated()
    client.read([0xC008, 0xC010] if head.startswith("02") else [0xC008])
    first = bytes.fromhex(head) + bytes(900)
    with pytest.raises(RemoteProtocolError, match=r"long read of (array|structure) of \d+ "
                       r"values exceeds the limit of \d+ values for a response of at most "
                       r"1048576 bytes, at block 1"):
        client.receive_apdu(ReadResponse((DataBlockResult(False, 1, first),)).to_bytes())
    assert client.state is ClientState.ASSOCIATED


def test_block_transfer_count_split_over_blocks_is_checked() -> None:
    client = SnClient(max_response_size=4096)
    client.associate()
    client.receive_apdu(accepted())
    client.read([0xC008])
    for number, part in enumerate(("01", "00 01 82"), start=1):  # the count not yet here
        event = client.receive_apdu(ReadResponse((DataBlockResult(
            False, number, bytes.fromhex(part)),)).to_bytes())
        assert isinstance(event, SendApdu)
    with pytest.raises(RemoteProtocolError, match="long read of array of 5000 values exceeds"
                       r" the limit of 4090 values .* at block 3"):
        client.receive_apdu(ReadResponse((DataBlockResult(
            False, 3, (5000).to_bytes(2) + bytes(100)),)).to_bytes())


def test_block_transfer_of_nulls_within_the_limit_decodes() -> None:
    # the check refuses nothing a response may hold: either form, a large array
    nulls = Data.array(*[Data.null()] * 3000)
    for raw in (ReadResponse((nulls,)).to_bytes()[1:], encode_data(nulls)):
        client = associated()
        client.read([0xC008])
        parts = [raw[i : i + 1000] for i in range(0, len(raw), 1000)]
        for number, part in enumerate(parts, start=1):
            event = client.receive_apdu(ReadResponse((DataBlockResult(
                number == len(parts), number, part),)).to_bytes())
        assert event == GetComplete((nulls,))


# ------------------------------------------------------------------ release and states
def test_release_accepts_any_rlre() -> None:
    client = associated()
    assert Rlrq.from_bytes(client.release()) == Rlrq()
    assert client.receive_apdu(Rlre().to_bytes()) == Released()
    assert client.state is ClientState.IDLE
    client = associated()
    client.release()
    # gurux 1.0.203's RLRE, with a length byte (0E) shorter than its content
    assert client.receive_apdu(bytes.fromhex("630E800100BE0F040E0800065F1F040000121DFFFF0007")
                               ) == Released()
    client = associated()
    client.release()
    with pytest.raises(RemoteProtocolError, match=r"expected RLRE, got READ\.res"):
        client.receive_apdu(LG_ANSWER_TWO)


def test_illegal_calls_name_the_state() -> None:
    client = SnClient()
    with pytest.raises(LocalProtocolError, match="cannot read in client state idle"):
        client.read([0x1208])
    client.associate()
    with pytest.raises(LocalProtocolError, match="cannot associate in client state associating"):
        client.associate()
    client.receive_apdu(accepted())
    client.read([0x1208])
    with pytest.raises(LocalProtocolError, match="cannot read in client state waiting"):
        client.read([0x1208])  # strictly one outstanding request: SN has no invoke-id
    client.cancel_request()
    assert client.state is ClientState.ASSOCIATED
    client.abort()
    assert client.state.value == "idle" and client.conformance == Conformance(0)


# ------------------------------------------------------------------ both ends in memory
class FakeSnMeter:
    """A minimal SN meter: AARQ, ReadRequest (with blocks), RLRQ; built on our codecs."""

    def __init__(self, values: dict[int, Data], max_pdu: int = 64) -> None:
        self.values = values
        self.max_pdu = max_pdu
        self._pending: list[bytes] = []
        self.requests: list[str] = []

    def handle(self, apdu: bytes) -> bytes:
        request = decode_sn_apdu(apdu)
        self.requests.append(request.describe())
        if isinstance(request, Aarq):
            return accepted(pdu=self.max_pdu)
        if isinstance(request, Rlrq):
            return Rlre().to_bytes()
        assert isinstance(request, ReadRequest)
        first = request.variables[0]
        if isinstance(first, BlockNumberAccess):
            return self._pending.pop(0)
        results = tuple(self.values.get(v.short_name, DataAccessResult.OBJECT_UNDEFINED)
                        for v in request.variables if isinstance(v, VariableName))
        whole = ReadResponse(results).to_bytes()
        if len(whole) <= self.max_pdu:
            return whole
        self._pending = blocks_of(results, self.max_pdu - 8)
        return self._pending.pop(0)


def _exchange(client: SnClient, meter: FakeSnMeter, apdu: bytes) -> GetComplete:
    event = client.receive_apdu(meter.handle(apdu))
    while isinstance(event, SendApdu):
        event = client.receive_apdu(meter.handle(event.apdu))
    assert isinstance(event, GetComplete)
    return event


def test_object_list_then_register_with_scaler_unit() -> None:
    """The flow a session follows for an SN meter (see the report for session.py)."""
    energy = Obis(1, 0, 1, 8, 0, 255)

    def element(base: int, class_id: int, obis: Obis) -> Data:
        return Data.structure(Data.int16(base - 0x10000 if base > 0x7FFF else base),
                              Data.uint16(class_id), Data.uint8(0), Data.octets(obis.to_bytes()))

    object_list = Data.array(element(0xFA00, 12, Obis(0, 0, 40, 0, 0, 255)),
                             element(0x1200, 3, energy),
                             *[element(0x2000 + 0x20 * i, 1, Obis(0, 0, 96, 1, i, 255))
                               for i in range(10)])
    meter = FakeSnMeter({0xFA08: object_list, 0x1208: Data.uint32(123456),
                         0x1210: Data.structure(Data.int8(-2), Data.enum(30))})
    client = SnClient()
    assert isinstance(client.receive_apdu(meter.handle(client.associate())), Associated)
    # resolution through the Association SN: its object_list is at vaa-name + 8
    (listed,) = _exchange(client, meter,
                          client.read([attribute_short_name(client.vaa_name, 2)])).results
    assert isinstance(listed, Data)
    objects = parse_sn_object_list(listed)
    base, class_id = objects[energy]
    assert (base, class_id) == (0x1200, 3)
    # value (attribute 2) and scaler_unit (attribute 3) in one two-variable read
    value, scaler_unit = _exchange(client, meter, client.read(
        [attribute_short_name(base, 2), attribute_short_name(base, 3)])).results
    assert value == Data.uint32(123456)
    assert scaler_unit == Data.structure(Data.int8(-2), Data.enum(30))
    # a configured ``address`` is the attribute's short name: the scaler_unit is 8 later
    assert attribute_short_name(base_name_of(0x1208, 2), 3) == 0x1210
    assert isinstance(client.receive_apdu(meter.handle(client.release())), Released)
    assert meter.requests[1] == "READ.req [0xFA08]"
    assert "READ.req [block-number-access 1]" in meter.requests
